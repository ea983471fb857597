"""Top-k + temperature sampling without host-device syncs."""

from __future__ import annotations

import torch
from torch import Tensor


def sample_topk(logits: Tensor, topk: int, temperature: float, generator: torch.Generator) -> Tensor:
    """(B, V) logits -> (B,) token ids.

    Keeps the `topk` largest logits, divides by `temperature`, and draws from the softmax as
    argmax(probs / Exp(1) noise), which equals a multinomial draw but needs no sync.
    `topk == 1` is plain argmax (greedy) and consumes no randomness.
    """
    if topk == 1:
        return logits.argmax(dim=-1)
    logits = logits.float() / temperature
    kth_largest = torch.topk(logits, topk, dim=-1).values[..., -1:]
    logits = logits.masked_fill(logits < kth_largest, float("-inf"))
    probs = torch.softmax(logits, dim=-1)
    noise = torch.empty_like(probs).exponential_(1, generator=generator)
    return (probs / noise).argmax(dim=-1)
