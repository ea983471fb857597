"""Batched generation: each row of a batch is its own unbatched run, whatever else shares the batch."""

import pytest
import torch

from csm import GenerationRequest, Segment, batching
from csm.batching import STOP_CHECK_FRAMES, batch_buckets
from csm.config import FRAME_MS, SAMPLES_PER_FRAME


def greedy(text, frames, **kwargs):
    return GenerationRequest(text, 0, max_audio_length_ms=frames * FRAME_MS, topk=1, **kwargs)


def test_each_greedy_row_equals_its_unbatched_run(tiny_generator, script_frames):
    context = [Segment(1, "Earlier words.", 0.1 * torch.randn(SAMPLES_PER_FRAME * 3,
                                                               generator=torch.Generator().manual_seed(0)))]
    requests = [greedy("Hi.", 12), greedy("A much longer sentence to speak here.", 7),
                greedy("Medium text.", 10, context=context)]
    stop_frame, ending = 3, [0]  # slot 0 samples the all-zero end frame at stop_frame; 1 and 2 run to their limits

    def edit(frame, codes):
        if frame == stop_frame:
            codes[ending] = 0

    steps = script_frames(tiny_generator, edit)

    batched = tiny_generator.generate_codes_batch(requests)

    assert [codes.size(0) for codes in batched] == [stop_frame, 7, 10]
    # finished rows leave the batch: at the first check after row 0's end, then at row 1's limit
    assert steps == [3] * STOP_CHECK_FRAMES + [2] * (7 - STOP_CHECK_FRAMES) + [1] * 3
    for slot, request in enumerate(requests):
        steps.clear()
        ending[:] = [0] if slot == 0 else []
        alone = tiny_generator.generate_codes_batch([request])[0]
        torch.testing.assert_close(batched[slot], alone, rtol=0, atol=0)


def test_prefill_in_chunks_equals_one_pass(tiny_generator, monkeypatch):
    requests = [greedy("Hi.", 4), greedy("A longer prompt than the first one.", 4)]
    whole = tiny_generator.generate_codes_batch(requests)
    monkeypatch.setattr(batching, "PREFILL_ROWS", 2 * 5)  # two rows of 5 prompt rows per chunk

    chunked = tiny_generator.generate_codes_batch(requests)

    for ours, theirs in zip(chunked, whole):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=0)


def test_sampled_rows_do_not_depend_on_their_batch(tiny_generator):
    def sampled(seed, text="Hello there.", topk=50):
        return GenerationRequest(text, 0, max_audio_length_ms=6 * FRAME_MS, seed=seed, topk=topk, temperature=0.9)

    batch = tiny_generator.generate_codes_batch([sampled(7, "Other.", 20), sampled(1), sampled(2)])
    alone = tiny_generator.generate_codes_batch([sampled(1)])[0]

    torch.testing.assert_close(batch[1], alone, rtol=0, atol=0)
    assert not torch.equal(batch[1], batch[2])  # same prompt, other seed


def test_bad_requests_fail_alone_and_big_batches_run_in_chunks(tiny_generator, script_frames):
    max_seq = tiny_generator.config.max_seq_len
    requests = [greedy(f"Line {i}.", 2) for i in range(6)]
    requests.insert(2, greedy("Too long.", max_seq))
    requests.insert(4, GenerationRequest("Bad topk.", 0, topk=0))
    steps = script_frames(tiny_generator, lambda frame, codes: None)

    results = tiny_generator.generate_batch(requests)

    assert [type(r).__name__ for r in results] == ["Tensor"] * 2 + ["ValueError"] + ["Tensor"] + [
        "ValueError"] + ["Tensor"] * 3
    assert "exceeds the" in str(results[2]) and "topk" in str(results[4])
    assert all(r.shape == (2 * SAMPLES_PER_FRAME,) for r in results if isinstance(r, torch.Tensor))
    assert steps == [4, 4, 2, 2]  # max_batch_size 4: a chunk of 4, then the other 2


def test_mimi_decodes_a_batch_like_each_row_alone(tiny_generator):
    gen = torch.Generator().manual_seed(0)
    codes = [torch.randint(0, 2051, (frames, 32), generator=gen) for frames in (5, 0, 3)]

    batched = tiny_generator.decode_batch(codes)

    assert [a.shape[0] for a in batched] == [5 * SAMPLES_PER_FRAME, 0, 3 * SAMPLES_PER_FRAME]
    for audio, row in zip(batched, codes):
        torch.testing.assert_close(audio, tiny_generator.decode_codes(row), rtol=0, atol=1e-5)


def test_warm_up_reports_its_seconds(tiny_generator):
    assert tiny_generator.warm_up() > 0
    assert tiny_generator.frame_loop.graphs == {}  # CUDA graphs only on CUDA


@pytest.mark.parametrize("max_batch, buckets", [(1, [1]), (8, [1, 2, 4, 8]), (48, [1, 2, 4, 8, 16, 32, 48])])
def test_graph_buckets_cover_every_batch_size(max_batch, buckets):
    assert batch_buckets(max_batch) == buckets
