"""POST /generate_audio (and /v1/generate_audio): the contract of the deployment this service
grew from, so its clients work unchanged.

`{"text", "speaker"?, "voice"?, "max_audio_length_ms"?, "temperature"?, "topk"?, "seed"?,
"format"?, "metadata"?}` -> `{"run_id", "result": {"audio_data", "format", "encoding"},
"run_time_ms"}`: the audio base64-encoded (WAV unless `format` says otherwise); `run_id` is the
job's id. Fields follow POST /v1/jobs' rules (jobs.validation.SyncTextJob).
"""
from __future__ import annotations

import base64
import time

from flask import jsonify

from api.inputs import takes
from api.sync import render_and_wait
from jobs.validation import SyncTextJob, job_request


@takes(body=SyncTextJob)
def generate_audio(body: SyncTextJob):
    started = time.perf_counter()
    rendered = render_and_wait(job_request(body))
    return jsonify(
        {
            "run_id": str(rendered.job.id),
            "result": {
                "audio_data": base64.b64encode(rendered.audio).decode("ascii"),
                "format": rendered.job.format,
                "encoding": "base64",
            },
            "run_time_ms": round((time.perf_counter() - started) * 1000, 1),
        }
    )
