"""Speed of CSM-1B generation: transformers vs a Sesame-style reference loop vs this engine.

Random weights of the real CSM-1B shape (transformers' `CsmConfig()` defaults), built in memory and
shared by all three; nothing is downloaded or written but the results. On the same weights and device:
  (a) transformers' `CsmForConditionalGeneration.generate`
  (b) a reference-style loop like Sesame's generator: batch 1, eager, a host sync every frame, the depth
      decoder's cache reset every frame, attention over the whole 2048-row cache
  (c) this engine (`Generator.generate_batch`) at several batch sizes
Each run samples (top-k 50, temperature 0.9) a fixed number of frames per row (random weights never
end on their own). Reported per run: aggregate frames/s, real-time factor, time to first frame (prompt
plus one frame of codes), Mimi decode time, peak memory, and the memory-bandwidth floor: the bytes of
weights one frame step reads, at the copy bandwidth this script measures, over the measured step time.

Usage (GPU if present: bf16, engine batches 1 8 32 64; else CPU: fp32, batches 1 4 8, a short run):
    python -m csm.bench [--frames N] [--batches 1 4 8] [--hf-batches 1 8] [--out bench/results]
On a GPU machine, tests and benchmark in one command:
    python -m pytest tests/csm -q && python -m csm.bench
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import resource
import threading
import time
from dataclasses import asdict, dataclass
from importlib.metadata import version
from pathlib import Path

import torch
from torch import Tensor
from transformers import CsmConfig as TransformersCsmConfig
from transformers import CsmForConditionalGeneration

from .config import FRAME_MS, CsmConfig
from .generator import GenerationRequest, Generator
from .loading import default_device, default_dtype
from .model import CsmModel
from .tiny import byte_tokenizer, random_mimi
from .weights import CODEC_PREFIX, to_our_key

TEXT = "The quick brown fox jumps over the lazy dog, then takes a long nap in the afternoon sun."
TOPK, TEMPERATURE = 50, 0.9


@dataclass
class Run:
    impl: str  # "transformers", "reference" or "engine"
    batch: int
    frames: int  # per row
    gen_s: float  # prompt + all frames, codes ready on the host
    decode_s: float  # Mimi, codes -> waveforms
    ttfa_s: float  # prompt + first frame, codes on the host
    peak_mem_mb: float  # CUDA: peak allocated; CPU: peak resident set of the process
    frames_per_s: float = 0.0  # aggregate over the batch, generation only
    rtf: float = 0.0  # wall (generation + decode) / audio seconds of one row
    x_realtime: float = 0.0  # aggregate audio seconds per wall second
    floor_fraction: float = 0.0  # bandwidth floor of one frame step / measured step time

    def finish(self, floor_step_s: float) -> Run:
        audio_s = self.frames * FRAME_MS / 1000
        wall = self.gen_s + self.decode_s
        self.frames_per_s = self.batch * self.frames / self.gen_s
        self.rtf = wall / audio_s
        self.x_realtime = self.batch * audio_s / wall
        self.floor_fraction = floor_step_s / (self.gen_s / self.frames)
        return self


# --- the shared weights -------------------------------------------------------------------------

def build_models(device: torch.device, dtype: torch.dtype) -> tuple[CsmForConditionalGeneration, CsmModel]:
    """transformers' CSM-1B with random weights, and our CsmModel viewing the same tensors."""
    hf_config = TransformersCsmConfig()
    with torch.device(device):
        reference = CsmForConditionalGeneration(hf_config).to(dtype).eval()
    with torch.device("meta"):
        model = CsmModel(CsmConfig.from_dict(hf_config.to_dict()))
    state = {}
    for key, tensor in reference.state_dict().items():
        if not key.startswith(CODEC_PREFIX):
            state.setdefault(to_our_key(key), tensor)  # the tied codebook embeddings appear twice
    model.load_state_dict(state, strict=True, assign=True)
    return reference, model.eval()


def weight_bytes_per_step(model: CsmModel) -> int:
    """Bytes of weights one frame step reads: the backbone and codebook-0 head once, the projection and
    depth decoder once per depth step (K - 1), every depth head once. Embedding rows are negligible."""
    def size(*modules) -> int:
        return sum(p.numel() * p.element_size() for m in modules for p in m.parameters())

    depth_steps = model.config.num_codebooks - 1
    head = model.audio_head.numel() * model.audio_head.element_size()
    return size(model.backbone, model.codebook0_head) + depth_steps * size(model.projection, model.decoder) + head


def copy_bandwidth(device: torch.device, megabytes: int = 512, repeats: int = 5) -> float:
    """Bytes per second of a large device copy (read + write), best of `repeats`."""
    src = torch.ones(megabytes * 2**20, dtype=torch.uint8, device=device)  # touched: no shared zero pages
    dst = torch.zeros_like(src)
    best = float("inf")
    for _ in range(repeats):
        start = _now(device)
        dst.copy_(src)
        best = min(best, _now(device) - start)
    return 2 * src.numel() / best


# --- measuring ----------------------------------------------------------------------------------

