import pytest
import torch

from csm.sampling import counter_uniform, mix32, noise_key, sample_topk


def per_row(values, dtype=torch.long):
    return torch.tensor(values, dtype=dtype)


def uniforms(rows, vocab):
    return counter_uniform(torch.arange(rows) * 7919, torch.tensor([0]), vocab)[:, 0]


def test_topk_one_is_argmax_per_row():
    logits = torch.randn(4, 2051, generator=torch.Generator().manual_seed(0))
    logits[3] = 0.0  # all tied: greedy takes the first

    ids = sample_topk(logits, per_row([1, 50, 1, 1]), per_row([0.9] * 4, torch.float), uniforms(4, 2051))

    assert ids[[0, 2]].tolist() == logits[[0, 2]].argmax(-1).tolist() and ids[3] == 0


def test_draws_stay_within_each_rows_top_k_and_cover_them():
    logits = torch.tensor([[0.0, 5.0, 1.0, 4.9, 4.8, -2.0]]).expand(2000, -1)
    topk = per_row([3] * 1000 + [2] * 1000)

    draws = sample_topk(logits, topk, torch.ones(2000), uniforms(2000, 6))

    assert set(draws[:1000].tolist()) == {1, 3, 4} and set(draws[1000:].tolist()) == {1, 3}


def test_a_cold_row_takes_its_argmax_a_hot_row_spreads():
    logits = torch.tensor([[0.0, 1.0, 0.5, 0.9]]).expand(1000, -1)
    cold = sample_topk(logits, per_row([4] * 1000), torch.full((1000,), 0.01), uniforms(1000, 4))
    hot = sample_topk(logits, per_row([4] * 1000), torch.full((1000,), 10.0), uniforms(1000, 4))
    assert set(cold.tolist()) == {1} and set(hot.tolist()) == {0, 1, 2, 3}


def test_uniforms_are_a_pure_function_of_key_counter_and_column():
    keys = torch.tensor([noise_key(s) for s in (3, 5, 9)])
    batch = counter_uniform(keys, torch.tensor([12, 13]), 2051)  # (3, 2, 2051)

    torch.testing.assert_close(batch[1:2, 1:], counter_uniform(keys[1:2], torch.tensor([13]), 2051), rtol=0, atol=0)
    assert not torch.equal(batch[1, 0], batch[1, 1]) and not torch.equal(batch[0, 0], batch[1, 0])
    assert 0 < batch.min() and batch.max() < 1 and abs(batch.mean().item() - 0.5) < 0.01


@pytest.mark.parametrize("seed", [0, 1, 2**40 + 3, -1])
def test_noise_keys_are_32_bit_and_the_hash_agrees_on_ints_and_tensors(seed):
    key = noise_key(seed)
    assert 0 <= key < 2**32
    assert mix32(torch.tensor([key])).item() == mix32(key)
