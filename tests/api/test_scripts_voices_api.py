"""Scripts and voices at the REST boundary: validation by field, storage of voice prompts."""
import io

import pytest

from api_helpers import auth, published_messages, stored_jobs, submit
from support import corrupt_flac, wav_bytes


def upload_voice(client, key, name="narrator", seconds=2.0, transcript="Hello, I am the narrator.", audio=None):
    audio = wav_bytes(seconds) if audio is None else audio
    return client.post(
        "/v1/voices",
        data={"name": name, "transcript": transcript, "audio": (io.BytesIO(audio), "v.wav")},
        headers=auth(key),
        content_type="multipart/form-data",
    )


SCRIPT = [
    {"speaker": 0, "text": "Did the batch finish?"},
    {"speaker": 1, "text": "It did.", "pause_ms": 500},
]


def test_a_script_job_has_its_lines(client, key):
    response = submit(client, key, {"script": SCRIPT, "seed": 4})
    assert response.status_code == 202
    job = response.get_json()
    assert (job["type"], job["lines_total"], job["lines_done"]) == ("script", 2, 0)


@pytest.mark.parametrize(
    "body, kind", [({"text": "hi", "script": None}, "text"), ({"script": SCRIPT, "text": None}, "script")]
)
def test_a_null_text_or_script_is_absent(client, key, body, kind):
    response = submit(client, key, body)
    assert response.status_code == 202, response.get_json()
    assert response.get_json()["type"] == kind


@pytest.mark.parametrize(
    "body, field",
    [
        ({"script": []}, "script"),
        ({"script": None}, "text"),
        ({"script": "hello"}, "script"),
        ({"script": [{"speaker": 0}]}, "script[0].text"),
        ({"script": [{"text": "no speaker"}]}, "script[0].speaker"),
        ({"script": [SCRIPT[0], {"speaker": 1, "text": "hi", "pause_ms": -1}]}, "script[1].pause_ms"),
        ({"script": [SCRIPT[0], {"speaker": 1, "text": "hi", "mood": "happy"}]}, "script[1].mood"),
        ({"script": [SCRIPT[0], "just text"]}, "script[1]"),
        ({"script": SCRIPT, "text": "both"}, "script"),
        ({"script": SCRIPT, "speaker": 1}, "speaker"),
        ({"script": [{"speaker": 0, "text": "hi", "voice": "nobody"}]}, "script[0].voice"),
        ({"text": "hi", "voice": "nobody"}, "voice"),
        ({"text": "hi", "voice": "../etc"}, "voice"),
    ],
)
def test_bad_scripts_are_rejected_by_field(client, key, app, settings, body, field):
    response = submit(client, key, body)
    assert response.status_code == 422
    assert response.get_json()["error"]["field"] == field
    assert stored_jobs(app) == 0 and published_messages(settings) == 0


def test_voices_are_uploaded_listed_used_and_deleted(client, key, settings):
    created = upload_voice(client, key)
    assert created.status_code == 201
    voice = created.get_json()
    assert (voice["name"], voice["duration_ms"], voice["transcript"]) == ("narrator", 2000, "Hello, I am the narrator.")
    stored = list((settings.local_store_dir / "voices").rglob("prompt.wav"))
    assert len(stored) == 1 and stored[0].read_bytes() == wav_bytes(2.0)

    assert client.get("/v1/voices", headers=auth(key)).get_json()["voices"] == [voice]
    assert submit(client, key, {"text": "hi", "voice": "narrator"}).status_code == 202
    assert upload_voice(client, key).status_code == 409  # names are unique per key

    assert client.delete("/v1/voices/narrator", headers=auth(key)).status_code == 204
    assert client.get("/v1/voices/narrator", headers=auth(key)).status_code == 404
    assert not stored[0].exists()  # the recording goes with it
    assert submit(client, key, {"text": "hi", "voice": "narrator"}).status_code == 422


@pytest.mark.parametrize(
    "data, field",
    [
        ({"name": "bad name!", "transcript": "t"}, "name"),
        ({"name": "ok", "transcript": "  "}, "transcript"),
        ({"name": "ok", "transcript": "t"}, "audio"),
    ],
)
def test_bad_voice_uploads_name_the_field(client, key, data, field):
    data = data | ({"audio": (io.BytesIO(wav_bytes(2.0)), "v.wav")} if field != "audio" else {})
    response = client.post("/v1/voices", data=data, headers=auth(key), content_type="multipart/form-data")
    assert response.status_code == 422 and response.get_json()["error"]["field"] == field


@pytest.mark.parametrize("seconds", [0.2, 31.0])
def test_voice_length_limits(client, key, seconds):
    response = upload_voice(client, key, seconds=seconds)
    assert response.status_code == 422 and response.get_json()["error"]["field"] == "audio"


@pytest.mark.parametrize(
    "audio, reason",
    [
        (corrupt_flac(), "must decode completely"),  # a valid header is not enough
        (wav_bytes(1.0, rate=1_000_003), "sample rate must be 8000 to 192000 Hz (got 1000003 Hz)"),
        (wav_bytes(1.0, rate=4_000), "sample rate must be 8000 to 192000 Hz (got 4000 Hz)"),
        (wav_bytes(1.0, channels=3), "mono or stereo"),
    ],
    ids=["garbage-frames", "1000003-hz", "4000-hz", "3-channels"],
)
def test_a_voice_is_decoded_whole_at_upload(client, key, settings, audio, reason):
    response = upload_voice(client, key, audio=audio)
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["field"] == "audio" and reason in error["message"]
    assert not list(settings.local_store_dir.rglob("prompt.*"))  # nothing stored


def test_a_voice_must_be_a_recording(client, key):
    response = client.post(
        "/v1/voices",
        data={"name": "x", "transcript": "t", "audio": (io.BytesIO(b"not audio at all"), "v.wav")},
        headers=auth(key), content_type="multipart/form-data",
    )
    assert response.status_code == 422 and response.get_json()["error"]["field"] == "audio"
