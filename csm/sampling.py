"""Per-row top-k + temperature sampling without host-device syncs or generator state.

Each row's randomness is a pure function of (its noise key, a draw counter, the token id): a counter-based
hash, so a row's draws do not depend on the other rows of its batch, and a CUDA graph can replay the
sampling with no random-generator state to capture. A draw keeps the row's top-k logits, divides them by its
temperature and adds Gumbel noise: the argmax is a draw from their softmax (the Gumbel-max trick, the same
winner as Sesame's argmax(probs / Exp(1))). Only the `cap` largest logits are candidates, a static size, so
the step keeps its shapes whatever each row's top-k.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

MASK32 = 0xFFFFFFFF
_MIX = 0x45D9F3B  # < 2**27: a 32-bit value times this fits int64 without overflow
UNIFORM_BITS = 23  # (x + 0.5) / 2**23 needs 24 bits: float32 holds it exactly, strictly inside (0, 1)
TOPK_CAP = 64  # candidates per draw when every row's top-k fits; larger top-k: all V are candidates


class SamplingParams(NamedTuple):
    """Per-row sampling settings of a batch; see `sample`."""

    greedy: Tensor  # (B,) bool: take the argmax (the first of tied maxima)
    inv_temperature: Tensor  # (B,) float32
    rank_penalty: Tensor  # (B, cap) float32: 0 for the row's top-k ranks, -inf past them


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
    """(B,) int64 row keys, (C,) int64 draw counters -> (C, B, size) float32 uniforms in (0, 1).

    Entry [c, b, v] is a hash of (keys[b], counters[c], v): the same key and counter give the same draws
    on any batch. Counters must stay below 2**32 // size."""
    ids = counters[:, None, None] * size + torch.arange(size, device=keys.device)  # (C, 1, size)
    return uniform_from_bits(mix32(mix32(keys[:, None] ^ mix32(ids))))  # (C, B, size)


def uniform_from_bits(bits: Tensor) -> Tensor:
    """int64 values in [0, 2**32) -> float32 uniforms strictly inside (0, 1)."""
    return ((bits >> (32 - UNIFORM_BITS)).float() + 0.5) / 2**UNIFORM_BITS


def frame_noise(keys: Tensor, frame: Tensor, codebooks: int, vocab: int) -> Tensor:
    """(B,) row keys, (1,) frame counter -> (K, B, V) Gumbel noise for every codebook of the frame. Draw
    counter = frame * K + codebook."""
    counters = frame * codebooks + torch.arange(codebooks, device=keys.device)  # (K,)
    return -torch.log(-torch.log(counter_uniform(keys, counters, vocab)))


def sampling_params(topk: Tensor, temperature: Tensor, cap: int) -> SamplingParams:
    """(B,) int64 top-k and (B,) temperatures -> the batch's SamplingParams with `cap` candidates."""
    ranks = torch.arange(cap, device=topk.device)
    penalty = torch.where(ranks < topk[:, None], 0.0, float("-inf"))  # (B, cap) float32
    return SamplingParams(topk == 1, 1.0 / temperature.float(), penalty)


def topk_cap(max_topk: int, vocab: int) -> int:
    """Candidates per draw for a batch whose largest top-k is `max_topk`."""
    return min(TOPK_CAP, vocab) if max_topk <= TOPK_CAP else vocab


def sample(logits: Tensor, noise: Tensor, params: SamplingParams) -> Tensor:
    """(B, V) logits, (B, V) Gumbel noise -> (B,) token ids: a draw among each row's top-k logits at its
    temperature, or the argmax for greedy rows."""
    values, ids = logits.topk(params.rank_penalty.size(1), dim=-1)  # (B, cap), largest first
    scores = torch.addcmul(params.rank_penalty + noise.gather(1, ids), values.float(), params.inv_temperature[:, None])
    drawn = ids.gather(1, scores.argmax(dim=-1, keepdim=True))[:, 0]
    return torch.where(params.greedy, logits.argmax(dim=-1), drawn)
