"""The client commands of `csm-batch`, each `(api, args) -> exit status`: they call the API,
print what a user needs on stdout (progress and notes on stderr), and leave errors to `explain`.

`say` submits a job and polls it rather than calling the synchronous POST /generate_audio: no
HTTP request stays open while the model renders, so a long text outlives proxies' and the
server's time limits (SYNC_WAIT_S), and Ctrl-C leaves a job that `status` and `download` find.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import uuid
from pathlib import Path

from client.http import ApiClient, ApiRefused
from client.outputs import download_batch, download_job, inside
from client.progress import wait_for_batch, wait_for_job
from jobs.formats import FORMATS, audio_format
from jobs.status import BatchStatus, JobStatus

HINTS = {  # what to do about an error, beyond the API's message
    "unauthorized": "the API refused the key in CSM_API_KEY",
    "idempotency_key_reused": "this file (its sha256 is the Idempotency-Key) was accepted in the last 24 h "
    "with other options",
}


def say(api: ApiClient, args: argparse.Namespace) -> int:
    body = {"text": args.text, "speaker": args.speaker, "voice": args.voice, "format": _say_format(args)}
    job = _submit_job(api, {name: value for name, value in body.items() if value is not None})
    if job["result"] is None:
        return _failed("job", job)
    target = args.output or inside(Path("."), f"{job['id']}.{audio_format(job['format']).extension}")
    api.download(f"/v1/jobs/{job['id']}/audio", target)
    print(f"{target} ({job['result']['duration_ms']} ms)")
    return 0


def script(api: ApiClient, args: argparse.Namespace) -> int:
    loaded = json.loads(args.file.read_text())
    job = _submit_job(api, {"script": loaded} if isinstance(loaded, list) else loaded)
    tally = download_job(api, job, args.output, name=args.file.stem)
    print(f"{args.output}: {tally}")
    return 0 if job["status"] == JobStatus.SUCCEEDED else _failed("script", job)


def submit(api: ApiClient, args: argparse.Namespace) -> int:
    data = args.file.read_bytes()
    upload = {"files": {"file": (args.file.name, data, "text/csv")}, "data": _webhook(args)}
    if args.validate_only:
        summary = api.post("/v1/batches", params={"validate_only": "true"}, **upload).body
        print(f"{args.file}: valid, {summary['rows']} rows -> {summary['jobs']} jobs ({summary['scripts']} scripts)")
        return 0
    created = api.post("/v1/batches", idempotency_key=hashlib.sha256(data).hexdigest(), **upload)
    batch = created.body
    if created.replayed:
        print(f"{args.file} was already submitted as batch {batch['id']}: replayed, nothing new was queued")
    else:
        print(f"submitted batch {batch['id']}: {batch['jobs_total']} jobs")
    if not (args.wait or args.out):
        return 0
    batch = wait_for_batch(api, batch["id"])
    print(_batch_summary(batch))
    if args.out:
        print(f"{args.out}: {download_batch(api, batch['id'], args.out)}")
    return 0 if batch["status"] == BatchStatus.SUCCEEDED else 1


def status(api: ApiClient, args: argparse.Namespace) -> int:
    kind, resource = _find(api, args.id)
    print(_job_summary(resource) if kind == "job" else _batch_summary(resource))
    return 0


def download(api: ApiClient, args: argparse.Namespace) -> int:
    kind, resource = _find(api, args.id)
    tally = download_job(api, resource, args.out) if kind == "job" else download_batch(api, args.id, args.out)
    print(f"{args.out}: {tally}")
    if resource["status"] in (JobStatus.QUEUED, JobStatus.RUNNING):
        print(f"the {kind} is still {resource['status']}: run download again once it ends", file=sys.stderr)
    return 0


def explain(refusal: ApiRefused) -> str:
    """The API's error as lines for a person: the message (with the field at fault), then each
    problem as `line:field: message` (a CSV's) or `field: message`."""
    if refusal.problems:  # the problems name the fields; a CSV's message counts them
        lead = f"{len(refusal.problems)} problem(s) in the request" if refusal.field else refusal.message
    else:
        lead = f"{refusal.field}: {refusal.message}" if refusal.field else refusal.message
    hint = HINTS.get(refusal.code)
    lines = [f"csm-batch: {hint}: {lead}" if hint else f"csm-batch: {lead} (HTTP {refusal.status}, {refusal.code})"]
    for problem in refusal.problems:
        where = ":".join(str(problem[part]) for part in ("line", "field") if problem.get(part) is not None)
        lines.append(f"{where}: {problem['message']}" if where else problem["message"])
    return "\n".join(lines)


def _submit_job(api: ApiClient, body: dict) -> dict:
    job = api.post("/v1/jobs", json=body).body
    print(f"job {job['id']} queued", file=sys.stderr)
    return wait_for_job(api, job["id"])


def _say_format(args: argparse.Namespace) -> str | None:
    """--format, else the output file's extension when it names a format (-o hello.mp3)."""
    suffix = args.output.suffix.lstrip(".").lower() if args.output else ""
    return args.format or (suffix if suffix in FORMATS else None)


def _webhook(args: argparse.Namespace) -> dict:
    return {"webhook_url": args.webhook_url} if args.webhook_url else {}


def _find(api: ApiClient, ident: str) -> tuple[str, dict]:
    """("job" or "batch", its resource) for an id of either."""
    try:
        uuid.UUID(ident)
    except ValueError:
        raise ApiRefused(400, "invalid_id", f"{ident!r} is not a job or batch id") from None
    for kind, collection in (("job", "/v1/jobs"), ("batch", "/v1/batches")):
        try:
            return kind, api.get(f"{collection}/{ident}")
        except ApiRefused as refusal:
            if refusal.status != 404:
                raise
    raise ApiRefused(404, "not_found", f"this key has no job or batch {ident}")


def _failed(what: str, job: dict) -> int:
    error = job["error"] or {"code": job["status"], "message": f"the {what} was {job['status']}"}
    print(f"csm-batch: the {what} {job['status']}: {error['message']} ({error['code']})", file=sys.stderr)
    return 1


def _job_summary(job: dict) -> str:
    lines = [f"job {job['id']} ({job['type']}, {job['format']}): {job['status']}, "
             f"{job['lines_done']}/{job['lines_total']} lines, {job['attempts']} attempts"]
    lines += [f"  {name}: {job[name]}" for name in ("created_at", "started_at", "finished_at") if job[name]]
    if job["error"]:
        lines.append(f"  error: {job['error']['message']} ({job['error']['code']})")
    if job["result"]:
        result = job["result"]
        lines.append(f"  audio: {result['duration_ms']} ms, {result['bytes']} bytes, sha256 {result['sha256']}")
    return "\n".join(lines)


def _batch_summary(batch: dict) -> str:
    counts = ", ".join(f"{count} {status}" for status, count in sorted(batch["counts"].items()))
    return (f"batch {batch['id']} ({batch['filename'] or 'CSV'}): {batch['status']}, "
            f"{batch['jobs_done']}/{batch['jobs_total']} jobs done ({counts})")
