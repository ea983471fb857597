"""Faults tied to one job stay with that job: bad voices, odd sample rates, engine errors, lost
leases, retry backoffs. On the real tiny model, a real database and a real S3 server."""
import hashlib
import resource
import time
from datetime import timedelta

import pytest
import torch
from sqlalchemy import update
from support import corrupt_flac, s3_client, wav_bytes

from jobs.keys import create_key
from jobs.models import Job, utcnow
from worker.render import wake_ups
from worker.voices import resample
from worker_helpers import add_voice_object, render, render_all, row, set_not_before, submit

TEXT = {"text": "Hello from the worker.", "max_audio_length_ms": 400}


def owner(runtime, name: str) -> int:
    with runtime.sessions.begin() as session:
        return create_key(session, name)[0].id


def voiced_and_plain(runtime, recording: bytes, **put_args):
    """A job of one key naming a voice stored as `recording`, then another key's plain job."""
    voiced_owner = owner(runtime, "voiced")
    add_voice_object(runtime, voiced_owner, "odd", recording, **put_args)
    voiced = submit(runtime, TEXT | {"voice": "odd", "seed": 1}, owner=voiced_owner)
    plain = submit(runtime, TEXT | {"seed": 2}, owner=owner(runtime, "plain"))
    return voiced, plain


@pytest.mark.parametrize(
    "recording, reason",
    [
        (corrupt_flac(), "must decode completely"),
        (wav_bytes(0.6, rate=1_000_003), "sample rate"),  # a 90 GiB resampling filter, as it is
        (wav_bytes(1.0, rate=4_000), "sample rate"),
    ],
    ids=["garbage-frames", "1000003-hz", "4000-hz"],
)
def test_an_unusable_voice_fails_its_job_alone(runtime, recording, reason):
    voiced, plain = voiced_and_plain(runtime, recording)
    assert render(runtime, voiced).status == "failed"
    job = row(runtime, voiced)
    assert job.error_code == "voice_unreadable" and reason in job.error_message
    assert row(runtime, plain).status == "succeeded"  # it was in the same GPU batch
    assert [[r.text for r in batch] for batch in runtime.generator.batches] == [[TEXT["text"]]]


def test_a_storage_error_loading_a_voice_retries_that_job_alone(runtime):
    # An archived object is a real S3 refusal (InvalidObjectState) rather than a missing one.
    voiced, plain = voiced_and_plain(runtime, wav_bytes(1.0), StorageClass="GLACIER")
    outcome = render(runtime, voiced)
    assert (outcome.disposition, outcome.wake_in_s) == ("released", 5)
    job = row(runtime, voiced)
    assert (job.status, job.error_code, job.attempts) == ("queued", "storage_unavailable", 1)
    assert row(runtime, plain).status == "succeeded"


@pytest.mark.parametrize("rate", [96_001, 8_000])
def test_a_voice_at_an_odd_sample_rate_is_resampled_and_its_batch_renders(runtime, rate):
    voiced, plain = voiced_and_plain(runtime, wav_bytes(1.0, rate=rate))
    assert render(runtime, voiced).status == "succeeded"
    assert row(runtime, plain).status == "succeeded"
    prompt = next(r for r in runtime.generator.batches[0] if r.context).context[0]
    assert prompt.audio.shape[-1] == 24_000


def test_resampling_keeps_the_duration_at_a_bounded_memory_cost():
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB
    for rate in (8_000, 8_001, 22_050, 96_001, 191_999, 192_000):
        out = resample(torch.linspace(-0.5, 0.5, rate), rate, 24_000)  # 1 s
        assert abs(out.numel() - 24_000) <= 1, rate
    # A filter built for 96001 Hz as it is would take 9 GB; 191999 Hz, 18 GB.
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before < 512 * 1024


def test_an_engine_error_in_a_batch_retries_the_other_rows_and_gives_back_only_its_own(make_runtime):
    def out_of_memory_with_the_bad_row(request):
        if request.text == "bad row":
            raise RuntimeError("CUDA out of memory")
        return False

    runtime = make_runtime(silence=out_of_memory_with_the_bad_row)
    good = [submit(runtime, TEXT | {"seed": i}) for i in range(2)]
    bad = submit(runtime, TEXT | {"text": "bad row", "seed": 9})
    outcomes = render_all(runtime, good[0])
    assert [row(runtime, job_id).status for job_id in good] == ["succeeded", "succeeded"]
    job = row(runtime, bad)
    assert (job.status, job.error_code, job.attempts) == ("queued", "engine_error", 1)
    assert [o.disposition for o in outcomes] == ["finished", "finished", "released"]


def test_a_stale_lease_holder_cannot_change_a_finished_jobs_bytes(make_runtime):
    stale = None

    def lease_lost_mid_render(request):
        # While A renders, its lease runs out; B claims the job and finishes it.
        with stale.sessions.begin() as session:
            session.execute(update(Job).where(Job.id == job_id).values(lease_expires_at=utcnow()))
        assert render(make_runtime(), job_id).status == "succeeded"
        return False

    stale = make_runtime(silence=lease_lost_mid_render)
    job_id = submit(stale, TEXT | {"seed": 5})
    assert render(stale, job_id).disposition == "skipped"  # A finds its claim lost at completion
    finished = row(stale, job_id)
    data = stale.store.open(finished.audio_key).read()
    assert finished.status == "succeeded"
    assert (finished.audio_bytes, finished.audio_sha256) == (len(data), hashlib.sha256(data).hexdigest())
    listed = s3_client(stale.settings.s3_endpoint_url).list_objects_v2(
        Bucket=stale.settings.s3_bucket, Prefix=f"jobs/{job_id}/"
    )
    assert [o["Key"] for o in listed["Contents"]] == [finished.audio_key]  # A removed what it wrote


def test_released_jobs_wait_out_their_backoff(make_runtime):
    runtime = make_runtime(S3_BUCKET="no-such-bucket")
    job_id, rider = submit(runtime, TEXT), submit(runtime, TEXT)
    outcomes = render_all(runtime, job_id)
    assert [(o.job_id, o.disposition, o.wake_in_s) for o in outcomes] == [(job_id, "released", 5), (rider, "released", 5)]
    assert [o.job_id for o in wake_ups(outcomes)] == [job_id]  # one message wakes both when due
    job = row(runtime, job_id)
    assert (job.status, job.attempts, job.not_before - job.enqueued_at) == ("queued", 1, timedelta(seconds=5))

    set_not_before(runtime, [job_id, rider], 60)  # a slow machine must not see the backoff end meanwhile
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:  # its own message again and again
        early = render(runtime, job_id)
        assert early.disposition == "skipped" and 55 < early.wake_in_s <= 60  # sent again for when it is due
    other = submit(runtime, TEXT)
    render(runtime, other)  # another job's message fills its GPU batch with due jobs only
    assert [[row(runtime, j).attempts for j in batch_jobs] for batch_jobs in ([job_id, rider], [other])] == [[1, 1], [1]]
    assert [len(batch) for batch in runtime.generator.batches] == [2, 1]

    set_not_before(runtime, [other], 60)
    set_not_before(runtime, [job_id, rider], 0)  # the backoff ends
    again = render_all(runtime, job_id)
    assert [(o.job_id, o.disposition, o.wake_in_s) for o in again] == [(job_id, "released", 20), (rider, "released", 20)]
