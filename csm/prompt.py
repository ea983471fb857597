"""Prompt rows in Sesame's layout: W = K + 1 columns (K codebooks, then text), with a bool mask of
the active columns. Text rows carry one token in the text column; audio rows carry K codes."""

from __future__ import annotations

import torch
from torch import Tensor

from .config import CsmConfig


def text_rows(token_ids: list[int], config: CsmConfig) -> tuple[Tensor, Tensor]:
    """Token ids (already `<bos> [speaker]text <eos>`) -> tokens (S, W) long, mask (S, W) bool."""
    tokens = torch.zeros(len(token_ids), config.frame_width, dtype=torch.long)
    mask = torch.zeros(len(token_ids), config.frame_width, dtype=torch.bool)
    tokens[:, -1] = torch.tensor(token_ids, dtype=torch.long)
    mask[:, -1] = True
    return tokens, mask


def audio_rows(codes: Tensor, config: CsmConfig) -> tuple[Tensor, Tensor]:
    """Codes (F, K) of one context segment -> tokens (F + 1, W), mask (F + 1, W): the audio, then the
    end-of-audio frame (all `codebook_eos_token_id`)."""
    frames = codes.size(0) + 1
    tokens = torch.zeros(frames, config.frame_width, dtype=torch.long)
    tokens[:-1, : config.num_codebooks] = codes.cpu()
    tokens[-1, : config.num_codebooks] = config.codebook_eos_token_id
    mask = torch.zeros(frames, config.frame_width, dtype=torch.bool)
    mask[:, : config.num_codebooks] = True
    return tokens, mask
