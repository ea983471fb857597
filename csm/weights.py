"""Reads and writes CsmModel weights in the transformers `CsmForConditionalGeneration` safetensors layout."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from .config import CsmConfig
from .model import CsmModel

CODEC_PREFIX = "codec_model."  # transformers' copy of Mimi: we use moshi's Mimi instead

# (transformers key prefix, our key prefix), most specific first. The codebook embeddings are tied:
# transformers saves them under the depth decoder's name (listed first, so `to_transformers_key` uses it).
_PREFIXES = (
    ("depth_decoder.model.embed_tokens.", "audio_embeddings."),
    ("backbone_model.embed_tokens.embed_audio_tokens.", "audio_embeddings."),
    ("depth_decoder.model.inputs_embeds_projector.", "projection."),
    ("depth_decoder.model.", "decoder."),
    ("depth_decoder.codebooks_head.weight", "audio_head"),
    ("backbone_model.", "backbone."),
    ("embed_text_tokens.", "text_embeddings."),
    ("lm_head.", "codebook0_head."),
)


def to_our_key(key: str) -> str:
    for theirs, ours in _PREFIXES:
        if key.startswith(theirs):
            return ours + key[len(theirs) :]
    return key  # unknown keys surface as errors in the strict load


def to_transformers_key(key: str) -> str:
    for theirs, ours in _PREFIXES:
        if key.startswith(ours):
            return theirs + key[len(ours) :]
    raise KeyError(key)


def load_model(config: CsmConfig, weight_files: tuple[Path, ...], device: torch.device, dtype: torch.dtype) -> CsmModel:
    """Builds the model on the meta device and assigns the checkpoint tensors (cast to `dtype`) in place."""
    with torch.device("meta"):
        model = CsmModel(config)
    state = {}
    for path in weight_files:
        with safe_open(str(path), framework="pt", device=str(device)) as f:
            for key in f.keys():
                if key.startswith(CODEC_PREFIX):
                    continue
                ours = to_our_key(key)
                if ours not in state:  # a tied tensor may be stored under both names
                    state[ours] = f.get_tensor(key).to(dtype)
    model.load_state_dict(state, strict=True, assign=True)
    return model.eval()


def save_model(model: CsmModel, path: Path) -> None:
    # cloned: the parts of a fused weight (see model.fuse_linears) are views of one tensor
    state = {to_transformers_key(k): v.clone(memory_format=torch.contiguous_format) for k, v in model.state_dict().items()}
    save_file(state, str(path), metadata={"format": "pt"})
