"""Per-row top-k + temperature sampling without host-device syncs or generator state.

Each row's randomness is a pure function of (its noise key, a draw counter, the token id): a counter-based
hash, so a row's draws do not depend on the other rows of its batch, and a CUDA graph can replay the
sampling with no random-generator state to capture.
"""

from __future__ import annotations

import torch
from torch import Tensor

MASK32 = 0xFFFFFFFF
_MIX = 0x45D9F3B  # < 2**27: a 32-bit value times this fits int64 without overflow
UNIFORM_BITS = 24  # float32 holds these exactly, so the uniforms are strictly inside (0, 1)


def mix32(x):
    """A 32-bit integer hash (avalanching), for Python ints or int64 tensors holding values in [0, 2**32)."""
    x = ((x >> 16) ^ x) * _MIX & MASK32
    x = ((x >> 16) ^ x) * _MIX & MASK32
    return (x >> 16) ^ x


def noise_key(seed: int) -> int:
    """Any integer seed -> a 32-bit row key."""
    seed %= 2**64
    return mix32((seed & MASK32) ^ mix32(seed >> 32))


def counter_uniform(keys: Tensor, counters: Tensor, size: int) -> Tensor:
    """(B,) int64 row keys, (C,) int64 draw counters -> (B, C, size) float32 uniforms in (0, 1).

    Entry [b, c, v] is a hash of (keys[b], counters[c], v): the same key and counter give the same draws
    on any batch. Counters must stay below 2**32 // size."""
    ids = counters[:, None] * size + torch.arange(size, device=keys.device)  # (C, size)
    bits = mix32(mix32(keys[:, None, None] ^ mix32(ids)))  # (B, C, size) in [0, 2**32)
    return ((bits >> (32 - UNIFORM_BITS)).float() + 0.5) / 2**UNIFORM_BITS


def sample_topk(logits: Tensor, topk: Tensor, temperature: Tensor, uniform: Tensor) -> Tensor:
    """(B, V) logits, (B,) int64 topk, (B,) temperature, (B, V) uniforms -> (B,) token ids.

    Keeps each row's `topk` largest logits, divides by its temperature, and draws from the softmax as
    argmax(probs / Exp(1) noise), which equals a multinomial draw but needs no sync. A row with
    topk == 1 gets its argmax (greedy: the first of tied maxima), whatever its noise.
    """
    logits = logits.float() / temperature[:, None]
    kth_largest = logits.sort(dim=-1, descending=True).values.gather(-1, topk[:, None] - 1)  # (B, 1)
    probs = torch.softmax(logits.masked_fill(logits < kth_largest, float("-inf")), dim=-1)
    return torch.where(topk == 1, logits.argmax(dim=-1), (probs / -uniform.log()).argmax(dim=-1))
