"""Scripts: lines in order with the conversation as context, stitched master and manifest,
failed lines, cancellation between lines, and resumption after a crash."""
import io
import json
import wave

import psycopg
import pytest
from sqlalchemy import event, update
from support import wav_bytes

from jobs import repository
from jobs.keys import create_key
from jobs.models import Job, utcnow
from worker.context import fit_context
from worker_helpers import add_voice_object, lines, render, row, submit

SCRIPT = [
    {"speaker": 0, "text": "Did the batch finish?", "pause_ms": 200},
    {"speaker": 1, "text": "It did, every line of it.", "pause_ms": 400},
    {"speaker": 2, "text": "Then send the links."},
]


def script_job(runtime, script=SCRIPT, **fields):
    return submit(runtime, {"script": script, "max_audio_length_ms": 400, "seed": 9} | fields)


def wav_info(data: bytes) -> tuple[int, int]:
    with wave.open(io.BytesIO(data)) as wav:
        return wav.getframerate(), wav.getnframes()


def read(runtime, key) -> bytes:
    with runtime.store.open(key) as stream:
        return stream.read()


def test_a_three_speaker_script_renders_lines_master_and_manifest(runtime):
    job_id = script_job(runtime)
    assert render(runtime, job_id).status == "succeeded"
    job = row(runtime, job_id)
    prefix = job.audio_key.removesuffix("/audio.wav")  # the claim's
    assert (job.lines_done, job.lines_total, job.manifest_key) == (3, 3, f"{prefix}/manifest.json")

    # Each line saw the lines before it, with their audio, as context.
    contexts = [[(s.speaker, s.text) for s in batch[0].context] for batch in runtime.generator.batches]
    assert contexts == [[], [(0, SCRIPT[0]["text"])], [(0, SCRIPT[0]["text"]), (1, SCRIPT[1]["text"])]]

    manifest = json.loads(read(runtime, job.manifest_key))
    rate, master_samples = wav_info(read(runtime, job.audio_key))
    assert rate == 24_000 and manifest["duration_ms"] == job.duration_ms == round(master_samples * 1000 / rate)
    entries = manifest["lines"]
    assert [e["key"] for e in entries] == [f"{prefix}/lines/{i:03d}.wav" for i in range(3)]
    assert entries[0]["start_ms"] == 0
    for entry, following, line in zip(entries, entries[1:], SCRIPT):
        assert following["start_ms"] == pytest.approx(entry["end_ms"] + line["pause_ms"], abs=1)
    assert entries[-1]["end_ms"] == pytest.approx(job.duration_ms, abs=1)
    for entry in entries:
        _rate, samples = wav_info(read(runtime, entry["key"]))
        assert entry["end_ms"] - entry["start_ms"] == pytest.approx(samples * 1000 / 24_000, abs=1)
        assert (entry["status"], entry["attempts"], entry["voice"]) == ("succeeded", 1, None)
    assert [e["seed"] for e in entries] == [9, 10, 11]


def test_a_line_that_never_speaks_is_named_and_the_job_partially_succeeds(make_runtime):
    runtime = make_runtime(silence=lambda request: request.text == SCRIPT[1]["text"])
    job_id = script_job(runtime)
    assert render(runtime, job_id).status == "partially_succeeded"
    job = row(runtime, job_id)
    assert job.error_code == "lines_failed" and "lines 1 " in job.error_message
    entries = json.loads(read(runtime, job.manifest_key))["lines"]
    assert [(e["status"], e["attempts"]) for e in entries] == [("succeeded", 1), ("failed", 3), ("succeeded", 1)]
    assert entries[1]["start_ms"] is None and entries[1]["key"] is None
    assert entries[2]["start_ms"] == pytest.approx(entries[0]["end_ms"] + SCRIPT[0]["pause_ms"], abs=1)


@pytest.mark.parametrize(
    "during, status, rendered", [(0, "canceled", ["succeeded", "pending", "pending"]), (2, "succeeded", ["succeeded"] * 3)]
)
def test_cancel_stops_a_running_script_after_the_current_line(make_runtime, during, status, rendered):
    """...and a cancel during the last line comes too late: the script completes."""
    runtime = None

    def cancel_during_a_line(request):
        if request.text == SCRIPT[during]["text"]:
            with runtime.sessions.begin() as session:
                repository.cancel_job(session, session.get(Job, job_id))
        return False

    runtime = make_runtime(silence=cancel_during_a_line)
    job_id = script_job(runtime)
    assert render(runtime, job_id).status == status
    assert [line.status for line in lines(runtime, job_id)] == rendered
    job = row(runtime, job_id)
    assert len(runtime.generator.batches) == during + 1 and job.status == status
    assert (job.audio_key is not None, job.manifest_key is not None) == (status == "succeeded",) * 2


class WorkerDied(BaseException):
    """Stands for the process being killed: nothing after it runs, nothing is recorded."""


def test_a_crashed_script_resumes_from_its_first_unfinished_line(make_runtime):
    def die_on_third_line(request):
        if request.text == SCRIPT[2]["text"]:
            raise WorkerDied
        return False

    crashing = make_runtime(silence=die_on_third_line)
    job_id = script_job(crashing)
    with pytest.raises(WorkerDied):
        render(crashing, job_id)
    first_two = [(line.status, line.audio_sha256) for line in lines(crashing, job_id)[:2]]
    assert [status for status, _ in first_two] == ["succeeded", "succeeded"]
    with crashing.sessions.begin() as session:  # the dead worker's lease runs out
        session.execute(update(Job).where(Job.id == job_id).values(lease_expires_at=utcnow()))

    resumed = make_runtime()
    assert render(resumed, job_id).status == "succeeded"
    assert [[r.text for r in batch] for batch in resumed.generator.batches] == [[SCRIPT[2]["text"]]]
    assert resumed.generator.batches[0][0].context[1].text == SCRIPT[1]["text"]  # stored lines as context
    assert [(line.status, line.audio_sha256) for line in lines(resumed, job_id)[:2]] == first_two
    assert row(resumed, job_id).attempts == 2


