"""CSM as plain torch modules: a Llama-3.2 backbone, a small depth decoder, their heads and embeddings.

No I/O here (see `weights.py`). Static KV caches are allocated once by `setup_caches(max_batch_size)`.
Every row of a batch has its own positions, so rows of different prompt lengths share one forward pass
(right padding: a row's pad rows sit after its prompt, are never attended, and are overwritten later).
Shapes: B batch, S new rows, T attended cache length, H backbone width, D depth decoder width,
K codebooks, V audio vocabulary, W = K + 1 prompt columns.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import CsmConfig, StackConfig

# Picks one token per row: (B, V) logits of codebook k -> (B,) token ids.
Sampler = Callable[[Tensor, int], Tensor]


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


def rotate_half(x: Tensor) -> Tensor:
    first, second = x.chunk(2, dim=-1)
    return torch.cat((-second, first), dim=-1)


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        x32 = x.float()
        x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x32.to(x.dtype)


class KVCache(nn.Module):
    """Keys and values of one attention layer: (max_batch, kv_heads, max_seq, head_dim) each."""

    def __init__(self, max_batch: int, kv_heads: int, max_seq: int, head_dim: int, device, dtype):
        super().__init__()
        shape = (max_batch, kv_heads, max_seq, head_dim)
        self.register_buffer("k", torch.zeros(shape, device=device, dtype=dtype), persistent=False)
        self.register_buffer("v", torch.zeros(shape, device=device, dtype=dtype), persistent=False)

    def update(self, positions: Tensor, k: Tensor, v: Tensor, kv_len: int) -> tuple[Tensor, Tensor]:
        """Writes row b's (kv_heads, S, head_dim) slices of k, v at its `positions[b]` (B, S); returns the
        first `kv_len` positions of the B rows' caches, (B, kv_heads, kv_len, head_dim) each."""
        batch = k.size(0)
        rows = torch.arange(batch, device=positions.device)[:, None]  # (B, 1)
        self.k[rows, :, positions] = k.transpose(1, 2)  # indexed as (B, S, kv_heads, head_dim)
        self.v[rows, :, positions] = v.transpose(1, 2)
        return self.k[:batch, :, :kv_len], self.v[:batch, :, :kv_len]


