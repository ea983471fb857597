import pytest
import torch

from csm.sampling import (TOPK_CAP, counter_uniform, frame_noise, mix32, noise_key, sample, sampling_params, topk_cap,
                          uniform_from_bits)


def per_row(values, dtype=torch.long):
    return torch.tensor(values, dtype=dtype)


def draw(logits, topk, temperature, frame=0):
    """One draw per row of (B, V) logits, row b keyed by b."""
    rows, vocab = logits.shape
    noise = frame_noise(torch.arange(rows) * 7919, torch.tensor([frame]), 1, vocab)[0]  # (B, V)
    params = sampling_params(topk, temperature, topk_cap(int(topk.max()), vocab))
    return sample(logits, noise, params)


def test_topk_one_is_argmax_per_row():
    logits = torch.randn(4, 2051, generator=torch.Generator().manual_seed(0))
    logits[3] = 0.0  # all tied: greedy takes the first

    ids = draw(logits, per_row([1, 50, 1, 1]), per_row([0.9] * 4, torch.float))

    assert ids[[0, 2]].tolist() == logits[[0, 2]].argmax(-1).tolist() and ids[3] == 0


def test_draws_stay_within_each_rows_top_k_and_cover_them():
    logits = torch.tensor([[0.0, 5.0, 1.0, 4.9, 4.8, -2.0]]).expand(2000, -1)
    topk = per_row([3] * 1000 + [2] * 1000)

    draws = draw(logits, topk, torch.ones(2000))

    assert set(draws[:1000].tolist()) == {1, 3, 4} and set(draws[1000:].tolist()) == {1, 3}


def test_a_top_k_past_the_cap_draws_among_that_many():
    logits = torch.zeros(4000, 2051)
    logits[:, :300] = 10.0  # 300 equally likely tokens, the rest out of reach

    draws = draw(logits, per_row([300] * 4000), torch.ones(4000))

    assert draws.max() < 300 and draws.unique().numel() > 2 * TOPK_CAP


def test_a_cold_row_takes_its_argmax_a_hot_row_spreads():
    logits = torch.tensor([[0.0, 1.0, 0.5, 0.9]]).expand(1000, -1)
    cold = draw(logits, per_row([4] * 1000), torch.full((1000,), 0.01))
    hot = draw(logits, per_row([4] * 1000), torch.full((1000,), 10.0))
    assert set(cold.tolist()) == {1} and set(hot.tolist()) == {0, 1, 2, 3}


def test_draw_frequencies_follow_the_softmax():
    logits = torch.tensor([[0.0, 1.0, 2.0]]).expand(20000, -1)

    draws = draw(logits, per_row([3] * 20000), torch.ones(20000))

    frequencies = torch.bincount(draws, minlength=3).float() / 20000
    torch.testing.assert_close(frequencies, torch.softmax(logits[0], -1), rtol=0, atol=0.015)


def test_uniforms_are_a_pure_function_of_key_counter_and_column():
    keys = torch.tensor([noise_key(s) for s in (3, 5, 9)])
    batch = counter_uniform(keys, torch.tensor([12, 13]), 2051)  # (2, 3, 2051)

    torch.testing.assert_close(batch[1:, 1:2], counter_uniform(keys[1:2], torch.tensor([13]), 2051), rtol=0, atol=0)
    assert not torch.equal(batch[0, 1], batch[1, 1]) and not torch.equal(batch[0, 0], batch[0, 1])
    assert 0 < batch.min() and batch.max() < 1 and abs(batch.mean().item() - 0.5) < 0.01


@pytest.mark.parametrize("seed", [0, 1, 2**40 + 3, -1])
def test_noise_keys_are_32_bit_and_the_hash_agrees_on_ints_and_tensors(seed):
    key = noise_key(seed)
    assert 0 <= key < 2**32
    assert mix32(torch.tensor([key])).item() == mix32(key)


def test_the_extreme_uniforms_are_strictly_inside_0_1():
    lowest, highest = uniform_from_bits(torch.tensor([0, 2**32 - 1])).tolist()
    assert 0 < lowest and highest < 1
