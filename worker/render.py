"""Render a job: claim it (with other queued texts to fill a GPU batch) and hand the claims to
the text path or the script path, with their leases renewed meanwhile.

No database connection is held while the model runs. Every outcome is recorded on the rows;
what comes back here says which jobs need a wake-up message, and when.
"""
from __future__ import annotations

import logging
import time
import uuid

import logs
from jobs import repository
from jobs.models import utcnow
from worker import metrics
from worker.lease import leases_renewed
from worker.runtime import Runtime
from worker.script import render_script
from worker.steps import Disposition, Outcome
from worker.texts import render_texts

log = logging.getLogger(__name__)


def render_job(job_id: uuid.UUID, runtime: Runtime) -> list[Outcome]:
    """Renders `job_id`, filling the GPU batch with other queued texts (of the sync queue first,
    then of its queue) -> what became of each job this task touched, `job_id`'s first.

    A message is a wake-up call: when its own job was already taken (as another task's
    rider), it still renders what is queued, so a batch needs one message per GPU batch.
    """
    settings = runtime.settings
    claim_args = dict(lease_s=settings.lease_s, max_attempts=settings.max_attempts)
    with runtime.sessions.begin() as session:
        claim = repository.claim_job(session, job_id, **claim_args)
        riders, own = [], []
        if claim is None or not claim.is_script:
            queue = claim.queue if claim else repository.job_queue(session, job_id)
            room = runtime.generator.max_batch_size - (claim is not None)
            others = repository.queued_text_jobs(session, queue, room, exclude=job_id) if queue else []
            riders = [c for c in (repository.claim_job(session, i, **claim_args) for i in others) if c]
        if claim is None:
            # A message that came before its job's backoff ended (a host clock ahead of the
            # database's) is sent again for when the job is due.
            own = [Outcome(job_id, Disposition.SKIPPED, wake_in_s=repository.due_in_s(session, job_id), queue=queue)]
    claims = [c for c in (claim, *riders) if c is not None]
    if not claims:
        log.info("event=job_skipped job_id=%s reason=not_claimable", job_id)
        return own
    for held in claims:
        log.info(
            "event=job_running job_id=%s batch_id=%s attempt=%d batch_of=%d",
            held.job_id, held.batch_id, held.attempt, len(claims),
        )
    metrics.claimed(claims, utcnow())
    started = time.perf_counter()
    kind = "script" if claims[0].is_script else "text"
    batches = {held.batch_id for held in claims}  # lines logged meanwhile name the batch they share
    with leases_renewed(runtime, claims), logs.bound(batch_id=batches.pop() if len(batches) == 1 else None):
        outcomes = [render_script(claims[0], runtime)] if kind == "script" else own + render_texts(claims, runtime)
    metrics.rendered(kind, time.perf_counter() - started, len(claims))
    return outcomes


def wake_ups(outcomes: list[Outcome]) -> list[Outcome]:
    """The outcomes to publish a wake-up message for: one per queue and due time is enough,
    since each message has its worker fill a GPU batch with every due job of its queue."""
    due: dict[tuple, Outcome] = {}
    for outcome in outcomes:
        if outcome.wake_in_s is not None:
            due.setdefault((outcome.queue, outcome.wake_in_s), outcome)
    return list(due.values())
