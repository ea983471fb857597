"""Text (+ optional conversational context) -> 24 kHz speech, following Sesame's reference generator,
for a batch of requests at once (see `batching.py` for the frame loop)."""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import torch
from torch import Tensor

from .batching import FrameLoop, RowJob
from .config import FRAME_MS, SAMPLE_RATE, SAMPLES_PER_FRAME
from .model import CsmModel
from .prompt import audio_rows, text_rows
from .sampling import noise_key

if TYPE_CHECKING:
    from moshi.models.compression import MimiModel
    from transformers import PreTrainedTokenizerFast

logger = logging.getLogger(__name__)

# Mimi decodes right-padded rows together (it is causal: padding after a row does not change it);
# at most this many frames (rows x longest row) per decode call, which bounds its activations.
MIMI_DECODE_FRAMES = 2048


@dataclass
class Segment:
    speaker: int
    text: str
    audio: Tensor  # (samples,) mono float waveform at SAMPLE_RATE (not resampled here)


# Sesame's generator defaults (the job domain's equal them: tests/test_shared_constants.py)
MAX_AUDIO_LENGTH_MS = 90_000
DEFAULT_TEMPERATURE = 0.9
DEFAULT_TOPK = 50


@dataclass(frozen=True)
class GenerationRequest:
    """One utterance to synthesise; checked when generated (a bad request fails alone, not its batch)."""

    text: str
    speaker: int
    context: Sequence[Segment] = ()
    max_audio_length_ms: float = MAX_AUDIO_LENGTH_MS
    temperature: float = DEFAULT_TEMPERATURE
    topk: int = DEFAULT_TOPK  # 1: greedy
    seed: int | None = None  # None: a fresh random seed