def _now(device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


class PeakMemory:
    """Peak memory during a `with` block: CUDA allocations, or the process's resident set (sampled)."""

    def __init__(self, device: torch.device):
        self.device, self.peak_mb = device, 0.0

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        page = resource.getpagesize()
        while True:
            resident = int(Path("/proc/self/statm").read_text().split()[1]) * page / 2**20
            self.peak_mb = max(self.peak_mb, resident)
            if self._stop.wait(0.05):
                return

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            self.peak_mb = torch.cuda.max_memory_allocated(self.device) / 2**20
        else:
            self._stop.set()
            self._thread.join()


def timed(device: torch.device, fn):
    start = _now(device)
    result = fn()
    return result, _now(device) - start


# --- (a) transformers ---------------------------------------------------------------------------

def run_transformers(reference: CsmForConditionalGeneration, generator: Generator, ids: Tensor, batch: int,
                     frames: int) -> Run:
    device = generator.device
    input_ids = ids.expand(batch, -1).to(device)

    def generate(new_frames: int) -> Tensor:
        with torch.inference_mode():
            return reference.generate(input_ids=input_ids, max_new_tokens=new_frames,
                                      do_sample=True, top_k=TOPK, temperature=TEMPERATURE,
                                      depth_decoder_do_sample=True, depth_decoder_top_k=TOPK,
                                      depth_decoder_temperature=TEMPERATURE).cpu()  # (B, frames, K)

    generate(2)  # warm-up
    _, ttfa = timed(device, lambda: generate(1))
    with PeakMemory(device) as peak:
        codes, gen_s = timed(device, lambda: generate(frames))
    _, decode_s = timed(device, lambda: [generator.decode_codes(row) for row in codes])  # one row at a time
    return Run("transformers", batch, codes.size(1), gen_s, decode_s, ttfa, peak.peak_mb)


# --- (b) a Sesame-style reference loop ----------------------------------------------------------

def sesame_sample(logits: Tensor) -> Tensor:
    """Sesame's sampling: top-k, temperature, softmax, then argmax(probs / Exp(1)) from the global RNG."""
    logits = logits.float() / TEMPERATURE
    kth = torch.topk(logits, TOPK, dim=-1).values[..., -1:]
    probs = torch.softmax(logits.masked_fill(logits < kth, float("-inf")), dim=-1)
    return (probs / torch.empty_like(probs).exponential_(1)).argmax(dim=-1)


def reference_loop(model: CsmModel, tokens: Tensor, mask: Tensor, frames: int, device: torch.device,
                   first_frame_at: list[float]) -> Tensor:
    """Batch 1, like Sesame's `Generator.generate`: (S, W) prompt -> (frames, K) codes. Appends the time
    of the first frame to `first_frame_at`."""
    config, max_seq = model.config, model.config.max_seq_len
    codebooks, vocab = config.num_codebooks, config.audio_vocab_size
    tokens, mask = tokens[None].to(device), mask[None].to(device)  # (1, S, W)
    position = torch.arange(tokens.size(1), device=device)[None]  # (1, S)
    hidden = model.forward_backbone(model.embed_rows(tokens, mask), position, max_seq)[:, -1]  # (1, H)
    position = position[:, -1:]
    out = []
    for _ in range(frames):
        for layer in model.decoder.layers:  # the reference resets the depth decoder's cache every frame
            layer.self_attn.kv_cache.k.zero_()
            layer.self_attn.kv_cache.v.zero_()
        code = sesame_sample(model.codebook0_head(hidden))
        codes = [code]
        x = torch.stack((hidden, model.audio_embeddings(code)), dim=1)  # (1, 2, H)
        depth_position = torch.arange(2, device=device)[None]
        for codebook in range(1, codebooks):
            out_hidden = model.decoder(model.projection(x), depth_position, codebooks)[:, -1]
            code = sesame_sample(out_hidden @ model.audio_head[codebook - 1])
            codes.append(code)
            x = model.audio_embeddings(code + codebook * vocab)[:, None]
            depth_position = depth_position[:, -1:] + 1
        frame = torch.stack(codes, dim=1)  # (1, K)
        if torch.all(frame == 0):  # a host sync every frame
            break
        if not first_frame_at:
            first_frame_at.append(time.perf_counter())
        out.append(frame)
        # the next backbone input: the frame as a full prompt row (K codes + an empty text column)
        row = torch.cat((frame, torch.zeros(1, 1, dtype=torch.long, device=device)), dim=1)[:, None]
        row_mask = torch.cat((torch.ones_like(frame, dtype=torch.bool),
                              torch.zeros(1, 1, dtype=torch.bool, device=device)), dim=1)[:, None]
        position = position + 1
        hidden = model.forward_backbone(model.embed_rows(row, row_mask), position, max_seq)[:, -1]
    return torch.cat(out).cpu()


def run_reference(generator: Generator, frames: int) -> Run:
    device, model = generator.device, generator.model
    tokens, mask = generator._prompt(TEXT, 0, ())
    with torch.inference_mode():
        reference_loop(model, tokens, mask, 2, device, [])  # warm-up
        first: list[float] = []
        with PeakMemory(device) as peak:
            start = _now(device)
            codes = reference_loop(model, tokens, mask, frames, device, first)
            gen_s = _now(device) - start
    _, decode_s = timed(device, lambda: generator.decode_codes(codes))
    return Run("reference", 1, codes.size(0), gen_s, decode_s, first[0] - start, peak.peak_mb)


# --- (c) this engine ----------------------------------------------------------------------------

def run_engine(generator: Generator, batch: int, frames: int) -> Run:
    device = generator.device

    def requests(n_frames: int) -> list[GenerationRequest]:
        return [GenerationRequest(TEXT, 0, max_audio_length_ms=n_frames * FRAME_MS, temperature=TEMPERATURE,
                                  topk=TOPK, seed=row) for row in range(batch)]

    _, ttfa = timed(device, lambda: generator.generate_codes_batch(requests(1)))
    with PeakMemory(device) as peak:
        codes, gen_s = timed(device, lambda: generator.generate_codes_batch(requests(frames)))
        _, decode_s = timed(device, lambda: generator.decode_batch(codes))
    return Run("engine", batch, min(c.size(0) for c in codes), gen_s, decode_s, ttfa, peak.peak_mb)


# --- the report ---------------------------------------------------------------------------------

def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return f"{line.split(':', 1)[1].strip()} ({torch.get_num_threads()} threads)"
    return platform.processor() or "cpu"


def table(runs: list[Run]) -> str:
    header = (f"{'impl':<13}{'batch':>6}{'frames':>7}{'frames/s':>10}{'RTF':>8}{'x real':>8}{'TTFA s':>8}"
              f"{'gen s':>8}{'Mimi s':>8}{'peak MB':>9}{'floor %':>8}")
    lines = [header, "-" * len(header)]
    for r in runs:
        lines.append(f"{r.impl:<13}{r.batch:>6}{r.frames:>7}{r.frames_per_s:>10.2f}{r.rtf:>8.3f}"
                     f"{r.x_realtime:>8.2f}{r.ttfa_s:>8.2f}{r.gen_s:>8.2f}{r.decode_s:>8.2f}{r.peak_mem_mb:>9.0f}"
                     f"{100 * r.floor_fraction:>8.1f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    cuda = torch.cuda.is_available()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=default_device())
    parser.add_argument("--frames", type=int, default=200 if cuda else 24, help="frames per row (80 ms each)")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32, 64] if cuda else [1, 4, 8])
    parser.add_argument("--hf-batches", type=int, nargs="+", default=[1, 8], help="transformers batch sizes")
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    dtype = default_dtype(device)
    torch.manual_seed(0)

    start = time.perf_counter()
    reference, model = build_models(device, dtype)
    generator = Generator(model, byte_tokenizer(), random_mimi(0, model.config.num_codebooks, device),
                          max_batch_size=max(args.batches))
    build_s = time.perf_counter() - start
    warm_up_s = generator.warm_up()
    bandwidth = copy_bandwidth(device)
    step_bytes = weight_bytes_per_step(model)
    floor_step_s = step_bytes / bandwidth
    print(f"device={device_name(device)} dtype={dtype} build_s={build_s:.1f} warm_up_s={warm_up_s:.1f} "
          f"copy_GBps={bandwidth / 1e9:.1f} weight_GB_per_step={step_bytes / 1e9:.2f} "
          f"floor_ms_per_step={1000 * floor_step_s:.1f}", flush=True)

    ids = torch.tensor([generator.tokenizer.encode(f"[0]{TEXT}")])
    runs = []
    for batch in args.hf_batches:
        runs.append(run_transformers(reference, generator, ids, batch, args.frames).finish(floor_step_s))
        print(table(runs[-1:]).splitlines()[-1], flush=True)
    runs.append(run_reference(generator, args.frames).finish(floor_step_s))
    print(table(runs[-1:]).splitlines()[-1], flush=True)
    for batch in args.batches:
        runs.append(run_engine(generator, batch, args.frames).finish(floor_step_s))
        print(table(runs[-1:]).splitlines()[-1], flush=True)
    print(table(runs))

    now = dt.datetime.now(dt.timezone.utc)
    report = {
        "date": now.isoformat(timespec="seconds"), "device": device_name(device), "dtype": str(dtype),
        "versions": {name: version(name) for name in ("torch", "transformers", "moshi")} | {
            "python": platform.python_version(), "cuda": torch.version.cuda},
        "model": "CSM-1B shape (transformers CsmConfig() defaults), random weights",
        "text": TEXT, "prompt_rows": ids.size(1), "topk": TOPK, "temperature": TEMPERATURE,
        "build_s": build_s, "warm_up_s": warm_up_s, "copy_bandwidth_Bps": bandwidth,
        "weight_bytes_per_step": step_bytes, "floor_s_per_step": floor_step_s,
        "runs": [asdict(r) for r in runs],
    }
    slug = "".join(c if c.isalnum() else "-" for c in device_name(device).lower()).strip("-")
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"csm_bench_{device.type}_{slug[:40]}_{now:%Y%m%d}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
