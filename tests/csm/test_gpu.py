"""The CUDA path: compiled frame steps, one CUDA graph per (batch, cache-length) bucket. Skipped without CUDA.

Equality checks run in fp32: in bf16, batches of other sizes may round differently (cuBLAS picks kernels by
shape), so greedy codes may part after a few frames without anything being wrong. Even in fp32 they may,
rarely: the first AGREEING_FRAMES frames are compared. Run on a GPU machine: python -m pytest tests/csm -m gpu -q
"""

import pytest
import torch

from csm import GenerationRequest, load_generator
from csm.config import FRAME_MS, SAMPLES_PER_FRAME

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]

FRAMES = 24
AGREEING_FRAMES = 20


@pytest.fixture(scope="module")
def cuda_generator(tiny_model_dir, tmp_path_factory):
    """fp32, compiled, graphed: what a GPU worker runs, but in fp32 so that rows can be compared."""
    generator = load_generator(tiny_model_dir, device="cuda", cache_dir=tmp_path_factory.mktemp("csm-cache"),
                               dtype=torch.float32, max_batch_size=4, compile=True, cuda_graphs=True)
    generator.warm_up()
    return generator


@pytest.fixture(scope="module")
def eager_generator(tiny_model_dir, tmp_path_factory):
    return load_generator(tiny_model_dir, device="cuda", cache_dir=tmp_path_factory.mktemp("csm-cache"),
                          dtype=torch.float32, max_batch_size=4, compile=False, cuda_graphs=False)


def greedy(text, frames=FRAMES):
    return GenerationRequest(text, 0, max_audio_length_ms=frames * FRAME_MS, topk=1)


def requests():
    return [greedy("Hi."), greedy("A much longer sentence to speak here.", FRAMES - 2), greedy("Medium text.")]


def assert_agree(ours, theirs):
    assert ours.shape == theirs.shape
    torch.testing.assert_close(ours[:AGREEING_FRAMES], theirs[:AGREEING_FRAMES], rtol=0, atol=0)


def test_warm_up_compiles_and_captures_a_graph_per_bucket(cuda_generator):
    assert cuda_generator.compiled and cuda_generator.graphed
    assert cuda_generator.compile_s > 0 and cuda_generator.capture_s > 0
    assert sorted(cuda_generator.frame_loop.graphs) == [(rows, kv_len) for rows in (1, 2, 4)
                                                        for kv_len in (256, 512, 1024, 2048)]


def test_batched_greedy_rows_agree_with_unbatched_runs(cuda_generator):
    batched = cuda_generator.generate_codes_batch(requests())

    for codes, request in zip(batched, requests()):
        assert codes.shape == (int(request.max_audio_length_ms / FRAME_MS), 32)
        assert_agree(codes, cuda_generator.generate_codes_batch([request])[0])


def test_compiled_graph_replays_agree_with_eager_steps(cuda_generator, eager_generator):
    for ours, theirs in zip(cuda_generator.generate_codes_batch(requests()),
                            eager_generator.generate_codes_batch(requests())):
        assert_agree(ours, theirs)


def test_a_fixed_seed_reproduces_a_sampled_run(cuda_generator):
    request = GenerationRequest("Hello there.", 0, max_audio_length_ms=12 * FRAME_MS, seed=5)
    first, second = (cuda_generator.generate_codes_batch([request, greedy("Other.")])[0] for _ in range(2))
    assert torch.equal(first, second)


def test_bf16_graphs_return_cpu_float32_audio(tiny_model_dir, tmp_path):
    generator = load_generator(tiny_model_dir, device="cuda", cache_dir=tmp_path, max_batch_size=2, compile=False)
    generator.warm_up()

    audio = generator.generate_batch([greedy("Hi.", 5), greedy("Hello there.", 3)])

    assert generator.model.codebook0_head.weight.dtype == torch.bfloat16 and generator.graphed
    assert [a.shape for a in audio] == [(5 * SAMPLES_PER_FRAME,), (3 * SAMPLES_PER_FRAME,)]
    assert all(a.dtype == torch.float32 and a.device.type == "cpu" and torch.isfinite(a).all() for a in audio)
