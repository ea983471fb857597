"""What the CUDA path does, checked on the CPU in fp32: replaying a captured frame step is running `_step` at
the bucket's (rows, kv_len) on the same static buffers, so calling exactly that in place of each replay
emulates the graphs; and torch.compile of the frame step's functions changes no code."""

import logging
from functools import partial

import pytest
import torch

from csm import GenerationRequest, batching, load_generator
from csm.config import FRAME_MS


def requests():
    """Rows of different prompt lengths that finish at different frames: the batch shrinks twice."""
    return [GenerationRequest("Hi.", 0, max_audio_length_ms=11 * FRAME_MS, topk=1),
            GenerationRequest("A much longer sentence to speak here.", 1, max_audio_length_ms=5 * FRAME_MS, seed=3),
            GenerationRequest("Medium text.", 0, max_audio_length_ms=8 * FRAME_MS, seed=4, temperature=0.7)]


def test_bucketed_steps_with_stale_rows_equal_each_rows_own_run(tiny_generator, monkeypatch):
    loop, replayed = tiny_generator.frame_loop, []

    def replay(rows, kv_len):
        replayed.append((rows, kv_len))
        loop._step(rows, kv_len, loop.steps)

    monkeypatch.setattr(loop, "graphs", {bucket: partial(replay, *bucket) for bucket in loop.buckets()})
    batched = tiny_generator.generate_codes_batch(requests())
    monkeypatch.setattr(loop, "graphs", {})

    # 3 live rows in the 4-row bucket (one stale row), then 2 after a compaction, then 1; all in the shortest
    # cache bucket, whose positions past each row's own are stale or empty
    assert list(dict.fromkeys(replayed)) == [(4, 256), (2, 256), (1, 256)]
    for codes, request in zip(batched, requests()):
        alone = tiny_generator.generate_codes_batch([request])[0]
        assert codes.shape == alone.shape == (int(request.max_audio_length_ms / FRAME_MS), 32)
        torch.testing.assert_close(codes, alone, rtol=0, atol=0)


@pytest.fixture(scope="module")
def compiled_generator(tiny_model_dir, tmp_path_factory):
    """The tiny model with torch.compile'd frame steps. Batch buckets 1, 2 and 4 give every kind of graph that
    a larger max_batch gives: Dynamo compiles the first bucket (the largest) with static shapes, the next one
    with a dynamic batch that serves every other bucket over one row, and one row apart."""
    generator = load_generator(tiny_model_dir, device="cpu", cache_dir=tmp_path_factory.mktemp("csm-cache"),
                               max_batch_size=4, compile=True)
    generator.warm_up()
    return generator


def test_compiled_codes_equal_eager_codes_and_serving_compiles_nothing(compiled_generator, tiny_generator):
    assert compiled_generator.compiled and compiled_generator.compile_s > 0

    # three rows, two, then one; each step attends to exactly its used positions (no graphs on a CPU)
    with torch._dynamo.config.patch(error_on_recompile=True):  # the warm-up compiled every graph it needs
        compiled = compiled_generator.generate_codes_batch(requests())

    for codes, request in zip(compiled, requests()):
        torch.testing.assert_close(codes, tiny_generator.generate_codes_batch([request])[0], rtol=0, atol=0)


def test_a_failed_compile_or_capture_is_logged_and_runs_eager(tiny_model_dir, tmp_path, monkeypatch, caplog):
    def broken(model):
        raise RuntimeError("the compiler broke")

    monkeypatch.setattr(batching, "compiled_steps", broken)
    generator = load_generator(tiny_model_dir, device="cpu", cache_dir=tmp_path, compile=True)
    generator.use_cuda_graphs = True  # on a CPU, capturing fails: no CUDA

    with caplog.at_level(logging.ERROR, logger="csm.generator"):
        generator.warm_up()

    assert [r.getMessage().split()[0] for r in caplog.records] == ["csm_compile_failed", "csm_capture_failed"]
    assert "the compiler broke" in caplog.text
    assert not generator.compiled and not generator.graphed
    request = requests()[0]
    torch.testing.assert_close(generator.generate_codes_batch([request])[0],
                               load_generator(tiny_model_dir, device="cpu", cache_dir=tmp_path).generate_codes_batch(
                                   [request])[0], rtol=0, atol=0)
