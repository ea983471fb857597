"""The render pipeline in process, on the real tiny model, a real database and S3 server."""
import hashlib
import io
import uuid
import wave

from refusing_s3 import run_refusing_s3
from support import s3_client
from worker_helpers import lines, render, render_all, row, set_not_before
from worker_helpers import submit as submit_body


def submit(runtime, **fields) -> uuid.UUID:
    return submit_body(runtime, {"text": "Hello from the worker.", "max_audio_length_ms": 400, "seed": 3} | fields)


def test_a_redelivered_task_renders_once_and_finishes_once(runtime):
    job_id = submit(runtime)
    assert render(runtime, job_id).status == "succeeded"
    first = row(runtime, job_id)
    s3 = s3_client(runtime.settings.s3_endpoint_url)
    stored = s3.head_object(Bucket=runtime.settings.s3_bucket, Key=first.audio_key)

    assert render(runtime, job_id).disposition == "skipped"
    second = row(runtime, job_id)
    again = s3.head_object(Bucket=runtime.settings.s3_bucket, Key=second.audio_key)
    assert len(runtime.generator.batches) == 1
    assert (second.status, second.finished_at, second.attempts, second.audio_key) == (
        "succeeded", first.finished_at, 1, first.audio_key
    )
    assert again["LastModified"] == stored["LastModified"] and again["ETag"] == stored["ETag"]


def test_the_message_of_a_deleted_job_claims_nothing(runtime):
    from jobs import deletion
    from jobs.models import Job

    deleted, waiting = submit(runtime), submit(runtime)
    with runtime.sessions.begin() as session:
        assert deletion.delete_jobs(session, Job.id == deleted)
    outcomes = render_all(runtime, deleted)
    # No row says which queue it was on, so it fills no GPU batch: `waiting` keeps its own message.
    assert [(o.job_id, o.disposition, o.wake_in_s) for o in outcomes] == [(deleted, "skipped", None)]
    assert row(runtime, deleted) is None and row(runtime, waiting).status == "queued"
    assert runtime.generator.batches == []


def test_the_stored_wav_matches_the_row(runtime):
    job_id = submit(runtime)
    render(runtime, job_id)
    job = row(runtime, job_id)
    data = runtime.store.open(job.audio_key).read()
    claim_prefix = f"jobs/{job_id}/{job.audio_key.split('/')[2]}"
    assert job.audio_key == f"{claim_prefix}/audio.wav" and len(claim_prefix) == len(f"jobs/{job_id}/") + 32
    assert (job.audio_bytes, job.audio_sha256) == (len(data), hashlib.sha256(data).hexdigest())
    with wave.open(io.BytesIO(data)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 24_000)
        assert job.duration_ms == round(wav.getnframes() * 1000 / 24_000)
    assert 0 < job.duration_ms <= 400


def test_the_same_seed_renders_the_same_bytes(runtime):
    first, second = submit(runtime, seed=11), submit(runtime, seed=11)
    for job_id in (first, second):
        render(runtime, job_id)
    assert row(runtime, first).audio_sha256 == row(runtime, second).audio_sha256


def test_input_the_engine_rejects_fails_the_job_with_a_reason(runtime):
    job_id = submit(runtime, text="word " * 1000, max_audio_length_ms=90_000)
    assert render(runtime, job_id).status == "failed"
    job = row(runtime, job_id)
    assert job.status == "failed" and job.error_code == "invalid_input" and job.error_message
    assert lines(runtime, job_id)[0].status == "failed"


def test_a_storage_outage_gives_the_job_back_then_fails_after_the_last_attempt(make_runtime):
    runtime = make_runtime(MAX_ATTEMPTS="2", S3_BUCKET="no-such-bucket")
    job_id = submit(runtime)
    retrying = render(runtime, job_id)
    assert (retrying.disposition, retrying.wake_in_s) == ("released", 5)
    assert row(runtime, job_id).status == "queued"
    set_not_before(runtime, [job_id], 0)  # its backoff ends
    assert render(runtime, job_id).status == "failed"
    job = row(runtime, job_id)
    assert (job.status, job.error_code, job.attempts) == ("failed", "storage_unavailable", 2)


