"""CSM as plain torch modules: a Llama-3.2 backbone, a small depth decoder, their heads and embeddings.

No I/O here (see `weights.py`). Static KV caches are allocated once by `setup_caches(max_batch_size)`, which
also projects every audio embedding into the depth decoder's width once, so that no depth step projects.
Every row of a batch has its own positions, so rows of different prompt lengths share one forward pass
(right padding: a row's pad rows sit after its prompt, are never attended, and are overwritten later).
Each layer's q/k/v and gate/up projections are one fused weight; its state dict keeps the checkpoint's
separate names (q_proj, k_proj, v_proj, gate_proj, up_proj).
Shapes: B batch, S new rows, T attended cache length, H backbone width, D depth decoder width,
K codebooks, V audio vocabulary, W = K + 1 prompt columns.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import CsmConfig, StackConfig
from .sampling import SamplingParams, sample


def rope_inverse_frequencies(stack: StackConfig) -> Tensor:
    """(head_dim / 2,) float32 inverse frequencies, with Llama-3's long-context rescaling if configured."""
    dim = stack.head_dim
    inv_freq = 1.0 / (stack.rope_theta ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))
    if stack.rope_scaling is None:
        return inv_freq
    factor = stack.rope_scaling["factor"]
    low_factor = stack.rope_scaling["low_freq_factor"]
    high_factor = stack.rope_scaling["high_freq_factor"]
    old_context = stack.rope_scaling["original_max_position_embeddings"]
    low_freq_wavelen = old_context / low_factor  # longer waves are divided by `factor`
    high_freq_wavelen = old_context / high_factor  # shorter waves are kept
    wavelen = 2 * math.pi / inv_freq
    scaled = torch.where(wavelen > low_freq_wavelen, inv_freq / factor, inv_freq)
    # in between: blend the two linearly in (old_context / wavelen)
    smooth = (old_context / wavelen - low_factor) / (high_factor - low_factor)
    blended = (1 - smooth) * scaled / factor + smooth * scaled
    in_between = (wavelen >= high_freq_wavelen) & (wavelen <= low_freq_wavelen)
    return torch.where(in_between, blended, scaled)


def linear_add(residual: Tensor, x: Tensor, weight: Tensor) -> Tensor:
    """residual + x @ weight.T in one addmm: (..., in) x, (out, in) weight, (..., out) residual."""
    out = torch.addmm(residual.reshape(-1, residual.size(-1)), x.reshape(-1, x.size(-1)), weight.t())
    return out.view(residual.shape)


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        return F.rms_norm(x, self.weight.shape, self.weight, self.eps)  # one fused kernel where there is one


def fuse_linears(module: nn.Module, fused: str, in_features: int, parts: dict[str, int]) -> None:
    """Gives `module` one bias-free linear layer, named `fused`, that computes its projections `parts`
    (name -> output features) at once, their weights stacked in order. `module`'s state dict keeps the
    checkpoint layout, `{part}.weight` each: stacked when loaded, split (as views) when saved."""
    setattr(module, fused, nn.Linear(in_features, sum(parts.values()), bias=False))

    def stack_parts(_module, state_dict, prefix, *_args):
        keys = [f"{prefix}{name}.weight" for name in parts]
        if all(key in state_dict for key in keys):
            state_dict[f"{prefix}{fused}.weight"] = torch.cat([state_dict.pop(key) for key in keys])

    def split_parts(_module, state_dict, prefix, _metadata):
        weight = state_dict.pop(f"{prefix}{fused}.weight")
        for name, part in zip(parts, weight.split(list(parts.values()))):
            state_dict[f"{prefix}{name}.weight"] = part

    module.register_load_state_dict_pre_hook(stack_parts)
    module.register_state_dict_post_hook(split_parts)


