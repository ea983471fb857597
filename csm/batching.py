"""The batched frame loop: B prompts in, B code sequences out, one backbone step per frame for all rows.

Per-row state lives in static buffers sized by max_batch (allocated once, with the model's KV caches):
row i of every buffer and cache is slot i. A frame step reads and writes only those buffers, so on CUDA
it is captured as a CUDA graph per (batch bucket, cache-length bucket) and replayed with no host work or
sync: the smallest bucket holding the live rows and their used cache positions. Rows past the live ones
(stale) and cache positions past a row's own are computed or masked but never read by a live row.
The host looks for finished rows every `STOP_CHECK_FRAMES` frames and whenever a row reaches its length
limit; finished rows are dropped and the others compacted to the front, so later steps run a smaller batch.

A frame step calls four functions (`FrameSteps`): torch.compile turns each into graphs of fused kernels,
compiled during warm-up, before any CUDA graph is captured. Each function gets tensors of the same kind at
every call (inference tensors or not, storage offsets), so the graphs differ only by the buckets' shapes.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Callable, NamedTuple

import torch
from torch import Tensor

from .model import CsmModel
from .sampling import SamplingParams, frame_noise, sampling_params, topk_cap

# Frames between stop checks (each one host sync); frames sampled past a row's end are dropped.
STOP_CHECK_FRAMES = 4
# Prompt rows (summed over the batch) per prefill chunk: bounds prefill activations and attention scores.
PREFILL_ROWS = 4096
# The shortest cache-length bucket; then doubling up to the context length.
MIN_CACHE_BUCKET = 256
# Graphs Dynamo may compile per function at warm-up. The buckets' shapes give up to 6 (the largest batch,
# a dynamic batch, one row; each with two depth-call lengths or two kinds of kv_len). Past the limit a
# fullgraph compile fails, and Dynamo's default of 8 would leave a device's own guards little room.
WARM_UP_RECOMPILE_LIMIT = 16


@dataclass(frozen=True)
class RowJob:
    """One prepared request: its prompt rows and how to sample its frames."""

    tokens: Tensor  # (S, W) long, CPU
    mask: Tensor  # (S, W) bool, CPU
    max_frames: int
    topk: int
    temperature: float
    noise_key: int  # see sampling.noise_key

    @property
    def prompt_len(self) -> int:
        return self.tokens.size(0)


def batch_buckets(max_batch: int) -> list[int]:
    """Batch sizes that get a CUDA graph: powers of two below max_batch, and max_batch."""
    return sorted({2**i for i in range(max_batch.bit_length()) if 2**i < max_batch} | {max_batch})


def cache_buckets(max_seq: int) -> list[int]:
    """Attended cache lengths that get a CUDA graph: MIN_CACHE_BUCKET doubling below max_seq, and max_seq."""
    return sorted({MIN_CACHE_BUCKET << i for i in range(max_seq.bit_length()) if MIN_CACHE_BUCKET << i < max_seq}
                  | {max_seq})


def smallest_fit(buckets, size: int) -> int:
    return min(bucket for bucket in buckets if bucket >= size)


class FrameSteps(NamedTuple):
    """The hot functions of a frame step, eager or compiled (see CsmModel)."""

    noise: Callable  # sampling.frame_noise
    first: Callable  # CsmModel.first_codebook
    codebook: Callable  # CsmModel.codebook_step, once per depth position
    backbone: Callable  # CsmModel.backbone_step


def eager_steps(model: CsmModel) -> FrameSteps:
    return FrameSteps(frame_noise, model.first_codebook, model.codebook_step, model.backbone_step)


def compiled_steps(model: CsmModel) -> FrameSteps:
    """torch.compile of each step in its default mode: fused kernels, no CUDA graphs of its own (the frame
    loop captures whole frames); fullgraph, so that anything it cannot compile fails here, not silently."""
    return FrameSteps(*(torch.compile(step, fullgraph=True) for step in eager_steps(model)))


class FrameLoop:
    def __init__(self, model: CsmModel, max_batch: int):
        model.setup_caches(max_batch)
        weight = model.codebook0_head.weight
        device, config = weight.device, model.config
        self.model, self.max_batch, self.device = model, max_batch, device
        self.max_seq = config.max_seq_len
        self.eos_id = config.codebook_eos_token_id
        self.codebooks, self.vocab = config.num_codebooks, config.audio_vocab_size
        # row state, (max_batch, ...) each; rows past the live ones keep stale but valid values
        self.hidden = torch.zeros(max_batch, config.backbone.hidden_size, device=device, dtype=weight.dtype)
        self.positions = torch.zeros(max_batch, dtype=torch.long, device=device)  # where the next frame goes
        self.noise_keys = torch.zeros(max_batch, dtype=torch.long, device=device)
        self.sampling = sampling_params(torch.ones(max_batch, dtype=torch.long, device=device),
                                        torch.ones(max_batch, device=device), self.vocab)
        self.fast_cap = topk_cap(1, self.vocab)  # the cap that compiled steps and graphs are made for
        self.cap = self.fast_cap  # candidates per draw in this batch
        self.codes = torch.zeros(max_batch, self.max_seq, self.codebooks, dtype=torch.long, device=device)
        self.frame = torch.zeros(1, dtype=torch.long, device=device)  # frames sampled so far, same for all rows
        # codebook k -> the depth decoder's positions (1, S) in the call that samples it: [[0, 1]], [[2]], ...
        self.depth_positions = {k: torch.tensor([[0, 1] if k == 1 else [k]], device=device)
                                for k in range(1, self.codebooks)}
        self.batch_sizes, self.cache_lengths = batch_buckets(max_batch), cache_buckets(self.max_seq)
        self.eager = eager_steps(model)
        self.steps = self.eager  # the hot path: compile() makes it compiled
        # (rows, kv_len) bucket -> runs one frame step for that bucket: a CUDA graph's replay
        self.graphs: dict[tuple[int, int], Callable[[], None]] = {}

    def buckets(self) -> list[tuple[int, int]]:
        """(rows, kv_len) of every CUDA graph, largest first."""
        return [(rows, kv_len) for rows in reversed(self.batch_sizes) for kv_len in reversed(self.cache_lengths)]

    # --- one frame ---------------------------------------------------------------------------------

    def sample_frame(self, rows: int, steps: FrameSteps) -> Tensor:
        """One frame of codes (rows, K) for the first `rows` rows: codebook 0 from the backbone state, then
        codebooks 1..K-1 from the depth decoder, whose positions 0 and 1 (the state, codebook 0) go together."""
        heads = self.model.audio_head
        noise = steps.noise(self.noise_keys[:rows], self.frame, self.codebooks, self.vocab)  # (K, rows, V)
        sampling = self.sampling
        params = SamplingParams(sampling.greedy[:rows], sampling.inv_temperature[:rows],
                                sampling.rank_penalty[:rows, : self.cap])
        code, x = steps.first(self.hidden[:rows], noise, params)  # (rows,), (rows, 2, D)
        codes = [code]
        for codebook, positions in self.depth_positions.items():
            code, x = steps.codebook(x, positions, heads[codebook - 1], noise, params)  # x: (rows, 1, D)
            codes.append(code)
        return torch.stack(codes, dim=1)

    def _step(self, rows: int, kv_len: int, steps: FrameSteps) -> None:
        """Samples one frame for the first `rows` rows, stores it, and feeds it to the backbone, which attends
        to the first `kv_len` positions. Touches only static buffers: capturable as a CUDA graph."""
        frame = self.sample_frame(rows, steps)  # (rows, K)
        self.codes[:rows, self.frame] = frame[:, None]  # an index_put_ at the frame counter
        self.hidden[:rows] = steps.backbone(frame, self.positions[:rows, None], kv_len)
        # a row past its limit keeps stepping until the next check: keep its writes inside the cache
        self.positions[:rows].add_(1).clamp_(max=self.max_seq - 1)
        self.frame.add_(1)

    @torch.inference_mode()
    def compile(self) -> None:
        """Compiles the hot functions and runs them at every bucket's shapes, so that no compiling is left
        for later (nor for a CUDA-graph capture)."""
        self.steps, self.cap = compiled_steps(self.model), self.fast_cap
        with torch._dynamo.config.patch(recompile_limit=WARM_UP_RECOMPILE_LIMIT):
            for rows, kv_len in self.buckets():
                self._step(rows, kv_len, self.steps)

    @torch.inference_mode()
    def capture(self) -> None:
        """CUDA only: captures a frame step for every (rows, kv_len) bucket, sharing one memory pool."""
        pool, self.cap = torch.cuda.graph_pool_handle(), self.fast_cap
        for rows, kv_len in self.buckets():  # the largest first: it sizes the shared pool
            step = partial(self._step, rows, kv_len, self.steps)
            stream = torch.cuda.Stream()
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream):  # warm-up runs (library handles, workspaces) off the capture
                for _ in range(2):
                    step()
            torch.cuda.current_stream().wait_stream(stream)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, pool=pool):
                step()
            self.graphs[rows, kv_len] = graph.replay
        torch.cuda.synchronize()

    def _advance(self, live: int, used: int) -> None:
        """One frame for the `live` first rows, whose cache positions in use are the first `used`: a graph
        replay of the smallest bucket that holds them, or (no graphs, or a top-k past the cap) a step of
        exactly that size, with the eager functions if the compiled ones were made for another cap."""
        fast = self.cap == self.fast_cap
        if self.graphs and fast:
            self.graphs[smallest_fit(self.batch_sizes, live), smallest_fit(self.cache_lengths, used)]()
        else:
            self._step(live, used, self.steps if fast else self.eager)

    # --- a batch -----------------------------------------------------------------------------------

    @torch.inference_mode()
    def run(self, jobs: list[RowJob]) -> list[Tensor]:
        """Generates every job's frames -> one (frames, K) long CPU tensor per job, ending before its first
        all-`eos` frame or at its max_frames. At most max_batch jobs; each must fit the cache."""
        if not 0 < len(jobs) <= self.max_batch:
            raise ValueError(f"a batch holds 1 to {self.max_batch} jobs, got {len(jobs)}")
        if any(job.prompt_len + job.max_frames > self.max_seq for job in jobs):
            raise ValueError(f"a job's prompt plus frames exceeds the {self.max_seq}-row context")
        self._prefill(jobs)
        live = list(range(len(jobs)))  # job of each live row, in slot order
        results: list[Tensor | None] = [None] * len(jobs)
        done = checked = 0  # frames sampled; frames already searched for the end frame
        while live:
            longest_prompt = max(jobs[j].prompt_len for j in live)
            self._advance(len(live), min(longest_prompt + done + 1, self.max_seq))
            done += 1
            if done - checked == STOP_CHECK_FRAMES or any(jobs[j].max_frames == done for j in live):
                ends = self._find_ends(len(live), checked, done)
                checked = done
                keep = []
                for slot, job in enumerate(live):
                    end = ends[slot] if ends[slot] >= 0 else (done if done >= jobs[job].max_frames else None)
                    if end is None:
                        keep.append(slot)
                    else:
                        results[job] = self.codes[slot, :end].to("cpu", copy=True)  # the buffer is reused
                if keep and len(keep) < len(live):
                    self._compact(keep, longest_prompt + done)
                live = [live[slot] for slot in keep]
        return results

    def _prefill(self, jobs: list[RowJob]) -> None:
        """Right-padded prompts through the backbone in chunks of prompt rows; sets every row's state."""
        batch, width = len(jobs), jobs[0].tokens.size(1)
        longest = max(job.prompt_len for job in jobs)
        tokens = torch.zeros(batch, longest, width, dtype=torch.long)
        mask = torch.zeros(batch, longest, width, dtype=torch.bool)
        for row, job in enumerate(jobs):
            tokens[row, : job.prompt_len], mask[row, : job.prompt_len] = job.tokens, job.mask
        tokens, mask = tokens.to(self.device), mask.to(self.device)  # (B, S, W) each
        lengths = torch.tensor([job.prompt_len for job in jobs], device=self.device)
        rows = torch.arange(batch, device=self.device)
        chunk = max(1, PREFILL_ROWS // batch)
        model = self.model
        for start in range(0, longest, chunk):
            stop = min(start + chunk, longest)
            positions = torch.arange(start, stop, device=self.device)[None]  # (1, C): the same for every row
            hidden = model.forward_backbone(model.embed_rows(tokens[:, start:stop], mask[:, start:stop]),
                                            positions, stop)  # (B, C, H)
            last = lengths - 1 - start  # each row's last prompt row, if in this chunk
            in_chunk = (last >= 0) & (last < stop - start)
            self.hidden[:batch] = torch.where(in_chunk[:, None], hidden[rows, last.clamp(0, stop - start - 1)],
                                              self.hidden[:batch])
        self.positions[:batch] = lengths
        self.noise_keys[:batch] = torch.tensor([job.noise_key for job in jobs], device=self.device)
        topk = torch.tensor([job.topk for job in jobs], device=self.device)
        temperature = torch.tensor([job.temperature for job in jobs], device=self.device)
        for state, value in zip(self.sampling, sampling_params(topk, temperature, self.vocab)):
            state[:batch] = value
        self.cap = topk_cap(max(job.topk for job in jobs), self.vocab)
        self.frame.zero_()

    def _find_ends(self, live: int, start: int, stop: int) -> list[int]:
        """The first all-eos frame in [start, stop) of each live row, -1 if none (the one host sync)."""
        is_end = (self.codes[:live, start:stop] == self.eos_id).all(dim=-1)  # (live, stop - start)
        first = torch.where(is_end.any(dim=-1), start + is_end.int().argmax(dim=-1), -1)
        return first.tolist()

    def _compact(self, keep: list[int], used: int) -> None:
        """Moves the rows in slots `keep` to slots 0..len(keep)-1: row state and the first `used` cache
        positions of the backbone (the depth decoder's cache is rewritten every frame)."""
        index = torch.tensor(keep, device=self.device)
        kept = len(keep)
        for state in (self.hidden, self.positions, self.noise_keys, *self.sampling, self.codes):
            state[:kept] = state[index]
        for layer in self.model.backbone.layers:
            cache = layer.self_attn.kv_cache.kv
            cache[:kept, :, :, :used] = cache[index, :, :, :used]
