"""Text (+ optional conversational context) -> 24 kHz speech, following Sesame's reference generator."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Sequence

import torch
from torch import Tensor

from .config import FRAME_MS, SAMPLE_RATE
from .model import CsmModel, Sampler
from .prompt import audio_rows, text_rows
from .sampling import sample_topk

if TYPE_CHECKING:
    from moshi.models.compression import MimiModel
    from transformers import PreTrainedTokenizerFast

logger = logging.getLogger(__name__)

# The loop looks for the end-of-audio frame once per this many frames (one host sync each time);
# frames sampled past the end are dropped, so this trades a little wasted work for fewer syncs.
EOS_CHECK_FRAMES = 4


@dataclass
class Segment:
    speaker: int
    text: str
    audio: Tensor  # (samples,) mono float waveform at SAMPLE_RATE (not resampled here)


class Generator:
    sample_rate = SAMPLE_RATE

    def __init__(self, model: CsmModel, tokenizer: PreTrainedTokenizerFast, mimi: MimiModel, *,
                 max_batch_size: int = 1):
        self.model = model
        self.tokenizer = tokenizer
        self.mimi = mimi
        self.config = model.config
        self.device = model.codebook0_head.weight.device
        model.setup_caches(max_batch_size)

    @torch.inference_mode()
    def encode_audio(self, audio: Tensor) -> Tensor:
        """(samples,) float waveform at 24 kHz -> (frames, K) Mimi codes, on the CPU."""
        if audio.ndim != 1:
            raise ValueError(f"context audio must be mono with shape (samples,), got {tuple(audio.shape)}")
        codes = self.mimi.encode(audio.to(self.device, torch.float32)[None, None])  # (1, K, frames)
        return codes[0].T.cpu()

    @torch.inference_mode()
    def decode_codes(self, codes: Tensor) -> Tensor:
        """(frames, K) codes -> (frames * SAMPLES_PER_FRAME,) float32 waveform on the CPU.

        The audio vocabulary has a few ids past Mimi's codebooks (2048..2050); a trained model does not
        sample them, random weights may: they decode as code 0 instead of failing."""
        if codes.size(0) == 0:
            return torch.zeros(0)
        codes = codes.masked_fill(codes >= self.mimi.cardinality, 0)
        audio = self.mimi.decode(codes.T[None].to(self.device))  # (1, 1, samples)
        return audio[0, 0].float().cpu()

    @torch.inference_mode()
    def generate_codes(self, text: str, speaker: int, context: Sequence[Segment] = (),
                       max_audio_length_ms: float = 90_000, temperature: float = 0.9, topk: int = 50,
                       seed: int | None = None) -> Tensor:
        """Samples Mimi codes for `text` spoken by `speaker` -> (frames, K) int64 on the CPU, without the
        end-of-audio frame. Same arguments as `generate`."""
        max_frames = int(max_audio_length_ms / FRAME_MS)
        if max_frames < 1:
            raise ValueError(f"max_audio_length_ms must be at least one frame ({FRAME_MS} ms)")
        if not 1 <= topk <= self.config.audio_vocab_size or temperature <= 0:
            raise ValueError(f"topk must be in 1..{self.config.audio_vocab_size} and temperature > 0")
        tokens, mask = self._prompt(text, speaker, context)  # (S, W) each
        max_seq_len = self.config.max_seq_len
        if tokens.size(0) + max_frames > max_seq_len:
            raise ValueError(
                f"prompt of {tokens.size(0)} rows plus {max_frames} frames to generate exceeds the "
                f"{max_seq_len}-row context: shorten the context or max_audio_length_ms")
        generator = torch.Generator(device=self.device)
        if seed is None:
            generator.seed()
        else:
            generator.manual_seed(seed)
        sample = partial(sample_topk, topk=topk, temperature=temperature, generator=generator)
        return self._generate_frames(tokens.to(self.device), mask.to(self.device), max_frames, sample).cpu()

    @torch.inference_mode()
    def generate(self, text: str, speaker: int, context: Sequence[Segment] = (),
                 max_audio_length_ms: float = 90_000, temperature: float = 0.9, topk: int = 50,
                 seed: int | None = None) -> Tensor:
        """Speech for `text` -> (samples,) float32 at 24 kHz on the CPU.

        Stops at the model's end-of-audio frame or after max_audio_length_ms. Sampling is top-k with
        temperature on every codebook (topk=1: greedy); a fixed `seed` reproduces the output.
        Raises ValueError if the prompt plus the frames to generate do not fit the context.
        """
        start = time.perf_counter()
        codes = self.generate_codes(text, speaker, context, max_audio_length_ms, temperature, topk, seed)
        audio = self.decode_codes(codes)
        elapsed = time.perf_counter() - start
        audio_s = audio.numel() / SAMPLE_RATE
        logger.info("csm_generate frames=%d audio_s=%.2f gen_s=%.2f rtf=%.3f", codes.size(0), audio_s, elapsed,
                    elapsed / audio_s if audio_s else float("nan"))
        return audio

    def _prompt(self, text: str, speaker: int, context: Sequence[Segment]) -> tuple[Tensor, Tensor]:
        """Context segments (text rows, audio rows, end frame) then the text to speak -> (S, W), (S, W)."""
        parts = []
        for segment in context:
            parts.append(self._text_rows(segment.text, segment.speaker))
            parts.append(audio_rows(self.encode_audio(segment.audio), self.config))
        parts.append(self._text_rows(text, speaker))
        tokens, masks = zip(*parts)
        return torch.cat(tokens), torch.cat(masks)

    def _text_rows(self, text: str, speaker: int) -> tuple[Tensor, Tensor]:
        return text_rows(self.tokenizer.encode(f"[{speaker}]{text}"), self.config)

    def _generate_frames(self, tokens: Tensor, mask: Tensor, max_frames: int, sample: Sampler) -> Tensor:
        """Prompt (S, W) + mask -> (frames, K) codes up to (excluding) the first end-of-audio frame."""
        model, eos_id = self.model, self.config.codebook_eos_token_id
        positions = torch.arange(tokens.size(0), device=self.device)
        hidden = model.forward_backbone(model.embed_rows(tokens[None], mask[None]), positions)  # (1, H)
        position = positions[-1:].clone()
        frames = torch.empty(max_frames, self.config.num_codebooks, dtype=torch.long, device=self.device)
        done = 0
        while done < max_frames:
            frame = model.sample_frame(hidden, sample)  # (1, K)
            frames[done] = frame[0]
            done += 1
            if done % EOS_CHECK_FRAMES == 0 and (frames[done - EOS_CHECK_FRAMES:done] == eos_id).all(-1).any():
                break
            if done < max_frames:
                position += 1
                hidden = model.forward_backbone(model.embed_frame(frame), position)
        ends = (frames[:done] == eos_id).all(-1).nonzero()
        return frames[: int(ends[0, 0]) if len(ends) else done]