def test_an_upload_the_store_refuses_fails_that_job_after_its_attempts_and_the_worker_goes_on(make_runtime, s3_endpoint):
    with run_refusing_s3(s3_endpoint) as s3:
        runtime = make_runtime(MAX_ATTEMPTS="2", S3_ENDPOINT_URL=s3.url)
        job_id = submit(runtime)
        with s3.refusing("PUT"):  # a key no longer allowed to write
            assert (render(runtime, job_id).disposition, row(runtime, job_id).status) == ("released", "queued")
            set_not_before(runtime, [job_id], 0)  # its backoff ends
            assert render(runtime, job_id).status == "failed"
        job = row(runtime, job_id)
        assert (job.status, job.error_code, job.attempts) == ("failed", "storage_unavailable", 2)
        assert job.error_message == "the object store could not be reached or refused the request"
        assert render(runtime, submit(runtime)).status == "succeeded"  # the next job, once writes are allowed


def test_queued_texts_share_one_gpu_batch(runtime):
    job_ids = [submit(runtime, text=f"Line number {i}.", seed=i) for i in range(3)]
    assert render(runtime, job_ids[0]).status == "succeeded"
    assert [len(batch) for batch in runtime.generator.batches] == [3]
    assert all(row(runtime, job_id).status == "succeeded" for job_id in job_ids)
    # Their own messages arrive later and find nothing left to do.
    assert render(runtime, job_ids[1]).disposition == "skipped"
    assert len(runtime.generator.batches) == 1


def test_a_batch_never_exceeds_the_model_batch_size(runtime):
    size = runtime.generator.max_batch_size
    job_ids = [submit(runtime, seed=i) for i in range(size + 1)]
    render(runtime, job_ids[0])
    assert [len(batch) for batch in runtime.generator.batches] == [size]
    # A message whose own job is taken still renders what is queued.
    render(runtime, job_ids[0])
    assert all(row(runtime, job_id).status == "succeeded" for job_id in job_ids)


def test_a_silent_line_is_retried_with_calmer_sampling_and_the_attempts_recorded(make_runtime):
    runtime = make_runtime(silence=lambda request: request.temperature == 0.9)  # the first attempt only
    job_id = submit(runtime, temperature=0.9, topk=50)
    assert render(runtime, job_id).status == "succeeded"
    first, second = (batch[0] for batch in runtime.generator.batches)
    assert (first.temperature, first.topk) == (0.9, 50)
    assert second.temperature < first.temperature and second.topk < first.topk and second.seed != first.seed
    assert lines(runtime, job_id)[0].attempts == 2


def test_a_line_silent_on_every_attempt_fails_with_a_reason(make_runtime):
    runtime = make_runtime(silence=lambda request: True)
    job_id = submit(runtime)
    assert render(runtime, job_id).status == "failed"
    job = row(runtime, job_id)
    assert (job.error_code, lines(runtime, job_id)[0].attempts) == ("no_audio", 3)


def test_a_job_in_another_format_is_stored_in_it_and_its_row_describes_the_file(runtime):
    import soundfile

    job_id = submit(runtime, format="mp3")
    assert render(runtime, job_id).status == "succeeded"
    job = row(runtime, job_id)
    data = runtime.store.open(job.audio_key).read()
    assert job.audio_key.startswith(f"jobs/{job_id}/") and job.audio_key.endswith("/audio.mp3")
    assert data[:2] == b"\xff\xf3"  # MPEG-2 Layer III
    assert (job.audio_bytes, job.audio_sha256) == (len(data), hashlib.sha256(data).hexdigest())
    info = soundfile.info(io.BytesIO(data))
    assert (info.samplerate, info.channels) == (24_000, 1)
    assert job.duration_ms == round(info.frames * 1000 / 24_000) > 0
    head = s3_client(runtime.settings.s3_endpoint_url).head_object(Bucket=runtime.settings.s3_bucket, Key=job.audio_key)
    assert head["ContentType"] == "audio/mpeg"