class KVCache(nn.Module):
    """Keys and values of one attention layer, one buffer: (max_batch, 2, kv_heads, max_seq, head_dim)."""

    def __init__(self, max_batch: int, kv_heads: int, max_seq: int, head_dim: int, device, dtype):
        super().__init__()
        shape = (max_batch, 2, kv_heads, max_seq, head_dim)
        self.register_buffer("kv", torch.zeros(shape, device=device, dtype=dtype), persistent=False)

    @property
    def k(self) -> Tensor:
        return self.kv[:, 0]

    @property
    def v(self) -> Tensor:
        return self.kv[:, 1]

    def update(self, step: Step, kv: Tensor) -> tuple[Tensor, Tensor]:
        """Writes (B, S, 2, kv_heads, head_dim) keys and values at the step's positions; returns the first
        `kv_len` positions of the B rows' keys and values, (B, kv_heads, kv_len, head_dim) each."""
        self.kv[step.rows, :, :, step.positions] = kv
        batch = kv.size(0)
        return self.kv[:batch, 0, :, : step.kv_len], self.kv[:batch, 1, :, : step.kv_len]


@dataclass(frozen=True)
class Step:
    """What every layer of one forward pass shares, made once per pass."""

    rows: Tensor  # (B, 1) cache row of each batch row
    positions: Tensor  # (B, S) or (1, S): where the new rows go
    kv_len: int  # cache positions attended: the first kv_len
    cos: Tensor  # (B or 1, S, 1, head_dim)
    sin: Tensor  # (B or 1, S, 1, head_dim), the sign of rotate-half folded in (see Transformer.setup_caches)
    mask: Tensor  # (B or 1, 1, group * S or 1, kv_len) additive: 0 where visible, -inf elsewhere


