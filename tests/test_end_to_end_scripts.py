"""Conversations, CSV batches and voices end to end on the real stack (see the `stack` fixture),
and a worker killed mid-script that another worker resumes."""
import csv
import io
import os
import signal
import time
import wave
import zipfile

import pytest
import requests
import soundfile

from support import make_settings, run_worker, serve_api, service_environ, wait_until_done

SCRIPT = [
    {"speaker": 0, "text": "Welcome back to the show.", "pause_ms": 300},
    {"speaker": 1, "text": "Thanks, glad to be here.", "pause_ms": 500},
    {"speaker": 2, "text": "Let us get started then."},
]


def samples_of(data: bytes) -> int:
    with wave.open(io.BytesIO(data)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 24_000)
        return wav.getnframes()


def test_a_three_speaker_script_end_to_end(stack):
    client = stack.client
    submitted = client.post(f"{stack.base}/v1/jobs", json={"script": SCRIPT, "max_audio_length_ms": 480})
    assert submitted.status_code == 202
    job = wait_until_done(client, stack.base + submitted.headers["Location"])
    assert job["status"] == "succeeded", job
    assert (job["type"], job["lines_done"], job["lines_total"]) == ("script", 3, 3)

    master = client.get(stack.local(job["result"]["audio_url"]), timeout=30).content
    manifest = client.get(stack.local(job["result"]["manifest_url"]), timeout=30).json()
    assert samples_of(master) * 1000 / 24_000 == pytest.approx(manifest["duration_ms"], abs=1)
    assert manifest["duration_ms"] == job["result"]["duration_ms"]
    lines = manifest["lines"]
    for entry, url in zip(lines, job["result"]["line_audio_urls"]):
        line_samples = samples_of(client.get(stack.local(url), timeout=30).content)
        assert entry["end_ms"] - entry["start_ms"] == pytest.approx(line_samples * 1000 / 24_000, abs=1)
    pauses = [line.get("pause_ms", 0) for line in SCRIPT]
    assert [b["start_ms"] - a["end_ms"] for a, b in zip(lines, lines[1:])] == pytest.approx(pauses[:-1], abs=1)
    assert lines[-1]["end_ms"] == pytest.approx(manifest["duration_ms"], abs=1)


BATCH_CSV = (
    "text,speaker,script,id,max_audio_length_ms,format\n"
    "First independent line.,0,,intro,320,mp3\n"
    "Opening of the scene.,0,scene,scene-1,320,flac\n"
    '"A line, with a comma.",1,scene,,,\n'
    "Second independent line.,1,,,320,\n"
)


