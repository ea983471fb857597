"""`csm-batch`'s client commands as a user runs them (a subprocess), against the live stack:
the API over HTTP, a worker with the tiny model, PostgreSQL, Redis and an S3 server."""
import csv
import hashlib
import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import soundfile

from api.errors import ErrorCode
from client.commands import HINTS
from client.http import ApiClient, BadDownload
from client.outputs import download_batch
from provision import create_key
from support import ROOT, TIMEOUT_S, free_port, make_settings

GOOD_CSV = (
    "text,speaker,script,id,max_audio_length_ms,format\n"
    "First line.,0,,intro,320,mp3\n"
    "Scene opens.,0,scene,scene-1,320,\n"
    "Scene closes.,1,scene,,,\n"
    "Second line.,1,,,320,\n"
)
BAD_CSV = "text,speaker,topk\nfine,0,5\n,0,5\nok,-4,5\n"


def csm_batch(*args: str, env: dict, cwd=ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cli", *args], cwd=cwd, env={**os.environ, **env}, capture_output=True, text=True,
        timeout=TIMEOUT_S * 2,
    )


@pytest.fixture
def client_env(stack, request) -> dict:
    """The client's environment with a key of its own (a test may revoke it)."""
    key = create_key(make_settings(**stack.environ), request.node.name[:100])
    return {"CSM_API_URL": stack.base, "CSM_API_KEY": key}


def files_under(folder) -> dict[str, str]:
    return {
        path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in folder.rglob("*") if path.is_file()
    }


