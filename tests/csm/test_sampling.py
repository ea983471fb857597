import torch

from csm.sampling import sample_topk


def seeded(seed=0):
    return torch.Generator().manual_seed(seed)


def test_topk_one_is_argmax():
    logits = torch.randn(4, 2051, generator=seeded())
    assert torch.equal(sample_topk(logits, 1, 0.9, seeded()), logits.argmax(-1))


def test_draws_stay_within_the_top_k_and_cover_them():
    logits = torch.tensor([[0.0, 5.0, 1.0, 4.9, 4.8, -2.0]]).expand(2000, -1)
    draws = sample_topk(logits, 3, 1.0, seeded())
    assert set(draws.tolist()) == {1, 3, 4}


def test_same_generator_seed_same_draws():
    logits = torch.randn(8, 100, generator=seeded())
    assert torch.equal(sample_topk(logits, 50, 0.9, seeded(1)), sample_topk(logits, 50, 0.9, seeded(1)))
    assert not torch.equal(sample_topk(logits, 50, 0.9, seeded(1)), sample_topk(logits, 50, 0.9, seeded(2)))