class Attention(nn.Module):
    def __init__(self, stack: StackConfig):
        super().__init__()
        self.num_heads, self.num_kv_heads, self.head_dim = stack.num_heads, stack.num_kv_heads, stack.head_dim
        q_size, kv_size = stack.num_heads * stack.head_dim, stack.num_kv_heads * stack.head_dim
        fuse_linears(self, "qkv_proj", stack.hidden_size, {"q_proj": q_size, "k_proj": kv_size, "v_proj": kv_size})
        self.o_proj = nn.Linear(q_size, stack.hidden_size, bias=False)
        self.kv_cache: KVCache | None = None

    def forward(self, x: Tensor, step: Step, residual: Tensor) -> Tensor:
        """x (B, S, hidden), normed; returns residual + attention(x), (B, S, hidden)."""
        batch, seq, _ = x.shape
        heads, kv_heads, head_dim = self.num_heads, self.num_kv_heads, self.head_dim
        qkv = self.qkv_proj(x).view(batch, seq, heads + 2 * kv_heads, head_dim)
        qk = qkv[:, :, : heads + kv_heads]  # rotated together, in place: (B, S, heads + kv_heads, head_dim)
        # copy_, not out=: torch.compile refuses an out= tensor that is a strided view (any batch over 1)
        qk.copy_(torch.addcmul(qk * step.cos, qk.roll(head_dim // 2, dims=-1), step.sin))
        q = qkv[:, :, :heads]
        k, v = self.kv_cache.update(step, qkv[:, :, heads:].unflatten(2, (2, kv_heads)))  # (B, kv_heads, T, head_dim)
        # grouped-query attention without copying the cache per head: the `group` query heads of one kv head
        # become group * S query rows of that head, (B, kv_heads, group * S, head_dim)
        group = heads // kv_heads
        q = q.unflatten(2, (kv_heads, group)).permute(0, 2, 3, 1, 4).reshape(batch, kv_heads, group * seq, head_dim)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=step.mask)
        # reshape, not view: CUDA's flash and efficient kernels return a transposed view of (B, M, H, K) storage
        out = out.unflatten(2, (group, seq)).permute(0, 3, 1, 2, 4).reshape(batch, seq, heads * head_dim)
        return linear_add(residual, out, self.o_proj.weight)


class MLP(nn.Module):
    def __init__(self, stack: StackConfig):
        super().__init__()
        self.intermediate_size = stack.intermediate_size
        fuse_linears(self, "gate_up_proj", stack.hidden_size,
                     {"gate_proj": stack.intermediate_size, "up_proj": stack.intermediate_size})
        self.down_proj = nn.Linear(stack.intermediate_size, stack.hidden_size, bias=False)

    def forward(self, x: Tensor, residual: Tensor) -> Tensor:
        """x (B, S, hidden), normed; returns residual + mlp(x)."""
        gate, up = self.gate_up_proj(x).split(self.intermediate_size, dim=-1)
        return linear_add(residual, F.silu(gate) * up, self.down_proj.weight)


class Block(nn.Module):
    def __init__(self, stack: StackConfig):
        super().__init__()
        self.input_layernorm = RMSNorm(stack.hidden_size, stack.rms_norm_eps)
        self.self_attn = Attention(stack)
        self.post_attention_layernorm = RMSNorm(stack.hidden_size, stack.rms_norm_eps)
        self.mlp = MLP(stack)

    def forward(self, x: Tensor, step: Step) -> Tensor:
        x = self.self_attn(self.input_layernorm(x), step, residual=x)
        return self.mlp(self.post_attention_layernorm(x), residual=x)


class Transformer(nn.Module):
    """A stack of pre-norm blocks with a final norm; attends through its static caches."""

    def __init__(self, stack: StackConfig):
        super().__init__()
        self.stack = stack
        self.layers = nn.ModuleList(Block(stack) for _ in range(stack.num_layers))
        self.norm = RMSNorm(stack.hidden_size, stack.rms_norm_eps)

    def setup_caches(self, max_batch: int, max_seq: int, device: torch.device, dtype: torch.dtype) -> None:
        stack = self.stack
        for layer in self.layers:
            layer.self_attn.kv_cache = KVCache(max_batch, stack.num_kv_heads, max_seq, stack.head_dim, device, dtype)
        angles = torch.arange(max_seq, device=device).float()[:, None] * rope_inverse_frequencies(stack).to(device)
        # x * cos + rotate_half(x) * sin == x * cos + roll(x, head_dim / 2) * [-sin, sin]
        rope = torch.stack((torch.cat((angles, angles), dim=-1).cos(), torch.cat((-angles, angles), dim=-1).sin()))
        self.register_buffer("rope", rope.transpose(0, 1).to(dtype), persistent=False)  # (max_seq, 2, head_dim)
        self.register_buffer("cache_rows", torch.arange(max_batch, device=device)[:, None], persistent=False)
        # row p: the additive attention mask of a query at position p, 0 up to p and -inf past it
        causal = torch.ones(max_seq, max_seq, device=device, dtype=torch.bool).tril()
        self.register_buffer("masks", torch.zeros(max_seq, max_seq, device=device, dtype=dtype).masked_fill(
            ~causal, float("-inf")), persistent=False)

    def forward(self, x: Tensor, positions: Tensor, kv_len: int) -> Tensor:
        """x (B, S, hidden) at `positions` (B, S), or (1, S) for all rows -> (B, S, hidden), normed. Attends to
        the first `kv_len` cache positions, which must cover every position in `positions`."""
        batch, seq, _ = x.shape
        rope = self.rope[positions]  # (B or 1, S, 2, head_dim)
        mask = self.masks[positions][:, None, :, :kv_len]  # (B or 1, 1, S, T): each row up to its own position
        if seq > 1:  # one mask row per folded query row (see Attention)
            mask = mask.repeat(1, 1, self.stack.num_heads // self.stack.num_kv_heads, 1)
        step = Step(self.cache_rows[:batch], positions, kv_len, rope[:, :, None, 0], rope[:, :, None, 1], mask)
        for layer in self.layers:
            x = layer(x, step)
        return self.norm(x)


class CsmModel(nn.Module):
    def __init__(self, config: CsmConfig):
        super().__init__()
        if not config.tie_codebooks_embeddings:
            raise ValueError("CSM checkpoints with untied codebook embeddings are not supported")
        self.config = config
        hidden, depth = config.backbone.hidden_size, config.depth_decoder.hidden_size
        codebooks, vocab = config.num_codebooks, config.audio_vocab_size
        self.text_embeddings = nn.Embedding(config.text_vocab_size, hidden)
        # codebook k, token t -> row k * V + t; shared by the backbone and the depth decoder
        self.audio_embeddings = nn.Embedding(codebooks * vocab, hidden)
        self.backbone = Transformer(config.backbone)
        self.codebook0_head = nn.Linear(hidden, vocab, bias=False)
        self.projection = nn.Linear(hidden, depth, bias=False)
        self.decoder = Transformer(config.depth_decoder)
        # codebooks 1..K-1; like every weight here, filled from a checkpoint (see weights.py)
        self.audio_head = nn.Parameter(torch.empty(codebooks - 1, depth, vocab))

    def setup_caches(self, max_batch_size: int) -> None:
        """Allocates the static caches on the weights' device and dtype (once per model, after loading)."""
        weight = self.codebook0_head.weight
        config = self.config
        self.backbone.setup_caches(max_batch_size, config.max_seq_len, weight.device, weight.dtype)
        # per frame the depth decoder sees the backbone state then codebooks 0..K-2: K positions
        self.decoder.setup_caches(max_batch_size, config.num_codebooks, weight.device, weight.dtype)
        self.register_buffer("codebook_offsets", torch.arange(config.num_codebooks, device=weight.device)
                             * config.audio_vocab_size, persistent=False)
        # the depth decoder's input for every codebook token, projected once here instead of once per depth
        # step: (K * V, D), in float32 then rounded (derived from the weights: set up after loading them)
        with torch.no_grad():
            projected = self.audio_embeddings.weight.float() @ self.projection.weight.float().T
        self.register_buffer("depth_embeddings", projected.to(weight.dtype), persistent=False)

    def embed_rows(self, tokens: Tensor, mask: Tensor) -> Tensor:
        """Prompt rows (B, S, W) with their (B, S, W) bool mask -> (B, S, H): sum of the active columns."""
        codebooks = self.config.num_codebooks
        audio = self.audio_embeddings(tokens[..., :codebooks] + self.codebook_offsets)  # (B, S, K, H)
        audio = (audio * mask[..., :codebooks, None]).sum(dim=2)
        text = self.text_embeddings(tokens[..., codebooks]) * mask[..., codebooks, None]
        return audio + text

    def forward_backbone(self, embeds: Tensor, positions: Tensor, kv_len: int) -> Tensor:
        """(B, S, H) rows at positions (B, S), attending to the first `kv_len` positions -> (B, S, H)."""
        return self.backbone(embeds, positions, kv_len)

    # --- the three steps of a frame: the hot path, compiled once each ------------------------------

    def backbone_step(self, codes: Tensor, positions: Tensor, kv_len: int) -> Tensor:
        """One generated frame (B, K) at positions (B, 1) -> the backbone state after it, (B, H)."""
        embeds = self.audio_embeddings(codes + self.codebook_offsets).sum(dim=1, keepdim=True)  # (B, 1, H)
        return self.backbone(embeds, positions, kv_len)[:, -1]

    def first_codebook(self, hidden: Tensor, noise: Tensor, params: SamplingParams) -> tuple[Tensor, Tensor]:
        """Backbone state (B, H), the frame's (K, B, V) noise -> codebook 0's codes (B,) and the depth decoder's
        first two input rows (B, 2, D): the state and the codes' embedding, for positions 0 and 1."""
        code = sample(self.codebook0_head(hidden), noise[0], params)
        return code, torch.stack((self.projection(hidden), self.depth_embeddings[code]), dim=1)

    def codebook_step(self, x: Tensor, positions: Tensor, head: Tensor, noise: Tensor,
                      params: SamplingParams) -> tuple[Tensor, Tensor]:
        """Depth-decoder rows x (B, S, D) at depth positions (1, S), the last of them k >= 1; codebook k's head
        (D, V); the frame's (K, B, V) noise -> codebook k's codes (B,) and their embedding (B, 1, D), the input
        at position k + 1. Positions 0 and 1 go together (S = 2), then one at a time: a compiled graph for each
        S serves every position. The depth cache holds K positions; those past k (the previous frame's) are
        masked."""
        out = self.decoder(x, positions, self.config.num_codebooks)[:, -1]  # (B, D)
        codebook = positions[0, -1:]  # (1,): k
        code = sample(out @ head, noise.index_select(0, codebook)[0], params)
        return code, self.depth_embeddings[code + codebook * self.config.audio_vocab_size][:, None]
