"""Every route of the API in one table."""
from __future__ import annotations

from api import health, jobs

ROUTES = [
    # (method, rule, view)
    ("GET", "/healthz", health.healthz),
    ("GET", "/readyz", health.readyz),
    ("POST", "/v1/jobs", jobs.submit_job),
    ("GET", "/v1/jobs", jobs.list_jobs),
    ("GET", "/v1/jobs/<uuid:job_id>", jobs.get_job),
    ("GET", "/v1/jobs/<uuid:job_id>/audio", jobs.get_audio),
    ("POST", "/v1/jobs/<uuid:job_id>/cancel", jobs.cancel_job),
]
