"""The explicit download step: fetches a hub model and the Mimi codec into the Hugging Face cache.

Usage: python -m csm.download [REPO_ID] [--hf-cache-dir DIR]
Gated repos (sesame/csm-1b is one) need a token of an account that accepted the terms, passed the
standard way (the HF_TOKEN environment variable or `huggingface-cli login`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from huggingface_hub import hf_hub_download, snapshot_download
from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, LocalEntryNotFoundError, RepositoryNotFoundError

from .resolve import DEFAULT_HUB_ID, HUB_PATTERNS, MIMI_FILE, MIMI_REPO, ModelFiles, ModelFilesError, \
    hub_model_files, is_hub_id


def download(repo_id: str, hf_cache_dir: Path | None = None) -> ModelFiles:
    """Downloads (or refreshes) the model and Mimi files; returns them as the engine will resolve them."""
    snapshot_download(repo_id, allow_patterns=list(HUB_PATTERNS), cache_dir=hf_cache_dir)
    hf_hub_download(MIMI_REPO, MIMI_FILE, cache_dir=hf_cache_dir)
    return hub_model_files(repo_id, hf_cache_dir)


def _failure(repo_id: str, error: Exception) -> str:
    if isinstance(error, GatedRepoError):
        return (f"{repo_id} is gated: accept its terms on https://huggingface.co/{repo_id} and provide a "
                f"token of that account (HF_TOKEN or `huggingface-cli login`).")
    if isinstance(error, RepositoryNotFoundError):
        return f"{repo_id} was not found on the Hugging Face Hub (or it is private and no valid token was given)."
    if isinstance(error, (LocalEntryNotFoundError, ConnectionError)):
        return f"could not reach the Hugging Face Hub to download {repo_id}; check the network or proxy settings."
    if isinstance(error, HfHubHTTPError):
        return f"the Hugging Face Hub refused the download of {repo_id}: {error}"
    if isinstance(error, ModelFilesError):
        return f"the download of {repo_id} finished but files are missing: {error}"
    return f"downloading {repo_id} failed: {error}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("repo_id", nargs="?", default=DEFAULT_HUB_ID)
    parser.add_argument("--hf-cache-dir", type=Path, default=None, help="default: huggingface_hub's cache")
    args = parser.parse_args(argv)
    if not is_hub_id(args.repo_id):
        print(f"error: {args.repo_id!r} is not a hub id like {DEFAULT_HUB_ID!r}", file=sys.stderr)
        return 2
    try:
        files = download(args.repo_id, args.hf_cache_dir)
    except OSError as error:  # all hub and connection errors are OSErrors
        print(f"error: {_failure(args.repo_id, error)}", file=sys.stderr)
        return 1
    print(f"model: {files.model_dir}\nmimi: {files.mimi}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
