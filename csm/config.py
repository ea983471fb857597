"""Model shape, read from a transformers-layout CSM `config.json` (backbone + `depth_decoder_config`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SAMPLE_RATE = 24_000  # Mimi's output rate, Hz
FRAME_MS = 80  # one Mimi frame (12.5 Hz)
SAMPLES_PER_FRAME = SAMPLE_RATE * FRAME_MS // 1000  # 1920


@dataclass(frozen=True)
class StackConfig:
    """One Llama-3.2 style decoder stack (the backbone or the depth decoder)."""

    num_layers: int
    hidden_size: int
    intermediate_size: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    rms_norm_eps: float
    rope_theta: float
    rope_scaling: dict[str, Any] | None  # transformers' `rope_scaling` ("llama3") or None
    max_positions: int

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StackConfig:
        head_dim = d.get("head_dim") or d["hidden_size"] // d["num_attention_heads"]
        rope_scaling = d.get("rope_scaling")
        if rope_scaling is not None:
            rope_type = rope_scaling.get("rope_type", rope_scaling.get("type"))
            if rope_type not in ("llama3", "default"):
                raise ValueError(f"unsupported rope_scaling type {rope_type!r} (expected 'llama3')")
            rope_scaling = None if rope_type == "default" else dict(rope_scaling)
        return cls(
            num_layers=d["num_hidden_layers"],
            hidden_size=d["hidden_size"],
            intermediate_size=d["intermediate_size"],
            num_heads=d["num_attention_heads"],
            num_kv_heads=d.get("num_key_value_heads") or d["num_attention_heads"],
            head_dim=head_dim,
            rms_norm_eps=d["rms_norm_eps"],
            rope_theta=d["rope_theta"],
            rope_scaling=rope_scaling,
            max_positions=d["max_position_embeddings"],
        )


@dataclass(frozen=True)
class CsmConfig:
    """Shape of a CSM model: backbone, depth decoder, vocabularies."""

    backbone: StackConfig
    depth_decoder: StackConfig
    num_codebooks: int  # Mimi codebooks per frame (32)
    audio_vocab_size: int  # entries per codebook incl. specials (2051)
    text_vocab_size: int
    codebook_eos_token_id: int  # an all-`codebook_eos_token_id` frame ends the audio (0)
    tie_codebooks_embeddings: bool  # depth decoder reuses the backbone's audio embeddings

    @property
    def frame_width(self) -> int:
        """Columns of one prompt row: one per codebook plus the text column."""
        return self.num_codebooks + 1

    @property
    def max_seq_len(self) -> int:
        """Backbone context in rows (2048 for CSM-1B)."""
        return self.backbone.max_positions

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CsmConfig:
        if d.get("model_type") != "csm":
            raise ValueError(f"not a CSM config (model_type={d.get('model_type')!r})")
        depth = d["depth_decoder_config"]
        config = cls(
            backbone=StackConfig.from_dict(d),
            depth_decoder=StackConfig.from_dict(depth),
            num_codebooks=d["num_codebooks"],
            audio_vocab_size=d["vocab_size"],
            text_vocab_size=d["text_vocab_size"],
            codebook_eos_token_id=d["codebook_eos_token_id"],
            tie_codebooks_embeddings=d["tie_codebooks_embeddings"],
        )
        if depth["backbone_hidden_size"] != config.backbone.hidden_size:
            raise ValueError("depth_decoder_config.backbone_hidden_size must equal the backbone hidden_size")
        if depth["num_codebooks"] != config.num_codebooks or depth["vocab_size"] != config.audio_vocab_size:
            raise ValueError("depth decoder and backbone disagree on num_codebooks or vocab_size")
        return config

    @classmethod
    def from_json(cls, path: Path) -> CsmConfig:
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except KeyError as e:
            raise ValueError(f"{path}: missing key {e}") from None
