"""Object stores: the S3 store against a real S3 HTTP server, and the local folder store."""
from urllib.parse import urlsplit

import pytest
import requests

from refusing_s3 import run_refusing_s3
from support import S3_CREDENTIALS, make_settings, s3_environment
from storage import StorageUnavailable, make_store
from storage.local import LocalStore
from storage.s3 import S3Store


def test_s3_round_trip_and_presigned_url_for_the_public_endpoint(s3_endpoint, s3_bucket):
    store = make_store(make_settings(**s3_environment(s3_endpoint, s3_bucket)))
    assert isinstance(store, S3Store)
    store.check()
    store.put("jobs/a/audio.wav", b"RIFF-data", "audio/wav")
    assert store.open("jobs/a/audio.wav").read() == b"RIFF-data"

    url = store.download_url("jobs/a/audio.wav", "a.wav")
    assert urlsplit(url).hostname == "localhost"  # signed for the host clients use
    response = requests.get(url, timeout=10)
    assert response.status_code == 200 and response.content == b"RIFF-data"
    with pytest.raises(FileNotFoundError):
        store.open("jobs/missing/audio.wav")


def test_s3_ensure_ready_creates_the_bucket(s3_endpoint):
    store = make_store(make_settings(**s3_environment(s3_endpoint, "created-by-init")))
    with pytest.raises(StorageUnavailable):
        store.check()
    store.ensure_ready()
    store.ensure_ready()  # idempotent
    store.check()


def test_s3_refusals_are_unavailable_naming_the_code_and_an_absent_object_is_not_found(s3_endpoint, s3_bucket):
    """A 403 (a key whose policy changed, a rotated secret) is the store's set-up failing, as its
    5xx are: StorageUnavailable (503 at the API), not an error of the request."""
    with run_refusing_s3(s3_endpoint) as proxy:
        store = make_store(make_settings(**s3_environment(proxy.url, s3_bucket)))
        store.put("jobs/a/audio.wav", b"RIFF", "audio/wav")
        with proxy.refusing("PUT", "POST", "DELETE"):
            with pytest.raises(StorageUnavailable, match="refused: AccessDenied") as refused:
                store.put("jobs/b/audio.wav", b"RIFF", "audio/wav")
            with pytest.raises(StorageUnavailable, match="refused: AccessDenied"):
                store.delete_many(["jobs/a/audio.wav"])
            with pytest.raises(StorageUnavailable, match="refused: AccessDenied"):
                store.delete("jobs/a/audio.wav")
        with proxy.refusing("GET", "HEAD", code="InvalidAccessKeyId"):
            with pytest.raises(StorageUnavailable, match="refused: InvalidAccessKeyId"):
                store.open("jobs/a/audio.wav")
            with pytest.raises(StorageUnavailable, match="refused: 403"):  # a HEAD's answer has no body
                store.check()
        assert proxy.refusals == 5
        assert not any(secret in str(refused.value) for secret in S3_CREDENTIALS.values())

        assert store.open("jobs/a/audio.wav").read() == b"RIFF"  # nothing was deleted
        with pytest.raises(FileNotFoundError):
            store.open("jobs/missing/audio.wav")
        missing_bucket = make_store(make_settings(**s3_environment(proxy.url, "no-such-bucket")))
        with pytest.raises(StorageUnavailable, match="NoSuchBucket"):  # the set-up, not the object
            missing_bucket.open("jobs/a/audio.wav")


def test_local_store_round_trip_and_containment(tmp_path):
    store = LocalStore(tmp_path / "objects")
    store.ensure_ready()
    store.put("jobs/a/audio.wav", b"one", "audio/wav")
    store.put("jobs/a/audio.wav", b"two", "audio/wav")
    assert store.open("jobs/a/audio.wav").read() == b"two"
    assert store.download_url("jobs/a/audio.wav", "a.wav") is None
    assert [p.name for p in (tmp_path / "objects" / "jobs" / "a").iterdir()] == ["audio.wav"]
    with pytest.raises(ValueError):
        store.put("../escape.wav", b"x", "audio/wav")


@pytest.fixture(params=["s3", "local"])
def store(request, tmp_path):
    if request.param == "local":
        return LocalStore(tmp_path / "objects")
    return make_store(make_settings(**s3_environment(request.getfixturevalue("s3_endpoint"),
                                                     request.getfixturevalue("s3_bucket"))))


def test_delete_removes_an_object_and_ignores_an_absent_one(store):
    store.ensure_ready()
    store.put("voices/v/prompt.wav", b"RIFF", "audio/wav")
    store.delete("voices/v/prompt.wav")
    store.delete("voices/v/prompt.wav")
    with pytest.raises(FileNotFoundError):
        store.open("voices/v/prompt.wav")


def test_delete_many_removes_every_object_and_ignores_absent_ones(store, monkeypatch):
    import storage.s3

    monkeypatch.setattr(storage.s3, "DELETE_PER_REQUEST", 2)  # S3 takes 1000 a call: make several calls
    store.ensure_ready()
    keys = [f"jobs/j/lines/{index:03d}.wav" for index in range(5)]
    for key in keys:
        store.put(key, b"RIFF", "audio/wav")
    store.put("jobs/other/audio.wav", b"RIFF", "audio/wav")
    store.delete_many([*keys, "jobs/absent/audio.wav"])
    store.delete_many([])
    for key in keys:
        with pytest.raises(FileNotFoundError):
            store.open(key)
    assert store.open("jobs/other/audio.wav").read() == b"RIFF"


def test_a_local_store_that_cannot_write_or_delete_is_unavailable(tmp_path):
    """An OS error other than a missing file (here a folder where the object should be; as
    root, permissions would not stop the test) is the store failing, as S3's 5xx are: 503."""
    store = LocalStore(tmp_path / "objects")
    store.ensure_ready()
    store.put("jobs/a/audio.wav", b"RIFF", "audio/wav")
    (tmp_path / "objects" / "jobs" / "b" / "audio.wav").mkdir(parents=True)
    with pytest.raises(StorageUnavailable):
        store.delete_many(["jobs/a/audio.wav", "jobs/b/audio.wav"])
    with pytest.raises(StorageUnavailable):
        store.put("jobs/b/audio.wav", b"RIFF", "audio/wav")
    with pytest.raises(FileNotFoundError):  # an absent object stays what it is
        store.open("jobs/c/audio.wav")