def test_a_csv_batch_with_a_script_group_end_to_end(stack):
    client = stack.client
    created = client.post(
        f"{stack.base}/v1/batches", data=BATCH_CSV.encode(), headers={"Content-Type": "text/csv"}, timeout=30
    )
    assert created.status_code == 202, created.text
    batch = wait_until_done(client, stack.base + created.headers["Location"])
    assert batch["status"] == "succeeded", batch
    assert (batch["jobs_done"], batch["jobs_total"], batch["counts"]) == (3, 3, {"succeeded": 3})

    manifest = client.get(stack.local(batch["manifest_url"]), timeout=30).json()
    assert [(r["line"], r["output_name"], r["script_line"], r["status"]) for r in manifest["rows"]] == [
        (2, "intro.mp3", None, "succeeded"),
        (3, "scene-1.flac", 0, "succeeded"),
        (4, "scene-1.flac", 1, "succeeded"),
        (5, "row-00005.wav", None, "succeeded"),
    ]

    archive = client.get(stack.local(batch["archive_url"]), timeout=60)
    assert archive.status_code == 200 and archive.headers["Content-Type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(archive.content)) as zipped:
        assert sorted(zipped.namelist()) == [
            "intro.mp3", "manifest.csv", "row-00005.wav", "scene-1.flac", "scene-1/line-000.wav", "scene-1/line-001.wav",
        ]
        formats = {}
        for name in zipped.namelist():
            if name != "manifest.csv":
                info = soundfile.info(io.BytesIO(zipped.read(name)))
                assert (info.samplerate, info.channels) == (24_000, 1) and info.frames > 0
                formats[name] = info.format
        rows = list(csv.DictReader(io.StringIO(zipped.read("manifest.csv").decode())))
    assert formats["intro.mp3"] == "MP3" and formats["scene-1.flac"] == "FLAC" and formats["row-00005.wav"] == "WAV"
    assert [row["output_name"] for row in rows] == ["intro.mp3", "scene-1.flac", "scene-1.flac", "row-00005.wav"]


def test_a_voice_is_uploaded_and_used(stack):
    client = stack.client
    recording = io.BytesIO()
    with wave.open(recording, "wb") as out:
        out.setnchannels(1), out.setsampwidth(2), out.setframerate(16_000)
        out.writeframes(b"\x20\x00\xe0\xff" * 8_000)  # 1 s at 16 kHz
    uploaded = client.post(
        f"{stack.base}/v1/voices",
        data={"name": "host", "transcript": "This is the host speaking."},
        files={"audio": ("host.wav", recording.getvalue(), "audio/wav")},
        timeout=30,
    )
    assert uploaded.status_code == 201, uploaded.text
    submitted = client.post(
        f"{stack.base}/v1/jobs", json={"text": "Hello in my own voice.", "voice": "host", "max_audio_length_ms": 320}
    )
    job = wait_until_done(client, stack.base + submitted.headers["Location"])
    assert job["status"] == "succeeded", job
    unknown = client.post(f"{stack.base}/v1/jobs", json={"text": "hi", "voice": "nobody"})
    assert unknown.status_code == 422 and unknown.json()["error"]["field"] == "voice"


def test_a_worker_killed_mid_script_is_resumed_without_rerendering(tmp_path, tiny_model_dir, postgres_database, s3_endpoint, s3_bucket):
    environ = service_environ(
        tmp_path, postgres_database(), s3_endpoint, s3_bucket, tiny_model_dir,
        SWEEP_INTERVAL_S="1", REQUEUE_AFTER_S="60", LEASE_S="3",
    )
    settings = make_settings(**environ)
    from provision import create_key

    script = [{"speaker": i % 2, "text": f"This is line number {i} of a long talk."} for i in range(8)]
    with serve_api(settings) as base:
        client = requests.Session()
        client.headers["Authorization"] = f"Bearer {create_key(settings, 'resume')}"
        with run_worker(environ, tmp_path / "first.log", "--beat") as first:
            job_url = base + client.post(
                f"{base}/v1/jobs", json={"script": script, "max_audio_length_ms": 2_000}
            ).headers["Location"]
            deadline = time.monotonic() + 120
            while client.get(job_url).json()["lines_done"] < 2:
                assert time.monotonic() < deadline, "the first worker never finished two lines"
                time.sleep(0.1)
            os.killpg(first.pid, signal.SIGKILL)
            first.wait()
        job = client.get(job_url).json()
        done_before = job["lines_done"]
        assert job["status"] == "running" and 2 <= done_before < len(script)
        stored_before = {i: client.get(f"{job_url}/lines/{i}/audio").content for i in range(done_before)}

        with run_worker(environ, tmp_path / "second.log", "--beat"):
            job = wait_until_done(client, job_url)
        assert job["status"] == "succeeded" and job["attempts"] == 2, job
        second_log = (tmp_path / "second.log").read_text()
        rendered_again = [i for i in range(len(script)) if f"line={i} " in second_log]
        assert rendered_again == list(range(done_before, len(script)))
        for index, audio in stored_before.items():
            assert client.get(f"{job_url}/lines/{index}/audio").content == audio
        manifest = client.get(job["result"]["manifest_url"]).json()
        assert [line["status"] for line in manifest["lines"]] == ["succeeded"] * len(script)