def test_a_good_csv_is_submitted_once_waited_for_and_downloaded_resumably(client_env, tmp_path):
    batch_csv = tmp_path / "episode.csv"
    batch_csv.write_text(GOOD_CSV)
    out = tmp_path / "out"

    assert "valid, 4 rows -> 3 jobs (1 scripts)" in csm_batch("submit", str(batch_csv), "--validate-only", env=client_env).stdout
    first = csm_batch("submit", str(batch_csv), "--wait", "--out", str(out), env=client_env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "submitted batch" in first.stdout and "3/3" in first.stderr  # the progress bar
    files = files_under(out)
    assert sorted(files) == [
        "intro.mp3", "manifest.csv", "row-00005.wav", "scene-1.wav", "scene-1/line-000.wav", "scene-1/line-001.wav",
    ]
    rows = list(csv.DictReader((out / "manifest.csv").open()))
    assert {row["output_name"] for row in rows} == {"intro.mp3", "scene-1.wav", "row-00005.wav"}
    for row in rows:  # every file is the one the manifest states
        name = row["output_name"] if row["script_line"] == "" else f"scene-1/line-{int(row['script_line']):03d}.wav"
        assert files[name] == row["sha256"]
    assert soundfile.info(out / "intro.mp3").format == "MP3"
    assert "5 downloaded, 0 already there" in first.stdout

    again = csm_batch("submit", str(batch_csv), "--out", str(out), env=client_env)
    assert again.returncode == 0, again.stdout + again.stderr
    batch_id = first.stdout.split("submitted batch ")[1].split(":")[0]
    assert f"already submitted as batch {batch_id}: replayed, nothing new was queued" in again.stdout
    assert "0 downloaded, 5 already there" in again.stdout

    (out / "intro.mp3").unlink()
    (out / "scene-1" / "line-001.wav").write_bytes(b"truncated")
    resumed = csm_batch("download", batch_id, "--out", str(out), env=client_env)
    assert resumed.returncode == 0, resumed.stderr
    assert "2 downloaded, 3 already there" in resumed.stdout
    assert files_under(out) == files

    status = csm_batch("status", batch_id, env=client_env)
    assert f"batch {batch_id} (episode.csv): succeeded, 3/3 jobs done (3 succeeded)" in status.stdout


def test_a_bad_csv_exits_non_zero_listing_each_problem_by_line_and_field(client_env, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text(BAD_CSV)
    for extra in ((), ("--validate-only",)):
        run = csm_batch("submit", str(bad), *extra, env=client_env)
        assert run.returncode == 1
        problems = run.stderr.splitlines()[1:]
        assert [line.split(": ")[0] for line in problems] == ["3:text", "4:speaker"], run.stderr


def test_a_refused_request_lists_its_fields(client_env, tmp_path):
    run = csm_batch("say", " ", "--speaker", "-1", env=client_env)
    assert run.returncode == 1
    assert run.stderr.splitlines()[0] == "csm-batch: 2 problem(s) in the request (HTTP 422, invalid_field)"
    assert [line.split(": ")[0] for line in run.stderr.splitlines()[1:]] == ["text", "speaker"]
    batch_csv = tmp_path / "good.csv"
    batch_csv.write_text(GOOD_CSV)
    run = csm_batch("submit", str(batch_csv), "--webhook-url", "ftp://example.com/hook", env=client_env)
    assert run.returncode == 1 and run.stderr.splitlines()[1].startswith("webhook_url: "), run.stderr
    # The refusal kept nothing under the file's key: fixed options go through.
    fixed = csm_batch("submit", str(batch_csv), env=client_env)
    assert fixed.returncode == 0 and "submitted batch" in fixed.stdout, fixed.stderr


def test_say_script_and_status(client_env, tmp_path):
    said = csm_batch("say", "Hello there.", "--speaker", "1", "-o", str(tmp_path / "hello.flac"), env=client_env)
    assert said.returncode == 0, said.stderr
    assert soundfile.info(tmp_path / "hello.flac").format == "FLAC"
    job_id = said.stderr.split("job ")[1].split(" queued")[0]
    status = csm_batch("status", job_id, env=client_env)
    assert f"job {job_id} (text, flac): succeeded, 1/1 lines" in status.stdout

    script = tmp_path / "talk.json"
    script.write_text('{"script": [{"speaker": 0, "text": "Hi."}, {"speaker": 1, "text": "Hello."}], '
                      '"max_audio_length_ms": 320}')
    run = csm_batch("script", str(script), "-o", str(tmp_path / "talk"), env=client_env)
    assert run.returncode == 0, run.stderr
    assert sorted(files_under(tmp_path / "talk")) == [
        "talk.wav", "talk/line-000.wav", "talk/line-001.wav", "talk/manifest.json",
    ]


def test_a_revoked_key_is_refused_at_once(client_env, stack):
    name = csm_batch("keys", "list", env=stack.environ).stdout.splitlines()[-1].split("\t")[1]
    assert csm_batch("status", "00000000-0000-0000-0000-000000000000", env=client_env).returncode == 1  # not found
    revoked = csm_batch("keys", "revoke", name, env=stack.environ)
    assert revoked.returncode == 0 and "revoked key" in revoked.stdout, revoked.stderr
    assert "\trevoked " in csm_batch("keys", "list", env=stack.environ).stdout
    refused = csm_batch("status", "00000000-0000-0000-0000-000000000000", env=client_env)
    assert refused.returncode == 1
    assert "the API refused the key in CSM_API_KEY: this API key was revoked" in refused.stderr


def test_an_unreachable_api_is_named():
    url = f"http://127.0.0.1:{free_port()}"
    run = csm_batch("status", "00000000-0000-0000-0000-000000000000", env={"CSM_API_URL": url, "CSM_API_KEY": "k"})
    assert run.returncode == 1
    assert f"could not reach {url}/v1/jobs/00000000-0000-0000-0000-000000000000" in run.stderr


def test_the_client_code_loads_no_service_package():
    """A client machine needs requests and tqdm, not the service's database, broker or engine."""
    code = (
        "import sys, client.commands; "
        "print([m for m in ('flask', 'celery', 'sqlalchemy', 'boto3', 'torch') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True, text=True).stdout
    assert out.strip() == "[]"


def test_the_hints_name_codes_the_api_answers():
    assert set(HINTS) <= set(ErrorCode)


def test_a_redirect_to_another_host_gets_no_bearer_key(tmp_path):
    """Presigned S3 URLs carry their own signature; the API key must never reach that host."""
    seen = {}

    class Recorder(BaseHTTPRequestHandler):
        def do_GET(self):
            seen[self.headers["Host"].split(":")[0], self.path] = self.headers.get("Authorization")
            if self.path == "/v1/jobs/1/audio":
                self.send_response(302)
                self.send_header("Location", f"http://localhost:{self.server.server_port}/bucket/audio.wav?sig=1")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Length", "4")
            self.end_headers()
            self.wfile.write(b"RIFF")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        api = ApiClient(f"http://127.0.0.1:{server.server_port}", "secret-key", 10)
        digest = api.download("/v1/jobs/1/audio", tmp_path / "audio.wav")
    finally:
        server.shutdown()
    assert (tmp_path / "audio.wav").read_bytes() == b"RIFF" and digest == hashlib.sha256(b"RIFF").hexdigest()
    assert seen == {("127.0.0.1", "/v1/jobs/1/audio"): "Bearer secret-key", ("localhost", "/bucket/audio.wav?sig=1"): None}


class _Hostile(BaseHTTPRequestHandler):
    """A server that answers a file's route with 4 bytes, any other with `routes[path]` as JSON
    (`routes["*"]` for a path it does not list)."""

    routes: dict = {}

    def do_GET(self):
        path = self.path.split("?")[0]
        body = b"RIFF" if path.endswith("/audio") else json.dumps(self.routes.get(path, self.routes.get("*"))).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET

    def log_message(self, *args):
        pass


@pytest.fixture
def hostile():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hostile)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("output_name", ["../../escaped.wav", "/{tmp}/escaped.wav", "sub/../../escaped.wav"])
def test_a_manifest_name_cannot_leave_the_out_folder(hostile, tmp_path, output_name):
    """File names come from the server: one that climbs out of --out, or is absolute, is refused."""
    row = {"job_id": "j", "output_name": output_name.format(tmp=tmp_path), "script_line": None,
           "sha256": hashlib.sha256(b"RIFF").hexdigest()}
    _Hostile.routes = {"/v1/batches/b/manifest": {"rows": [row]}}
    out = tmp_path / "a" / "out"
    with pytest.raises(BadDownload, match="outside"):
        download_batch(ApiClient(f"http://127.0.0.1:{hostile.server_port}", "k", 10), "b", out)
    assert not list(tmp_path.rglob("escaped.wav*"))


def test_a_download_with_the_wrong_sha256_leaves_the_old_file_untouched(hostile, tmp_path):
    row = {"job_id": "j", "output_name": "intro.wav", "script_line": None, "sha256": "0" * 64}
    _Hostile.routes = {"/v1/batches/b/manifest": {"rows": [row]}}
    out = tmp_path / "out"
    out.mkdir()
    (out / "intro.wav").write_bytes(b"the old take")
    with pytest.raises(BadDownload, match="sha256"):
        download_batch(ApiClient(f"http://127.0.0.1:{hostile.server_port}", "k", 10), "b", out)
    assert (out / "intro.wav").read_bytes() == b"the old take"
    assert sorted(path.name for path in out.iterdir()) == ["intro.wav"]  # no .part left behind


def test_say_refuses_a_job_id_that_would_name_a_file_elsewhere(hostile, tmp_path):
    """Without -o the audio is named by the job's id, which the server gives."""
    job = {"id": f"../../{tmp_path.name}-escaped", "type": "text", "format": "wav", "status": "succeeded",
           "lines_done": 1, "lines_total": 1, "result": {"duration_ms": 80, "sha256": "0"}}
    _Hostile.routes = {"*": job}
    work = tmp_path / "work"
    work.mkdir()
    env = {"CSM_API_URL": f"http://127.0.0.1:{hostile.server_port}", "CSM_API_KEY": "k", "PYTHONPATH": str(ROOT)}
    run = csm_batch("say", "Hi.", env=env, cwd=work)
    assert run.returncode == 1 and "outside" in run.stderr, run.stderr
    assert not list(tmp_path.parent.glob(f"{tmp_path.name}-escaped*"))