def test_a_voice_prompt_is_the_speakers_first_context(runtime, tiny_model_dir):
    with runtime.sessions.begin() as session:
        owner = create_key(session, "voiced")[0].id
    add_voice_object(runtime, owner, "narrator", wav_bytes(1.0, rate=16_000))  # the worker resamples it to 24 kHz
    script = [{"speaker": 0, "text": "Once upon a time.", "voice": "narrator"}, {"speaker": 1, "text": "Go on."}]
    job_id = submit(runtime, {"script": script, "max_audio_length_ms": 320}, owner=owner)
    assert render(runtime, job_id).status == "succeeded"
    for batch in runtime.generator.batches:
        prompt = batch[0].context[0]
        assert (prompt.speaker, prompt.text, prompt.audio.shape[-1]) == (0, "I am narrator.", 24_000)


def test_context_drops_oldest_lines_then_other_speakers_voices():
    rows = len  # a segment's rows: here, its length
    voices = [(0, "v0" * 5), (1, "v1" * 5)]  # 10 rows each
    history = ["a" * 10, "b" * 10, "c" * 10]
    everything = fit_context(voices, history, speaker=1, budget=50, rows=rows)
    assert everything == ["v0" * 5, "v1" * 5, "a" * 10, "b" * 10, "c" * 10]
    assert fit_context(voices, history, speaker=1, budget=35, rows=rows) == ["v0" * 5, "v1" * 5, "c" * 10]
    assert fit_context(voices, history, speaker=1, budget=15, rows=rows) == ["v1" * 5]
    assert fit_context(voices, history, speaker=0, budget=15, rows=rows) == ["v0" * 5]
    assert fit_context(voices, history, speaker=0, budget=5, rows=rows) == []


def test_a_script_out_of_time_continues_in_a_new_task_without_spending_an_attempt(make_runtime):
    from celery.exceptions import SoftTimeLimitExceeded

    def time_runs_out_on_the_third_line(request):
        if request.text == SCRIPT[2]["text"]:
            raise SoftTimeLimitExceeded()
        return False

    runtime = make_runtime(silence=time_runs_out_on_the_third_line, MAX_ATTEMPTS="1")
    job_id = script_job(runtime)
    outcome = render(runtime, job_id)
    assert (outcome.disposition, outcome.wake_in_s) == ("released", 0)
    job = row(runtime, job_id)
    assert (job.status, job.attempts, job.lines_done) == ("queued", 0, 2)

    continued = make_runtime(MAX_ATTEMPTS="1")
    assert render(continued, job_id).status == "succeeded"
    assert [[r.text for r in batch] for batch in continued.generator.batches] == [[SCRIPT[2]["text"]]]


def test_a_line_longer_than_the_time_limit_fails_the_script_after_its_attempts(make_runtime):
    from celery.exceptions import SoftTimeLimitExceeded

    def never_enough_time(request):
        raise SoftTimeLimitExceeded()

    runtime = make_runtime(silence=never_enough_time, MAX_ATTEMPTS="1")
    job_id = script_job(runtime)
    assert render(runtime, job_id).status == "failed"
    assert row(runtime, job_id).error_code == "timeout"


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_passing_database_error_mid_script_gives_the_job_back_to_resume(make_runtime, database_url):
    server, name = database_url.replace("+psycopg", "").rsplit("/", 1)
    admin = psycopg.connect(f"{server}/test", autocommit=True)  # a database may not refuse its own session

    def outage_while_the_second_line_renders(request):
        if request.text == SCRIPT[1]["text"]:
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
        return False

    def back_after_the_first_failure(context):
        if not context.is_pre_ping:
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')

    runtime = make_runtime(silence=outage_while_the_second_line_renders)
    event.listen(runtime.sessions.kw["bind"], "handle_error", back_after_the_first_failure)
    job_id = script_job(runtime)
    try:
        outcome = render(runtime, job_id)
    finally:
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        admin.close()
    assert (outcome.disposition, outcome.wake_in_s) == ("released", 0)  # it had rendered a line
    job = row(runtime, job_id)
    assert (job.status, job.error_code, job.attempts, job.lines_done) == ("queued", "database_unavailable", 0, 1)

    resumed = make_runtime()
    assert render(resumed, job_id).status == "succeeded"
    assert [[r.text for r in batch] for batch in resumed.generator.batches] == [[SCRIPT[1]["text"]], [SCRIPT[2]["text"]]]


def test_a_scripts_master_takes_the_jobs_format_and_its_lines_stay_wav(runtime):
    import soundfile

    job_id = script_job(runtime, script=SCRIPT[:2], format="flac")
    assert render(runtime, job_id).status == "succeeded"
    job = row(runtime, job_id)
    assert job.audio_key.startswith(f"jobs/{job_id}/") and job.audio_key.endswith("/audio.flac")
    master = soundfile.info(io.BytesIO(read(runtime, job.audio_key)))
    assert (master.format, master.samplerate, master.channels) == ("FLAC", 24_000, 1)
    assert job.duration_ms == round(master.frames * 1000 / 24_000)
    for line in lines(runtime, job_id):
        assert line.audio_key.endswith(".wav") and wav_info(read(runtime, line.audio_key))[0] == 24_000
