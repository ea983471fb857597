"""Speed of CSM generation: transformers vs a Sesame-style reference loop vs this engine.

Random weights of the real CSM-1B shape (transformers' `CsmConfig()` defaults; `--shape tiny` for the test
model), built in memory and shared by every implementation; nothing is downloaded or written but the results:
  transformers  `CsmForConditionalGeneration.generate`
  reference     a loop like Sesame's generator: batch 1, eager, a host sync every frame, the depth decoder's
                cache reset every frame, attention over the whole 2048-row cache
  engine        this engine (`Generator.generate_codes_batch`): eager, or with torch.compile, and on CUDA with
                CUDA graphs; each variant is named in the table, e.g. "engine (compiled, graphs)"
Each run samples (top-k 50, temperature 0.9) a fixed number of frames per row (random weights never end on
their own). Timings move on a shared machine, so the cases are interleaved (their order rotates every
repeat), each is repeated (median of at least 3), and the spread (min..max) is printed: a ratio whose spread
includes 1 is called parity. Also per case: ATen ops per frame in eager mode (a dispatch-mode count of
non-view ops), CUDA kernels per frame (profiler), and each run as a fraction of the memory-bandwidth floor
(the bytes of weights one frame step reads, at the copy bandwidth measured here, over the step time).

Usage (GPU if present: bf16, engine batches 1 8 32 64; else CPU: fp32, batches 1 8, a short run):
    python -m csm.bench [--frames N] [--repeats 3] [--batches 1 8] [--hf-batches 1 8] [--no-compile]
                        [--out bench/results]
The engine is measured eager (with CUDA graphs on CUDA) and compiled; compile and capture times are reported
apart from run times.
On a GPU machine, everything at once (tests, graphs, this benchmark, targets): scripts/gpu-check
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import resource
import statistics
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Callable

import torch
from torch import Tensor
from transformers import CsmConfig as TransformersCsmConfig
from transformers import CsmForConditionalGeneration

from .config import FRAME_MS, CsmConfig
from .generator import GenerationRequest, Generator
from .launches import eager_ops
from .loading import default_device, default_dtype
from .model import CsmModel
from .tiny import TINY_CONFIG, byte_tokenizer, random_mimi
from .weights import CODEC_PREFIX, to_our_key

TEXT = "The quick brown fox jumps over the lazy dog, then takes a long nap in the afternoon sun."
TOPK, TEMPERATURE = 50, 0.9
SHAPES = {"csm-1b": {}, "tiny": TINY_CONFIG}  # transformers CsmConfig arguments
# Targets on an H100/H200 (issue: GPU engine), checked by `targets`.
TARGET_X_REALTIME_BATCH1 = 15
TARGET_X_REALTIME_BATCH64 = 1000
TARGET_SPEEDUP_VS_TRANSFORMERS = 5
# Frame counts of the two runs whose difference gives a per-frame count (prompt and set-up cancel out); they
# differ by a multiple of the engine's stop-check interval, so its checks are counted at their real rate.
COUNT_FRAMES = (2, 6)
TOP_NAMES = 15  # op or kernel names per case in the report, the most frequent first


@dataclass
class Run:
    impl: str
    batch: int
    frames: int  # per row
    gen_s: float  # prompt + all frames, codes ready on the host
    decode_s: float  # Mimi, codes -> waveforms
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


@dataclass
class Case:
    """One implementation at one batch size. `generate(frames)` returns each row's (frames, K) codes on the
    host; `decode(codes)` turns them into waveforms the way that implementation does."""

    impl: str
    batch: int
    generate: Callable[[int], list[Tensor]]
    decode: Callable[[list[Tensor]], object]
    eager: bool = True  # a dispatch-mode op count is meaningful (not compiled, not graph replays)
    runs: list[Run] = field(default_factory=list)
    ttfa_s: float = float("nan")  # time to first audio frame: prompt + one frame, codes on the host
    aten_ops: dict[str, float] | None = None  # per frame, by op name (see `per_frame`)
    kernels: dict[str, float] | None = None  # per frame, by kernel name

    @property
    def aten_ops_per_frame(self) -> float | None:
        return None if self.aten_ops is None else sum(self.aten_ops.values())

    @property
    def kernels_per_frame(self) -> float | None:
        return None if self.kernels is None else sum(self.kernels.values())

    def median(self, attribute: str) -> float:
        return statistics.median(getattr(r, attribute) for r in self.runs)

    def spread(self, attribute: str) -> tuple[float, float]:
        values = [getattr(r, attribute) for r in self.runs]
        return min(values), max(values)

    def summary(self) -> dict:
        low, high = self.spread("frames_per_s") if self.runs else (None, None)
        return {"impl": self.impl, "batch": self.batch, "repeats": len(self.runs),
                "frames_per_s": self.median("frames_per_s") if self.runs else None,
                "frames_per_s_min": low, "frames_per_s_max": high,
                "x_realtime": self.median("x_realtime") if self.runs else None,
                "floor_fraction": self.median("floor_fraction") if self.runs else None,
                "ttfa_s": self.ttfa_s, "aten_ops_per_frame": self.aten_ops_per_frame,
                "kernels_per_frame": self.kernels_per_frame,
                "aten_ops_by_name": _top(self.aten_ops), "kernels_by_name": _top(self.kernels)}


def _top(counts: dict[str, float] | None) -> dict[str, float] | None:
    """The TOP_NAMES first names (most frequent first), each cut to 120 characters (CUDA's are long)."""
    return None if counts is None else {name[:120]: n for name, n in list(counts.items())[:TOP_NAMES]}


# --- the shared weights -------------------------------------------------------------------------

def build_models(shape: str, device: torch.device, dtype: torch.dtype) -> tuple[CsmForConditionalGeneration, dict]:
    """transformers' CSM with random weights, and the state dict of our CsmModel viewing the same tensors."""
    hf_config = TransformersCsmConfig(**SHAPES[shape])
    with torch.device(device):
        reference = CsmForConditionalGeneration(hf_config).to(dtype).eval()
    state = {}
    for key, tensor in reference.state_dict().items():
        if not key.startswith(CODEC_PREFIX):
            state.setdefault(to_our_key(key), tensor)  # the tied codebook embeddings appear twice
    return reference, state


def engine_model(config: CsmConfig, state: dict) -> CsmModel:
    """A CsmModel assigned the shared tensors, with caches of its own. Only the fused projections (q/k/v,
    gate/up) are new tensors: loading stacks their parts."""
    with torch.device("meta"):
        model = CsmModel(config)
    model.load_state_dict(state, strict=True, assign=True)
    return model.eval()


def weight_bytes_per_step(model: CsmModel) -> int:
    """Bytes of weights one frame step reads: the backbone, codebook-0 head and projection once, the depth
    decoder once per depth step (K - 1), every depth head once. Embedding rows are negligible."""
    def size(*modules) -> int:
        return sum(p.numel() * p.element_size() for m in modules for p in m.parameters())

    depth_steps = model.config.num_codebooks - 1
    head = model.audio_head.numel() * model.audio_head.element_size()
    return size(model.backbone, model.codebook0_head, model.projection) + depth_steps * size(model.decoder) + head


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


def cuda_kernels(fn: Callable[[], object]) -> Counter:
    """CUDA kernels launched by fn() (copies and memsets not counted), by name, from the profiler: kernels
    replayed from a CUDA graph are reported one by one."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        fn()
        torch.cuda.synchronize()
    return Counter(e.name for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA
                   and not e.name.startswith(("Memcpy", "Memset")))


def per_frame(count: Callable[[Callable[[], object]], Counter], generate: Callable[[int], object]) -> dict[str, float]:
    """count(fn) of a run of COUNT_FRAMES[1] frames minus one of COUNT_FRAMES[0], per frame, by name: the most
    frequent first."""
    short, long = (count(lambda n=n: generate(n)) for n in COUNT_FRAMES)
    long.subtract(short)  # keeps counts at or below zero, so that the names add up to the total
    return {name: n / (COUNT_FRAMES[1] - COUNT_FRAMES[0]) for name, n in long.most_common()}


# --- the implementations ------------------------------------------------------------------------

def transformers_case(reference: CsmForConditionalGeneration, generator: Generator, batch: int) -> Case:
    ids = torch.tensor([generator.tokenizer.encode(f"[0]{TEXT}")]).expand(batch, -1).to(generator.device)

    @torch.inference_mode()
    def generate(frames: int) -> list[Tensor]:
        codes = reference.generate(input_ids=ids, max_new_tokens=frames, do_sample=True, top_k=TOPK,
                                   temperature=TEMPERATURE, depth_decoder_do_sample=True,
                                   depth_decoder_top_k=TOPK, depth_decoder_temperature=TEMPERATURE)
        return list(codes.cpu())  # (frames, K) per row

    # transformers decodes its batch one row at a time
    return Case("transformers", batch, generate, lambda codes: [generator.decode_codes(row) for row in codes])


def sesame_sample(logits: Tensor) -> Tensor:
    """Sesame's sampling: top-k, temperature, softmax, then argmax(probs / Exp(1)) from the global RNG."""
    logits = logits.float() / TEMPERATURE
    kth = torch.topk(logits, TOPK, dim=-1).values[..., -1:]
    probs = torch.softmax(logits.masked_fill(logits < kth, float("-inf")), dim=-1)
    return (probs / torch.empty_like(probs).exponential_(1)).argmax(dim=-1)


def reference_loop(model: CsmModel, tokens: Tensor, mask: Tensor, frames: int, device: torch.device) -> Tensor:
    """Batch 1, like Sesame's `Generator.generate`: (S, W) prompt -> (frames, K) codes."""
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
        out.append(frame)
        # the next backbone input: the frame as a full prompt row (K codes + an empty text column)
        row = torch.cat((frame, torch.zeros(1, 1, dtype=torch.long, device=device)), dim=1)[:, None]
        row_mask = torch.cat((torch.ones_like(frame, dtype=torch.bool),
                              torch.zeros(1, 1, dtype=torch.bool, device=device)), dim=1)[:, None]
        position = position + 1
        hidden = model.forward_backbone(model.embed_rows(row, row_mask), position, max_seq)[:, -1]
    return torch.cat(out).cpu()


def reference_case(generator: Generator) -> Case:
    tokens, mask = generator._prompt(TEXT, 0, ())

    @torch.inference_mode()
    def generate(frames: int) -> list[Tensor]:
        return [reference_loop(generator.model, tokens, mask, frames, generator.device)]

    return Case("reference", 1, generate, lambda codes: generator.decode_codes(codes[0]))


def engine_label(generator: Generator) -> str:
    """"engine (eager)", "engine (compiled)", "engine (eager, graphs)" or "engine (compiled, graphs)"."""
    return f"engine ({'compiled' if generator.compiled else 'eager'}{', graphs' if generator.graphed else ''})"


def engine_case(generator: Generator, batch: int) -> Case:
    """The engine at `batch`, as it is after its warm-up (compiled or not, graphs or not)."""
    def generate(frames: int) -> list[Tensor]:
        return generator.generate_codes_batch([
            GenerationRequest(TEXT, 0, max_audio_length_ms=frames * FRAME_MS, temperature=TEMPERATURE, topk=TOPK,
                              seed=row) for row in range(batch)])

    return Case(engine_label(generator), batch, generate, generator.decode_batch,
                eager=not (generator.compiled or generator.graphed))


# --- running them -------------------------------------------------------------------------------

def warm_up(cases: list[Case], device: torch.device) -> None:
    """One short run per case (one-time costs), then its time to first frame."""
    for case in cases:
        case.generate(2)
        _, case.ttfa_s = timed(device, lambda: case.generate(1))


def count_per_frame(cases: list[Case], device: torch.device) -> None:
    """At batch 1: ATen ops per frame of the eager cases, and CUDA kernels per frame of every case on CUDA."""
    for case in cases:
        if case.batch == 1 and case.eager:
            case.aten_ops = per_frame(eager_ops, case.generate)
        if case.batch == 1 and device.type == "cuda":
            case.kernels = per_frame(cuda_kernels, case.generate)


def measure(cases: list[Case], frames: int, repeats: int, device: torch.device, floor_step_s: float,
            deadline: float = float("inf"), report: Callable[[Case, Run], None] | None = None) -> None:
    """Appends `repeats` runs to every case, interleaved (the order rotates each repeat). Stops early, with
    fewer repeats, when time.monotonic() passes `deadline`."""
    for repeat in range(repeats):
        shift = repeat % len(cases)
        for case in cases[shift:] + cases[:shift]:
            if time.monotonic() > deadline:
                print(f"bench: time budget spent after {repeat} full repeats; the rest is skipped", flush=True)
                return
            with PeakMemory(device) as peak:
                codes, gen_s = timed(device, lambda: case.generate(frames))
                _, decode_s = timed(device, lambda: case.decode(codes))
            run = Run(case.impl, case.batch, min(c.size(0) for c in codes), gen_s, decode_s, peak.peak_mb)
            case.runs.append(run.finish(floor_step_s))
            if report:
                report(case, run)


# --- the report ---------------------------------------------------------------------------------

def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return f"{line.split(':', 1)[1].strip()} ({torch.get_num_threads()} threads)"
    return platform.processor() or "cpu"


def _count(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def table(cases: list[Case]) -> str:
    header = (f"{'impl':<27}{'batch':>6}{'runs':>5}{'frames/s':>10}{'spread':>17}{'x real':>9}{'TTFA s':>8}"
              f"{'floor %':>8}{'ops/frame':>10}{'kernels/frame':>14}")
    lines = [header, "-" * len(header)]
    for c in cases:
        if not c.runs:
            lines.append(f"{c.impl:<27}{c.batch:>6}{0:>5}  (not run)")
            continue
        low, high = c.spread("frames_per_s")
        lines.append(f"{c.impl:<27}{c.batch:>6}{len(c.runs):>5}{c.median('frames_per_s'):>10.2f}"
                     f"{f'{low:.2f}..{high:.2f}':>17}{c.median('x_realtime'):>9.2f}{c.ttfa_s:>8.2f}"
                     f"{100 * c.median('floor_fraction'):>8.1f}{_count(c.aten_ops_per_frame):>10}"
                     f"{_count(c.kernels_per_frame):>14}")
    return "\n".join(lines)


def speedup(ours: Case, theirs: Case) -> tuple[float, float, float]:
    """Median frames/s ratio ours / theirs, and its spread: (ratio, lowest, highest)."""
    (ours_low, ours_high), (their_low, their_high) = ours.spread("frames_per_s"), theirs.spread("frames_per_s")
    return ours.median("frames_per_s") / theirs.median("frames_per_s"), ours_low / their_high, ours_high / their_low


def comparisons(cases: list[Case], baseline: str = "transformers") -> list[str]:
    """Each other implementation against the baseline at the same batch size: "1.30x (0.90..1.80): parity"."""
    theirs = {c.batch: c for c in cases if c.impl == baseline and c.runs}
    lines = []
    for ours in cases:
        if ours.impl != baseline and ours.runs and ours.batch in theirs:
            ratio, low, high = speedup(ours, theirs[ours.batch])
            verdict = "parity" if low <= 1 <= high else ("faster" if low > 1 else "slower")
            lines.append(f"{ours.impl} vs {baseline} at batch {ours.batch}: {ratio:.2f}x "
                         f"(spread {low:.2f}..{high:.2f}): {verdict}")
    return lines


def targets(cases: list[Case], device: torch.device) -> list[str]:
    """A PASS/MISS line per GPU target for every engine variant measured; n/a on CPU."""
    def find(impl: str, batch: int) -> Case | None:
        return next((c for c in cases if c.impl == impl and c.batch == batch and c.runs), None)

    lines = []
    for impl in dict.fromkeys(c.impl for c in cases if c.impl.startswith("engine")):
        checks = [(f"batch 1 >= {TARGET_X_REALTIME_BATCH1}x real time", find(impl, 1), None,
                   lambda c, _: c.median("x_realtime"), TARGET_X_REALTIME_BATCH1),
                  (f"batch 64 >= {TARGET_X_REALTIME_BATCH64}x real time (aggregate)", find(impl, 64), None,
                   lambda c, _: c.median("x_realtime"), TARGET_X_REALTIME_BATCH64),
                  (f"batch 1 >= {TARGET_SPEEDUP_VS_TRANSFORMERS}x transformers' generate", find(impl, 1),
                   find("transformers", 1), lambda c, t: speedup(c, t)[0], TARGET_SPEEDUP_VS_TRANSFORMERS)]
        for name, ours, theirs, value, goal in checks:
            if device.type != "cuda":
                lines.append(f"n/a on CPU  {impl}: {name}")
            elif ours is None or (theirs is None and "transformers" in name):
                lines.append(f"NOT RUN     {impl}: {name}")
            else:
                got = value(ours, theirs)
                lines.append(f"{'PASS' if got >= goal else 'MISS':<12}{impl}: {name}: {got:.1f}")
    return lines


def report_dict(cases: list[Case], device: torch.device, dtype: torch.dtype, **extra) -> dict:
    return {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "device": device_name(device),
        "dtype": str(dtype),
        "versions": {name: version(name) for name in ("torch", "transformers", "moshi")} | {
            "python": platform.python_version(), "cuda": torch.version.cuda},
        "text": TEXT, "topk": TOPK, "temperature": TEMPERATURE, **extra,
        "summary": [c.summary() for c in cases],
        "comparisons": comparisons(cases) + comparisons([c for c in cases if c.impl.startswith("engine")],
                                                        "engine (eager)"),
        "targets": targets(cases, device), "runs": [asdict(r) for c in cases for r in c.runs],
    }


class Bench:
    """The shared set-up: both models on one device, the engine eager (with CUDA graphs on CUDA), the
    bandwidth floor. `engine(compile=True)` adds a compiled engine over the same weights."""

    def __init__(self, shape: str, device: torch.device, max_batch: int):
        self.shape, self.device, self.dtype, self.max_batch = shape, device, default_dtype(device), max_batch
        start = time.perf_counter()
        self.reference, self.state = build_models(shape, device, self.dtype)
        self.config = CsmConfig.from_dict(self.reference.config.to_dict())
        self.tokenizer = byte_tokenizer()
        self.mimi = random_mimi(0, self.config.num_codebooks, device)
        self.build_s = time.perf_counter() - start
        self.warm_ups: dict[str, dict] = {}
        self.generator = self.engine(compile=False)
        self.bandwidth = copy_bandwidth(device)
        self.step_bytes = weight_bytes_per_step(self.generator.model)
        self.floor_step_s = self.step_bytes / self.bandwidth

    def engine(self, compile: bool) -> Generator:
        """A warmed-up engine with its own caches over the shared weights (its fused projections are its own).
        Its warm-up times go to `warm_ups`, compile and capture apart."""
        generator = Generator(engine_model(self.config, self.state), self.tokenizer, self.mimi,
                              max_batch_size=self.max_batch, compile=compile)
        warm_up_s = generator.warm_up()
        self.warm_ups[engine_label(generator)] = {"warm_up_s": warm_up_s, "compile_s": generator.compile_s,
                                                  "capture_s": generator.capture_s}
        if compile and not generator.compiled:
            raise RuntimeError("torch.compile failed (the engine's log has the error): no compiled numbers")
        return generator

    def describe(self) -> dict:
        return {"model": f"{self.shape} shape, random weights", "build_s": self.build_s, "warm_ups": self.warm_ups,
                "copy_bandwidth_Bps": self.bandwidth, "weight_bytes_per_step": self.step_bytes,
                "floor_s_per_step": self.floor_step_s}

    def cases(self, hf_batches: list[int], batches: list[int], reference: bool = True) -> list[Case]:
        cases = [transformers_case(self.reference, self.generator, b) for b in hf_batches]
        cases += [reference_case(self.generator)] if reference else []
        return cases + [engine_case(self.generator, b) for b in batches]


def main(argv: list[str] | None = None) -> None:
    cuda = torch.cuda.is_available()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=default_device())
    parser.add_argument("--shape", choices=sorted(SHAPES), default="csm-1b")
    parser.add_argument("--frames", type=int, default=96 if cuda else 12, help="frames per row (80 ms each)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per case, interleaved; the median is reported")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32, 64] if cuda else [1, 8])
    parser.add_argument("--hf-batches", type=int, nargs="+", default=[1, 8], help="transformers batch sizes")
    parser.add_argument("--no-compile", action="store_true", help="leave out the compiled engine")
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    torch.manual_seed(0)

    bench = Bench(args.shape, device, max(args.batches))
    cases = bench.cases(args.hf_batches, args.batches)
    if not args.no_compile:
        try:
            compiled = bench.engine(compile=True)
            cases += [engine_case(compiled, b) for b in args.batches]
        except RuntimeError as error:  # the others still run
            print(f"the compiled engine is left out: {error}", flush=True)
    print(" ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in bench.describe().items()),
          flush=True)
    warm_up(cases, device)
    count_per_frame(cases, device)
    print(table(cases), flush=True)
    slug = "".join(c if c.isalnum() else "-" for c in device_name(device).lower()).strip("-")
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"csm_bench_{device.type}_{args.shape}_{slug[:40]}_{dt.datetime.now():%Y%m%d-%H%M}.json"

    def record(case: Case, run: Run) -> None:
        """Prints the run and rewrites the report, so that a run cut short (out of memory, out of time) still
        leaves every number measured so far."""
        print(f"{case.impl} batch {case.batch}: {run.frames_per_s:.2f} frames/s", flush=True)
        report = report_dict(cases, device, bench.dtype, frames=args.frames, repeats=args.repeats,
                             **bench.describe())
        path.write_text(json.dumps(report, indent=2) + "\n")

    measure(cases, args.frames, args.repeats, device, bench.floor_step_s, report=record)
    engines = [c for c in cases if c.impl.startswith("engine")]
    print(table(cases), *comparisons(cases), *comparisons(engines, engine_label(bench.generator)),
          *targets(cases, device), sep="\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
