"""The CUDA path: bf16 weights, one captured CUDA graph per batch bucket. Skipped without CUDA.

Run on a GPU machine: python -m pytest tests/csm -m gpu -q
"""

import pytest
import torch

from csm import GenerationRequest, load_generator
from csm.config import FRAME_MS, SAMPLES_PER_FRAME

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]

FRAMES = 24
AGREEING_FRAMES = 20  # bf16 rounding differs between batch shapes: later frames may drift apart


@pytest.fixture(scope="module")
def cuda_generator(tiny_model_dir, tmp_path_factory):
    generator = load_generator(tiny_model_dir, device="cuda", cache_dir=tmp_path_factory.mktemp("csm-cache"),
                               max_batch_size=4)
    generator.warm_up()
    return generator


def greedy(text, frames=FRAMES):
    return GenerationRequest(text, 0, max_audio_length_ms=frames * FRAME_MS, topk=1)


def test_warm_up_compiles_and_captures_a_graph_per_bucket_in_bf16(cuda_generator):
    assert cuda_generator.model.codebook0_head.weight.dtype == torch.bfloat16
    assert cuda_generator.compiled and cuda_generator.compile_s > 0 and cuda_generator.capture_s > 0
    assert sorted(cuda_generator.frame_loop.graphs) == [(rows, kv_len) for rows in (1, 2, 4)
                                                        for kv_len in (256, 512, 1024, 2048)]


def test_batched_greedy_rows_agree_with_unbatched_runs(cuda_generator):
    requests = [greedy("Hi."), greedy("A much longer sentence to speak here.", FRAMES - 2), greedy("Medium text.")]

    batched = cuda_generator.generate_codes_batch(requests)

    for codes, request in zip(batched, requests):
        alone = cuda_generator.generate_codes_batch([request])[0]
        assert codes.shape == alone.shape == (int(request.max_audio_length_ms / FRAME_MS), 32)
        torch.testing.assert_close(codes[:AGREEING_FRAMES], alone[:AGREEING_FRAMES], rtol=0, atol=0)


def test_graph_replays_agree_with_eager_steps(cuda_generator, monkeypatch):
    requests = [greedy("Hi."), greedy("Medium text.")]
    replayed = cuda_generator.generate_codes_batch(requests)
    monkeypatch.setattr(cuda_generator.frame_loop, "graphs", {})  # eager, attending to the used positions only

    eager = cuda_generator.generate_codes_batch(requests)

    for ours, theirs in zip(replayed, eager):
        torch.testing.assert_close(ours[:AGREEING_FRAMES], theirs[:AGREEING_FRAMES], rtol=0, atol=0)


def test_a_fixed_seed_reproduces_a_sampled_run(cuda_generator):
    request = GenerationRequest("Hello there.", 0, max_audio_length_ms=12 * FRAME_MS, seed=5)
    first, second = (cuda_generator.generate_codes_batch([request, greedy("Other.")])[0] for _ in range(2))
    assert torch.equal(first, second)


def test_generate_batch_returns_cpu_float32_audio(cuda_generator):
    audio = cuda_generator.generate_batch([greedy("Hi.", 5), greedy("Hello there.", 3)])
    assert [a.shape for a in audio] == [(5 * SAMPLES_PER_FRAME,), (3 * SAMPLES_PER_FRAME,)]
    assert all(a.dtype == torch.float32 and a.device.type == "cpu" and torch.isfinite(a).all() for a in audio)
