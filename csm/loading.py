"""Builds a ready Generator from a model spec: weights, text tokenizer, Mimi codec."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import torch
from moshi.models import loaders
from moshi.models.compression import MimiModel

from .config import SAMPLE_RATE, SAMPLES_PER_FRAME, CsmConfig
from .generator import Generator
from .resolve import resolve_model
from .text import load_text_tokenizer
from .weights import load_model

logger = logging.getLogger(__name__)


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def default_dtype(device: torch.device) -> torch.dtype:
    return torch.bfloat16 if device.type == "cuda" else torch.float32


def load_mimi(path: Path, device: torch.device, num_codebooks: int) -> MimiModel:
    mimi = loaders.get_mimi(path, device=device, num_codebooks=num_codebooks)
    if mimi.sample_rate != SAMPLE_RATE or mimi.frame_size != SAMPLES_PER_FRAME:
        raise ValueError(f"{path}: Mimi runs at {mimi.sample_rate} Hz with {mimi.frame_size}-sample frames, "
                         f"expected {SAMPLE_RATE} Hz and {SAMPLES_PER_FRAME}")
    return mimi


def load_generator(spec_or_dir: str | Path, *, device: str | None = None, cache_dir: Path,
                   dtype: torch.dtype | None = None, hf_cache_dir: Path | None = None,
                   max_batch_size: int = 1, compile: bool | None = None, cuda_graphs: bool = True) -> Generator:
    """Loads "tiny", a local model directory or a cached hub id (see `resolve_model`) onto `device`
    (default: cuda if available, else cpu) in `dtype` (default: bf16 on cuda, fp32 on cpu). `compile`
    (default: on cuda only) and `cuda_graphs` take effect in `Generator.warm_up`."""
    start = time.perf_counter()
    torch_device = torch.device(device or default_device())
    dtype = dtype or default_dtype(torch_device)
    files = resolve_model(str(spec_or_dir), cache_dir, hf_cache_dir=hf_cache_dir)
    config = CsmConfig.from_json(files.config)
    model = load_model(config, files.weights, torch_device, dtype)
    mimi = load_mimi(files.mimi, torch_device, config.num_codebooks)
    if compile is None:
        compile = torch_device.type == "cuda"
    generator = Generator(model, load_text_tokenizer(files.model_dir), mimi, max_batch_size=max_batch_size,
                          compile=compile, cuda_graphs=cuda_graphs)
    logger.info("csm_loaded spec=%s device=%s dtype=%s load_s=%.2f", spec_or_dir, torch_device,
                str(dtype).removeprefix("torch."), time.perf_counter() - start)
    return generator
