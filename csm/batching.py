"""The batched frame loop: B prompts in, B code sequences out, one backbone step per frame for all rows.

Per-row state lives in static buffers sized by max_batch (allocated once, with the model's KV caches):
row i of every buffer and cache is slot i. A frame step reads and writes only those buffers, so on CUDA
it is captured once per batch bucket as a CUDA graph and replayed with no host work or sync. The host
looks for finished rows every `STOP_CHECK_FRAMES` frames and whenever a row reaches its length limit;
finished rows are dropped and the others compacted to the front, so later steps run a smaller batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .model import CsmModel, Sampler
from .sampling import counter_uniform, sample_topk

# Frames between stop checks (each one host sync); frames sampled past a row's end are dropped.
STOP_CHECK_FRAMES = 4
# Prompt rows (summed over the batch) per prefill chunk: bounds prefill activations and attention scores.
PREFILL_ROWS = 4096


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


class FrameLoop:
    def __init__(self, model: CsmModel, max_batch: int):
        model.setup_caches(max_batch)
        weight = model.codebook0_head.weight
        device, config = weight.device, model.config
        self.model, self.max_batch, self.device = model, max_batch, device
        self.max_seq = config.max_seq_len
        self.eos_id = config.codebook_eos_token_id
        # row state, (max_batch, ...) each; rows past the live ones keep stale but valid values
        self.hidden = torch.zeros(max_batch, config.backbone.hidden_size, device=device, dtype=weight.dtype)
        self.positions = torch.zeros(max_batch, dtype=torch.long, device=device)  # where the next frame goes
        self.noise_keys = torch.zeros(max_batch, dtype=torch.long, device=device)
        self.topk = torch.ones(max_batch, dtype=torch.long, device=device)
        self.temperature = torch.ones(max_batch, device=device)
        self.codes = torch.zeros(max_batch, self.max_seq, config.num_codebooks, dtype=torch.long, device=device)
        self.frame = torch.zeros(1, dtype=torch.long, device=device)  # frames sampled so far, same for all rows
        self.graphs: dict[int, torch.cuda.CUDAGraph] = {}

    # --- one frame ---------------------------------------------------------------------------------

    def _sampler(self, rows: int) -> Sampler:
        """The sampler of the first `rows` rows for this frame. Draw counter = frame * K + codebook: the
        noise of all K codebooks is drawn at once, (rows, K, V)."""
        codebooks, vocab = self.model.config.num_codebooks, self.model.config.audio_vocab_size
        counters = self.frame * codebooks + torch.arange(codebooks, device=self.device)  # (K,)
        uniform = counter_uniform(self.noise_keys[:rows], counters, vocab)
        topk, temperature = self.topk[:rows], self.temperature[:rows]
        return lambda logits, codebook: sample_topk(logits, topk, temperature, uniform[:, codebook])

    def _step(self, rows: int, kv_len: int) -> None:
        """Samples one frame for the first `rows` rows, stores it, and feeds it to the backbone.
        Touches only static buffers: capturable as a CUDA graph."""
        model = self.model
        frame = model.sample_frame(self.hidden[:rows], self._sampler(rows))  # (rows, K)
        self.codes[:rows, self.frame] = frame[:, None]  # an index_put_ at the frame counter
        hidden = model.forward_backbone(model.embed_frame(frame), self.positions[:rows, None], kv_len)  # (rows, 1, H)
        self.hidden[:rows] = hidden[:, -1]
        # a row past its limit keeps stepping until the next check: keep its writes inside the cache
        self.positions[:rows].add_(1).clamp_(max=self.max_seq - 1)
        self.frame.add_(1)

    @torch.inference_mode()
    def capture(self) -> None:
        """CUDA only: captures `_step` for every batch bucket, attending over the whole cache."""
        pool = torch.cuda.graph_pool_handle()
        for rows in reversed(batch_buckets(self.max_batch)):  # the largest first: it sizes the shared pool
            stream = torch.cuda.Stream()
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream):  # warm-up runs (library handles, workspaces) off the capture
                for _ in range(2):
                    self._step(rows, self.max_seq)
            torch.cuda.current_stream().wait_stream(stream)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, pool=pool):
                self._step(rows, self.max_seq)
            self.graphs[rows] = graph
        torch.cuda.synchronize()

    def _advance(self, live: int, kv_len: int) -> None:
        """One frame for the `live` first rows: a graph replay of the smallest bucket that holds them, or
        (no graphs: CPU) an eager step attending to the first `kv_len` positions only."""
        if self.graphs:
            self.graphs[min(size for size in self.graphs if size >= live)].replay()
        else:
            self._step(live, kv_len)

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
            positions = torch.arange(start, stop, device=self.device).expand(batch, -1)  # (B, C)
            hidden = model.forward_backbone(model.embed_rows(tokens[:, start:stop], mask[:, start:stop]),
                                            positions, stop)  # (B, C, H)
            last = lengths - 1 - start  # each row's last prompt row, if in this chunk
            in_chunk = (last >= 0) & (last < stop - start)
            self.hidden[:batch] = torch.where(in_chunk[:, None], hidden[rows, last.clamp(0, stop - start - 1)],
                                              self.hidden[:batch])
        self.positions[:batch] = lengths
        self.noise_keys[:batch] = torch.tensor([job.noise_key for job in jobs], device=self.device)
        self.topk[:batch] = torch.tensor([job.topk for job in jobs], device=self.device)
        self.temperature[:batch] = torch.tensor([job.temperature for job in jobs], device=self.device)
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
        for state in (self.hidden, self.positions, self.noise_keys, self.topk, self.temperature, self.codes):
            state[:kept] = state[index]
        for layer in self.model.backbone.layers:
            cache = layer.self_attn.kv_cache
            for tensor in (cache.k, cache.v):
                tensor[:kept, :, :used] = tensor[index, :, :used]