class Generator:
    sample_rate = SAMPLE_RATE

    def __init__(self, model: CsmModel, tokenizer: PreTrainedTokenizerFast, mimi: MimiModel, *,
                 max_batch_size: int = 1, compile: bool = False, cuda_graphs: bool = True):
        """compile: torch.compile the frame step's functions at warm-up. cuda_graphs: capture whole frame
        steps as CUDA graphs at warm-up (CUDA only). Either falls back to eager if it fails."""
        if max_batch_size < 1:
            raise ValueError("max_batch_size must be at least 1")
        self.model = model
        self.tokenizer = tokenizer
        self.mimi = mimi
        self.config = model.config
        self.device = model.codebook0_head.weight.device
        self.max_batch_size = max_batch_size
        self.frame_loop = FrameLoop(model, max_batch_size)
        self.use_compile = compile
        self.use_cuda_graphs = cuda_graphs and self.device.type == "cuda"
        self.compile_s = 0.0  # set by warm_up
        self.capture_s = 0.0

    @property
    def compiled(self) -> bool:
        """Whether frames run through compiled functions (after warm-up, unless compiling failed)."""
        return self.frame_loop.steps is not self.frame_loop.eager

    @property
    def graphed(self) -> bool:
        """Whether frames replay CUDA graphs (after warm-up on CUDA, unless capturing failed)."""
        return bool(self.frame_loop.graphs)

    def warm_up(self) -> float:
        """Compiles (if asked), then captures the CUDA graphs (if asked, on CUDA), then runs one short request.
        Returns the seconds taken in all; `compile_s` and `capture_s` hold the parts. A failure to compile or
        capture is logged and leaves the eager path (or the compiled one without graphs) in place."""
        start = time.perf_counter()
        loop = self.frame_loop
        if self.use_compile and not self.compiled:
            try:
                loop.compile()
            except Exception:  # noqa: BLE001 - any compiler failure: run eager rather than not at all
                logger.exception("csm_compile_failed device=%s: running eager", self.device)
                loop.steps = loop.eager
            self.compile_s = time.perf_counter() - start
        if self.use_cuda_graphs and not self.graphed:
            captured = time.perf_counter()
            try:
                loop.capture()
            except Exception:  # noqa: BLE001
                logger.exception("csm_capture_failed device=%s: running without CUDA graphs", self.device)
                loop.graphs.clear()
            self.capture_s = time.perf_counter() - captured
        self.generate_codes_batch([GenerationRequest("Hi.", 0, max_audio_length_ms=2 * FRAME_MS, seed=0)])
        elapsed = time.perf_counter() - start
        logger.info("csm_warm_up device=%s compiled=%s graphs=%d compile_s=%.2f capture_s=%.2f warm_up_s=%.2f",
                    self.device, self.compiled, len(loop.graphs), self.compile_s, self.capture_s, elapsed)
        return elapsed

    @torch.inference_mode()
    def encode_audio(self, audio: Tensor) -> Tensor:
        """(samples,) float waveform at 24 kHz -> (frames, K) Mimi codes, on the CPU."""
        if audio.ndim != 1:
            raise ValueError(f"context audio must be mono with shape (samples,), got {tuple(audio.shape)}")
        codes = self.mimi.encode(audio.to(self.device, torch.float32)[None, None])  # (1, K, frames)
        return codes[0].T.cpu()

    @torch.inference_mode()
    def decode_batch(self, codes: Sequence[Tensor]) -> list[Tensor]:
        """(frames_i, K) codes per row -> (frames_i * SAMPLES_PER_FRAME,) float32 CPU waveforms, decoded
        together in right-padded groups.

        The audio vocabulary has a few ids past Mimi's codebooks (2048..2050); a trained model does not
        sample them, random weights may: they decode as code 0 instead of failing."""
        audio = [torch.zeros(0) for _ in codes]
        order = sorted((i for i in range(len(codes)) if codes[i].size(0)), key=lambda i: -codes[i].size(0))
        while order:  # longest first, so that each group holds rows of similar length
            frames = codes[order[0]].size(0)
            size = max(1, MIMI_DECODE_FRAMES // frames)
            group, order = order[:size], order[size:]
            padded = torch.zeros(len(group), frames, self.config.num_codebooks, dtype=torch.long)
            for row, i in enumerate(group):
                padded[row, : codes[i].size(0)] = codes[i]
            padded = padded.masked_fill(padded >= self.mimi.cardinality, 0)
            waves = self.mimi.decode(padded.transpose(1, 2).to(self.device)).float().cpu()  # (G, 1, samples)
            for row, i in enumerate(group):
                audio[i] = waves[row, 0, : codes[i].size(0) * SAMPLES_PER_FRAME]
        return audio

    def decode_codes(self, codes: Tensor) -> Tensor:
        """(frames, K) codes -> (frames * SAMPLES_PER_FRAME,) float32 waveform on the CPU."""
        return self.decode_batch([codes])[0]

    @torch.inference_mode()
    def generate_codes_batch(self, requests: Sequence[GenerationRequest]) -> list[Tensor | ValueError]:
        """Mimi codes per request -> (frames, K) int64 on the CPU, without the end-of-audio frame, or the
        ValueError that makes the request impossible. Runs max_batch_size requests per pass."""
        jobs: list[RowJob | ValueError] = []
        for request in requests:
            try:
                jobs.append(self._job(request))
            except ValueError as error:
                jobs.append(error)
        runnable = [i for i, job in enumerate(jobs) if isinstance(job, RowJob)]
        results: list[Tensor | ValueError] = list(jobs)
        for start in range(0, len(runnable), self.max_batch_size):
            chunk = runnable[start : start + self.max_batch_size]
            for i, codes in zip(chunk, self.frame_loop.run([jobs[i] for i in chunk])):
                results[i] = codes
        return results

    def generate_batch(self, requests: Sequence[GenerationRequest]) -> list[Tensor | ValueError]:
        """Speech per request -> (samples,) float32 at 24 kHz on the CPU, or the ValueError that makes the
        request impossible (bad arguments, prompt plus frames over the context), in request order.

        Each stops at its end-of-audio frame or after its max_audio_length_ms. Sampling is top-k with
        temperature on every codebook (topk=1: greedy); a fixed seed reproduces a request's output on the
        same device, whatever else is in its batch (up to float rounding of batched matmuls).
        """
        start = time.perf_counter()
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        results = self.generate_codes_batch(requests)
        generated = time.perf_counter()
        rendered = [i for i, result in enumerate(results) if isinstance(result, Tensor)]
        for i, audio in zip(rendered, self.decode_batch([results[i] for i in rendered])):
            results[i] = audio
        elapsed = time.perf_counter() - start
        audio_s = sum(results[i].numel() for i in rendered) / SAMPLE_RATE
        peak_mb = torch.cuda.max_memory_allocated(self.device) / 2**20 if self.device.type == "cuda" else 0.0
        logger.info("csm_generate_batch requests=%d rendered=%d audio_s=%.2f gen_s=%.2f decode_s=%.2f rtf=%.3f "
                    "peak_mem_mb=%.0f", len(requests), len(rendered), audio_s, generated - start,
                    elapsed - (generated - start), elapsed / audio_s if audio_s else float("nan"), peak_mb)
        return results

    def generate_codes(self, text: str, speaker: int, context: Sequence[Segment] = (),
                       max_audio_length_ms: float = MAX_AUDIO_LENGTH_MS,
                       temperature: float = DEFAULT_TEMPERATURE, topk: int = DEFAULT_TOPK,
                       seed: int | None = None) -> Tensor:
        """`generate_codes_batch` of one request: (frames, K) int64 codes; raises its ValueError."""
        request = GenerationRequest(text, speaker, context, max_audio_length_ms, temperature, topk, seed)
        return _raise_error(self.generate_codes_batch([request])[0])

    def generate(self, text: str, speaker: int, context: Sequence[Segment] = (),
                 max_audio_length_ms: float = MAX_AUDIO_LENGTH_MS,
                 temperature: float = DEFAULT_TEMPERATURE, topk: int = DEFAULT_TOPK,
                 seed: int | None = None) -> Tensor:
        """Speech for `text` -> (samples,) float32 at 24 kHz on the CPU: `generate_batch` of one request.
        Raises ValueError if the arguments are invalid or the prompt plus the frames do not fit the context."""
        request = GenerationRequest(text, speaker, context, max_audio_length_ms, temperature, topk, seed)
        return _raise_error(self.generate_batch([request])[0])

    @property
    def max_seq_len(self) -> int:
        """Rows of context the model sees: prompt and generated frames together."""
        return self.config.max_seq_len

    def text_rows(self, text: str, speaker: int) -> int:
        """Prompt rows that `text` spoken by `speaker` takes."""
        return len(self.tokenizer.encode(f"[{speaker}]{text}"))

    def segment_rows(self, segment: Segment) -> int:
        """Prompt rows a context segment takes: its text, its audio frames, its end frame."""
        frames = -(-segment.audio.shape[-1] // SAMPLES_PER_FRAME)
        return self.text_rows(segment.text, segment.speaker) + frames + 1

    @staticmethod
    def frames_for(max_audio_length_ms: float) -> int:
        """Frames generated at most for a length limit."""
        return int(max_audio_length_ms / FRAME_MS)

    def _job(self, request: GenerationRequest) -> RowJob:
        """Checks a request and builds its prompt rows; ValueError if it cannot be generated."""
        max_frames = self.frames_for(request.max_audio_length_ms)
        if max_frames < 1:
            raise ValueError(f"max_audio_length_ms must be at least one frame ({FRAME_MS} ms)")
        if not 1 <= request.topk <= self.config.audio_vocab_size or not request.temperature > 0:
            raise ValueError(f"topk must be in 1..{self.config.audio_vocab_size} and temperature > 0")
        tokens, mask = self._prompt(request.text, request.speaker, request.context)  # (S, W) each
        max_seq_len = self.config.max_seq_len
        if tokens.size(0) + max_frames > max_seq_len:
            raise ValueError(
                f"prompt of {tokens.size(0)} rows plus {max_frames} frames to generate exceeds the "
                f"{max_seq_len}-row context: shorten the context or max_audio_length_ms")
        seed = secrets.randbits(64) if request.seed is None else request.seed
        return RowJob(tokens, mask, max_frames, request.topk, float(request.temperature), noise_key(seed))

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
        return text_rows(self.tokenizer.encode(f"[{speaker}]{text}"), self.config)  # see text_rows()


def _raise_error(result: Tensor | ValueError) -> Tensor:
    if isinstance(result, ValueError):
        raise result
    return result
