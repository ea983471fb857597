"""Downloading a job's or a batch's files into a folder, resumably: a file already there whose
sha256 is the one the API states is skipped, so a second run fetches only what is missing.

A job named NAME (its id, or a batch's output name without extension) gives NAME.<format> (the
audio; a script's master) and, for a script, NAME/line-NNN.wav and NAME/manifest.json. A batch
gives what its zip archive holds: every job's files as above (no per-script manifest) plus
manifest.csv.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from client.http import CHUNK_BYTES, ApiClient, BadDownload
from jobs.formats import audio_format
from jobs.status import LineStatus


@dataclass
class Tally:
    """Audio files only: manifests are fetched every time (the API states no sha256 for them)."""

    downloaded: int = 0
    skipped: int = 0  # already there with the right sha256
    missing: int = 0  # outputs that do not exist (failed or unfinished lines and jobs)

    def __str__(self) -> str:
        text = f"{self.downloaded} downloaded, {self.skipped} already there"
        return text + (f", {self.missing} not available" if self.missing else "")


def download_job(api: ApiClient, job: dict, out_dir: Path, name: str | None = None) -> Tally:
    """A job's files (`job`: its resource, as GET /v1/jobs/{id} returns it) under `out_dir`."""
    folder = _Folder(api, out_dir)
    name = name or job["id"]
    folder.job_audio(job, name)
    if job["type"] == "script" and job["result"] is not None:
        manifest = folder.inside(f"{name}/manifest.json")  # fetched every time: it has no stated sha256
        api.download(f"/v1/jobs/{job['id']}/manifest", manifest)
        for line in json.loads(manifest.read_text())["lines"]:
            rendered = line["status"] == LineStatus.SUCCEEDED
            folder.line(job["id"], line["index"], name, line["sha256"] if rendered else None)
    return folder.tally


def download_batch(api: ApiClient, batch_id: str, out_dir: Path) -> Tally:
    """A batch's files as far as they exist, and its manifest.csv."""
    folder = _Folder(api, out_dir)
    for row in api.get(f"/v1/batches/{batch_id}/manifest")["rows"]:
        job_id, name = row["job_id"], row["output_name"]
        if row["script_line"] is None:  # a text: the row is the job
            folder.maybe_fetch(f"/v1/jobs/{job_id}/audio", name, row["sha256"])
            continue
        stem = name.rpartition(".")[0]
        if row["script_line"] == 0:  # a script's first row: its master, from the job
            folder.job_audio(api.get(f"/v1/jobs/{job_id}"), stem)
        folder.line(job_id, row["script_line"], stem, row["sha256"])
    manifest = api.get_text(f"/v1/batches/{batch_id}/manifest", format="csv")
    folder.inside("manifest.csv").write_text(manifest)
    return folder.tally


@dataclass
class _Folder:
    api: ApiClient
    out_dir: Path
    tally: Tally = field(default_factory=Tally)

    def job_audio(self, job: dict, name: str) -> None:
        result = job["result"]
        file_name = f"{name}.{audio_format(job['format']).extension}"
        self.maybe_fetch(f"/v1/jobs/{job['id']}/audio", file_name, result["sha256"] if result else None)

    def line(self, job_id: str, index: int, name: str, sha256: str | None) -> None:
        self.maybe_fetch(f"/v1/jobs/{job_id}/lines/{index}/audio", f"{name}/line-{index:03d}.wav", sha256)

    def maybe_fetch(self, path: str, name: str, sha256: str | None) -> None:
        """`sha256` None: the output does not exist (it failed, or is not done): counted as missing."""
        if sha256 is None:
            self.tally.missing += 1
        else:
            self.fetch(path, name, sha256)

    def fetch(self, path: str, name: str, sha256: str) -> None:
        target = self.inside(name)
        if target.is_file() and _sha256(target) == sha256:
            self.tally.skipped += 1
            return
        self.api.download(path, target, sha256)
        self.tally.downloaded += 1

    def inside(self, name: str) -> Path:
        return inside(self.out_dir, name)


def inside(out_dir: Path, name: str) -> Path:
    """The file `name` under `out_dir`; a name that would leave it is refused (names come from
    the server: its ids and output names)."""
    target = (out_dir / name).resolve()
    if not target.is_relative_to(out_dir.resolve()):
        raise BadDownload(f"refusing to write {name!r} outside {out_dir}")
    return target


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while chunk := source.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()
