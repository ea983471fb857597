"""Turns a model spec ("tiny", a local directory, or a hub id) into the files the engine loads.

Nothing here touches the network: hub files must already be in the Hugging Face cache, put there
by the explicit download step `python -m csm.download`.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from huggingface_hub import hf_hub_download, snapshot_download
from huggingface_hub.errors import LocalEntryNotFoundError
from moshi.models import loaders

from .files import CONFIG_FILE, LOCAL_MIMI_FILE, TOKENIZER_FILES, WEIGHTS_FILE, WEIGHTS_INDEX_FILE
from .tiny import write_tiny_model

TINY_SPEC = "tiny"
DEFAULT_HUB_ID = "sesame/csm-1b"  # transformers format: config.json, model.safetensors, tokenizer files
MIMI_REPO = loaders.DEFAULT_REPO  # moshi's Mimi checkpoint, as Sesame's reference uses it
MIMI_FILE = loaders.MIMI_NAME

# What the download step fetches from the CSM repo (weights either whole or sharded).
HUB_PATTERNS = (CONFIG_FILE, "model*.safetensors", WEIGHTS_INDEX_FILE, "tokenizer*", "special_tokens_map.json")

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


class ModelFilesError(FileNotFoundError):
    """The model files for a spec are missing; the message says how to get them."""


@dataclass(frozen=True)
class ModelFiles:
    model_dir: Path  # config.json, tokenizer files
    weights: tuple[Path, ...]  # safetensors file(s), transformers CSM layout
    mimi: Path  # moshi-format Mimi weights

    @property
    def config(self) -> Path:
        return self.model_dir / CONFIG_FILE


def is_hub_id(spec: str) -> bool:
    return bool(_HUB_ID.match(spec))


def resolve_model(spec: str, cache_dir: Path, *, hf_cache_dir: Path | None = None) -> ModelFiles:
    """`spec` is "tiny" (built under `cache_dir/tiny` on first use), a local model directory, or a
    hub id such as "sesame/csm-1b" (read from the Hugging Face cache only; `hf_cache_dir=None` means
    huggingface_hub's default cache)."""
    if spec == TINY_SPEC:
        return _local_files(_ensure_tiny(Path(cache_dir) / TINY_SPEC))
    if Path(spec).is_dir():
        return _local_files(Path(spec))
    if is_hub_id(spec):
        return hub_model_files(spec, hf_cache_dir)
    raise ModelFilesError(f"model spec {spec!r} is neither {TINY_SPEC!r}, an existing directory, nor a hub id")


def _ensure_tiny(target: Path) -> Path:
    """Builds the tiny model once; concurrent builders race to an atomic rename, the loser's copy is dropped."""
    if (target / CONFIG_FILE).is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".tiny-", dir=target.parent))
    try:
        write_tiny_model(scratch)
        scratch.rename(target)
    except OSError:
        if not (target / CONFIG_FILE).is_file():
            raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target


def _weight_files(model_dir: Path) -> tuple[Path, ...]:
    index = model_dir / WEIGHTS_INDEX_FILE
    if index.is_file():
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        return tuple(model_dir / shard for shard in shards)
    return (model_dir / WEIGHTS_FILE,)


def _check_present(files: list[Path], hint: str) -> None:
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise ModelFilesError(f"missing model files: {', '.join(missing)}. {hint}")


def _local_files(model_dir: Path) -> ModelFiles:
    files = ModelFiles(model_dir, _weight_files(model_dir), model_dir / LOCAL_MIMI_FILE)
    hint = (f"A local model directory needs {CONFIG_FILE}, {WEIGHTS_FILE} (or a sharded index), "
            f"{' and '.join(TOKENIZER_FILES)}, and {LOCAL_MIMI_FILE} (moshi format).")
    _check_present([files.config, *files.weights, *(model_dir / t for t in TOKENIZER_FILES), files.mimi], hint)
    return files


def hub_model_files(repo_id: str, hf_cache_dir: Path | None = None) -> ModelFiles:
    """The cached files of a hub model and of Mimi; ModelFilesError if any is missing."""
    hint = f"Run `python -m csm.download {repo_id}` first (it needs network access and, for gated repos, HF_TOKEN)."
    try:
        snapshot = Path(snapshot_download(repo_id, allow_patterns=list(HUB_PATTERNS), cache_dir=hf_cache_dir,
                                          local_files_only=True))
        mimi = Path(hf_hub_download(MIMI_REPO, MIMI_FILE, cache_dir=hf_cache_dir, local_files_only=True))
    except LocalEntryNotFoundError:
        raise ModelFilesError(f"model {repo_id!r} or its Mimi codec ({MIMI_REPO}/{MIMI_FILE}) is not in the "
                              f"Hugging Face cache. {hint}") from None
    files = ModelFiles(snapshot, _weight_files(snapshot), mimi)
    _check_present([files.config, *files.weights, *(snapshot / t for t in TOKENIZER_FILES)], hint)
    return files