class Attention(nn.Module):
    def __init__(self, stack: StackConfig):
        super().__init__()
        self.num_heads, self.num_kv_heads, self.head_dim = stack.num_heads, stack.num_kv_heads, stack.head_dim
        self.q_proj = nn.Linear(stack.hidden_size, stack.num_heads * stack.head_dim, bias=False)
        self.k_proj = nn.Linear(stack.hidden_size, stack.num_kv_heads * stack.head_dim, bias=False)
        self.v_proj = nn.Linear(stack.hidden_size, stack.num_kv_heads * stack.head_dim, bias=False)
        self.o_proj = nn.Linear(stack.num_heads * stack.head_dim, stack.hidden_size, bias=False)
        self.kv_cache: KVCache | None = None

    def forward(self, x: Tensor, cos: Tensor, sin: Tensor, mask: Tensor, positions: Tensor, kv_len: int) -> Tensor:
        """x (B, S, hidden), cos/sin (B, 1, S, head_dim), mask (B, 1, S, T) bool, positions (B, S)
        -> (B, S, hidden)."""
        batch, seq, _ = x.shape
        kv_heads, group = self.num_kv_heads, self.num_heads // self.num_kv_heads
        q = self.q_proj(x).view(batch, seq, self.num_heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(batch, seq, kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(batch, seq, kv_heads, self.head_dim).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k, v = self.kv_cache.update(positions, k, v, kv_len)
        # grouped-query attention without copying the cache per head: the `group` query heads of one kv head
        # become group * S query rows of that head, (B, kv_heads, group * S, head_dim)
        q = q.reshape(batch, kv_heads, group * seq, self.head_dim)
        mask = mask[:, :, None].expand(-1, -1, group, -1, -1).reshape(mask.size(0), 1, group * seq, kv_len)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        # reshape, not view: CUDA's flash and efficient kernels return a transposed view of (B, M, H, K) storage
        out = out.reshape(batch, self.num_heads, seq, self.head_dim).transpose(1, 2)  # (B, S, heads, head_dim)
        return self.o_proj(out.reshape(batch, seq, -1))


class MLP(nn.Module):
    def __init__(self, stack: StackConfig):
        super().__init__()
        self.gate_proj = nn.Linear(stack.hidden_size, stack.intermediate_size, bias=False)
        self.up_proj = nn.Linear(stack.hidden_size, stack.intermediate_size, bias=False)
        self.down_proj = nn.Linear(stack.intermediate_size, stack.hidden_size, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Block(nn.Module):
    def __init__(self, stack: StackConfig):
        super().__init__()
        self.input_layernorm = RMSNorm(stack.hidden_size, stack.rms_norm_eps)
        self.self_attn = Attention(stack)
        self.post_attention_layernorm = RMSNorm(stack.hidden_size, stack.rms_norm_eps)
        self.mlp = MLP(stack)

    def forward(self, x: Tensor, cos: Tensor, sin: Tensor, mask: Tensor, positions: Tensor, kv_len: int) -> Tensor:
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask, positions, kv_len)
        return x + self.mlp(self.post_attention_layernorm(x))


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
        angles = torch.cat((angles, angles), dim=-1)  # (max_seq, head_dim)
        self.register_buffer("rope_cos", angles.cos().to(dtype), persistent=False)
        self.register_buffer("rope_sin", angles.sin().to(dtype), persistent=False)
        self.register_buffer("cache_positions", torch.arange(max_seq, device=device), persistent=False)

    def forward(self, x: Tensor, positions: Tensor, kv_len: int) -> Tensor:
        """x (B, S, hidden) at `positions` (B, S), or (1, S) for all rows -> (B, S, hidden), normed. Attends to
        the first `kv_len` cache positions, which must cover every position in `positions`."""
        cos, sin = self.rope_cos[positions][:, None], self.rope_sin[positions][:, None]  # (B, 1, S, head_dim)
        # (B, 1, S, T): each row sees its own cache up to its own position
        mask = (self.cache_positions[:kv_len] <= positions[..., None])[:, None]
        for layer in self.layers:
            x = layer(x, cos, sin, mask, positions, kv_len)
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
        """Allocates the static caches on the weights' device and dtype (once per model)."""
        weight = self.codebook0_head.weight
        config = self.config
        self.backbone.setup_caches(max_batch_size, config.max_seq_len, weight.device, weight.dtype)
        # per frame the depth decoder sees the backbone state then codebooks 0..K-2: K positions
        self.decoder.setup_caches(max_batch_size, config.num_codebooks, weight.device, weight.dtype)
        self.register_buffer("codebook_offsets", torch.arange(config.num_codebooks, device=weight.device)
                             * config.audio_vocab_size, persistent=False)
        self.register_buffer("decoder_positions", torch.arange(config.num_codebooks, device=weight.device),
                             persistent=False)

    def embed_rows(self, tokens: Tensor, mask: Tensor) -> Tensor:
        """Prompt rows (B, S, W) with their (B, S, W) bool mask -> (B, S, H): sum of the active columns."""
        codebooks = self.config.num_codebooks
        audio = self.audio_embeddings(tokens[..., :codebooks] + self.codebook_offsets)  # (B, S, K, H)
        audio = (audio * mask[..., :codebooks, None]).sum(dim=2)
        text = self.text_embeddings(tokens[..., codebooks]) * mask[..., codebooks, None]
        return audio + text

    def embed_frame(self, codes: Tensor) -> Tensor:
        """One generated frame (B, K) -> its backbone input (B, 1, H)."""
        return self.audio_embeddings(codes + self.codebook_offsets).sum(dim=1, keepdim=True)

    def forward_backbone(self, embeds: Tensor, positions: Tensor, kv_len: int) -> Tensor:
        """(B, S, H) rows at positions (B, S), attending to the first `kv_len` positions -> (B, S, H)."""
        return self.backbone(embeds, positions, kv_len)

    def sample_frame(self, hidden: Tensor, sample: Sampler) -> Tensor:
        """Backbone state (B, H) -> one frame of codes (B, K): codebook 0 from the backbone head,
        codebooks 1..K-1 from the depth decoder, whose positions restart at 0 every frame."""
        vocab = self.config.audio_vocab_size
        code = sample(self.codebook0_head(hidden), 0)  # (B,)
        codes = [code]
        x = torch.stack((hidden, self.audio_embeddings(code)), dim=1)  # (B, 2, H)
        positions = self.decoder_positions[None, :2]  # (1, 2): the same for every row
        for codebook in range(1, self.config.num_codebooks):
            if codebook > 1:  # feed the previous codebook's token
                x = self.audio_embeddings(code + (codebook - 1) * vocab)[:, None]  # (B, 1, H)
                positions = self.decoder_positions[None, codebook : codebook + 1]
            out = self.decoder(self.projection(x), positions, codebook + 1)[:, -1]  # (B, D)
            code = sample(out @ self.audio_head[codebook - 1], codebook)
            codes.append(code)
        return torch.stack(codes, dim=1)
