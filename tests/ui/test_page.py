"""The /ui page in a real headless browser against the live API and a worker (tiny model)."""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import pytest

from jobs import retention
from jobs.db import make_session_factory, service_engine
from jobs.models import Job
from storage import make_store
from support import TIMEOUT_S, make_settings, stored, wait_until_done, wav_bytes

WAIT_MS = TIMEOUT_S * 1000
GOOD_CSV = (
    "text,speaker,max_audio_length_ms\n"
    "First row.,0,320\n"
    "Second row.,1,320\n"
    "Third row.,0,320\n"
)
BAD_CSV = (
    "text,speaker,topk\n"
    "fine,0,5\n"
    ",0,5\n"  # line 3: no text
    "ok,-4,5\n"  # line 4: bad speaker
    "ok,0,0\n"  # line 5: bad top-k
)


@dataclass
class Console:
    errors: list[str] = field(default_factory=list)
    expected: list[str] = field(default_factory=list)  # parts of errors a test provokes on purpose

    def unexpected(self) -> list[str]:
        return [error for error in self.errors if not any(part in error for part in self.expected)]


@pytest.fixture
def console() -> Console:
    return Console()


@pytest.fixture
def page(browser, live, console):
    """The page with the key entered; fails the test on any console error or uncaught exception."""
    context = browser.new_context()
    page = context.new_page()
    page.on("console", lambda message: console.errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: console.errors.append(str(error)))
    page.goto(f"{live.base}/ui")
    page.fill("#api-key", live.key)
    page.click("#key-form button[type=submit]")
    page.wait_for_selector("#key-status:has-text('key set')")
    yield page
    context.close()
    assert console.unexpected() == []


def audio_duration(page, selector: str) -> float:
    page.wait_for_function("selector => document.querySelector(selector).duration > 0", arg=selector, timeout=WAIT_MS)
    return page.eval_on_selector(selector, "audio => audio.duration")


def test_a_text_ends_as_playable_audio(page):
    page.fill("#text-input", "Hello from the browser.")
    page.fill("#text-max-ms", "640")
    page.click("#text-form button[type=submit]")
    assert 0 < audio_duration(page, "#text-audio") <= 0.7
    assert "Done" in page.inner_text("#text-status")
    # The recent list shows the job with its play button.
    page.wait_for_selector("#recent-jobs tr:first-child button:has-text('Play')")


def test_a_script_plays_each_line_then_the_master(page):
    page.uncheck("#autoplay-lines")
    page.fill("#script-max-ms", "320")
    page.click("#script-form button[type=submit]")
    master = audio_duration(page, "#script-master-audio")
    lines = page.eval_on_selector_all("#script-lines audio", "elements => elements.map(audio => audio.duration)")
    assert len(lines) == 2 and all(duration > 0 for duration in lines)
    assert master >= sum(lines)  # the lines and the pause between them


def test_a_refused_request_shows_every_bad_field(page, console):
    console.expected.append("status of 422")  # Chromium logs the refusal as a failed load
    page.fill("#script-rows tr:nth-child(1) .line-text", " ")  # blank once stripped
    page.fill("#script-rows tr:nth-child(2) .line-text", " ")
    page.click("#script-form button[type=submit]")
    page.wait_for_selector("#script-status.error")
    assert page.inner_text("#script-status").splitlines() == [
        "script[0].text: must not be empty", "script[1].text: must not be empty",
    ]


def test_a_bad_csv_shows_every_problem_by_line(page, console):
    console.expected.append("status of 422")  # Chromium logs the dry run's answer as a failed load
    page.set_input_files("#batch-file", files=[{"name": "bad.csv", "mimeType": "text/csv", "buffer": BAD_CSV.encode()}])
    page.click("#batch-check")
    page.wait_for_selector("#batch-problems:not([hidden]) tbody tr")
    rows = page.eval_on_selector_all(
        "#batch-problems tbody tr", "rows => rows.map(row => [...row.cells].map(cell => cell.textContent))"
    )
    assert [(line, field) for line, field, _ in rows] == [("3", "text"), ("4", "speaker"), ("5", "topk")]
    assert "3 problem(s)" in page.inner_text("#batch-status")
    assert page.is_hidden("#batch-progress-box")  # nothing was started


def test_a_good_csv_runs_to_100_percent(page):
    page.set_input_files("#batch-file", files=[{"name": "good.csv", "mimeType": "text/csv", "buffer": GOOD_CSV.encode()}])
    page.click("#batch-form button[type=submit]")
    page.wait_for_function("() => document.querySelector('#batch-progress').value === 100", timeout=WAIT_MS)
    assert "100% (3 of 3 jobs)" in page.inner_text("#batch-percent")
    assert "succeeded: 3" in page.inner_text("#batch-counts")
    with page.expect_download() as download:
        page.click("#batch-manifest")
    assert download.value.suggested_filename.endswith("-manifest.csv")
    page.wait_for_selector("#recent-batches tr:first-child td:has-text('good.csv')")


def test_a_voice_is_uploaded_then_offered_and_deleted(page):
    name = f"narrator-{uuid.uuid4().hex[:6]}"
    page.fill("#voice-name", name)
    page.fill("#voice-transcript", "Hello, I am the narrator.")
    page.set_input_files("#voice-audio", files=[{"name": "v.wav", "mimeType": "audio/wav", "buffer": wav_bytes(1.0)}])
    page.click("#voice-form button[type=submit]")
    page.wait_for_selector(f"#voice-list li:has-text('{name}')")
    options = page.eval_on_selector_all("#text-voice option", "options => options.map(option => option.value)")
    assert name in options
    page.click(f"#voice-list li:has-text('{name}') button:has-text('Delete')")
    page.wait_for_selector(f"#voice-list li:has-text('{name}')", state="detached")


def output_keys(live, job_id: str) -> list[str]:
    """The object keys of the job's outputs (audio, manifest, lines), as its row names them."""
    engine = service_engine(make_settings(**live.environ))
    with make_session_factory(engine)() as session:
        keys = retention.output_keys(session, Job.id == uuid.UUID(job_id))
    engine.dispose()
    return keys


def job_row(job_id: str) -> str:
    return f"#recent-jobs tr:has(td.id:text-is('{job_id[:8]}'))"


def finished_job(live, text: str) -> dict:
    """A text job, run to its end through the API."""
    job = live.client.post(f"{live.base}/v1/jobs", json={"text": text, "max_audio_length_ms": 160}, timeout=30).json()
    return wait_until_done(live.client, f"{live.base}/v1/jobs/{job['id']}")


def finished_batch(live, filename: str, csv: str = GOOD_CSV) -> dict:
    """A CSV batch, run to its end through the API."""
    batch = live.client.post(f"{live.base}/v1/batches", files={"file": (filename, csv)}, timeout=30).json()
    return wait_until_done(live.client, f"{live.base}/v1/batches/{batch['id']}")


def batch_row(filename: str) -> str:
    return f"#recent-batches tr:has-text('{filename}')"


def delete_from_page(page, row: str) -> None:
    """Deletes the row's job or batch with its Delete button, confirmed, and waits until the row is gone."""
    page.once("dialog", lambda dialog: dialog.accept())
    page.click(f"{row} button:has-text('Delete')")
    page.wait_for_selector(row, state="detached", timeout=WAIT_MS)


def test_a_finished_job_is_deleted_from_the_page_once_confirmed(page, live):
    page.fill("#text-input", "Soon gone.")
    page.fill("#text-max-ms", "320")
    page.click("#text-form button[type=submit]")
    audio_duration(page, "#text-audio")
    job_id = live.client.get(f"{live.base}/v1/jobs?limit=1").json()["jobs"][0]["id"]
    keys = output_keys(live, job_id)
    store = make_store(make_settings(**live.environ))
    assert [key.rsplit("/", 1)[-1] for key in stored(store, keys)] == ["audio.wav"]  # a text's one output

    page.once("dialog", lambda dialog: dialog.dismiss())
    page.click(f"{job_row(job_id)} button:has-text('Delete')")
    assert live.client.get(f"{live.base}/v1/jobs/{job_id}").status_code == 200  # not confirmed: kept
    assert page.is_visible(job_row(job_id))

    delete_from_page(page, job_row(job_id))
    assert f"Deleted job {job_id[:8]}" in page.inner_text("#recent-status")
    assert live.client.get(f"{live.base}/v1/jobs/{job_id}").status_code == 404
    assert stored(store, keys) == []


def test_a_batchs_job_shows_the_refusal_and_stays_until_its_batch_is_deleted(page, live, console):
    console.expected.append("status of 409")  # Chromium logs the refusal as a failed load
    filename = f"doomed-{uuid.uuid4().hex[:6]}.csv"
    batch = finished_batch(live, filename, "text,max_audio_length_ms\nOnly row.,160\n")
    job = live.client.get(f"{live.base}/v1/jobs?limit=1").json()["jobs"][0]
    assert job["batch_id"] == batch["id"]
    page.click("#refresh-recent")

    page.once("dialog", lambda dialog: dialog.accept())
    page.click(f"{job_row(job['id'])} button:has-text('Delete')")
    page.wait_for_selector("#recent-status.error")
    assert f"the job belongs to batch {batch['id']}; delete the batch" in page.inner_text("#recent-status")
    assert page.is_visible(job_row(job["id"]))
    assert live.client.get(f"{live.base}/v1/jobs/{job['id']}").status_code == 200

    delete_from_page(page, batch_row(filename))
    page.wait_for_selector(job_row(job["id"]), state="detached", timeout=WAIT_MS)  # its jobs went with it
    assert "Deleted batch" in page.inner_text("#recent-status")
    assert live.client.get(f"{live.base}/v1/batches/{batch['id']}").status_code == 404
    assert live.client.get(f"{live.base}/v1/jobs/{job['id']}").status_code == 404


def test_deleting_the_followed_batch_hides_its_progress_box(page, live):
    followed, other = (f"{name}-{uuid.uuid4().hex[:6]}.csv" for name in ("followed", "other"))
    page.set_input_files("#batch-file", files=[{"name": followed, "mimeType": "text/csv", "buffer": GOOD_CSV.encode()}])
    page.click("#batch-form button[type=submit]")
    page.wait_for_function("() => document.querySelector('#batch-progress').value === 100", timeout=WAIT_MS)
    finished_batch(live, other)
    page.click("#refresh-recent")

    delete_from_page(page, batch_row(other))
    assert page.is_visible("#batch-progress-box")  # it shows another batch

    delete_from_page(page, batch_row(followed))
    assert page.is_hidden("#batch-progress-box")  # its numbers and downloads are gone


def test_deleting_the_played_job_empties_the_player(page, live):
    played, other = finished_job(live, "Played."), finished_job(live, "Not played.")
    page.click("#refresh-recent")
    page.click(f"{job_row(played['id'])} button:has-text('Play')")
    audio_duration(page, "#player")

    delete_from_page(page, job_row(other["id"]))
    assert page.is_visible("#player") and page.get_attribute("#player", "src")

    delete_from_page(page, job_row(played["id"]))
    assert page.is_hidden("#player")
    assert page.get_attribute("#player", "src") is None  # no URL left that answers 404


def test_deleting_a_batch_empties_the_player_of_its_job(page, live):
    filename = f"played-{uuid.uuid4().hex[:6]}.csv"
    batch = finished_batch(live, filename)
    job_id = live.client.get(f"{live.base}/v1/batches/{batch['id']}/manifest", timeout=30).json()["rows"][0]["job_id"]
    page.click("#refresh-recent")
    page.click(f"{job_row(job_id)} button:has-text('Play')")
    audio_duration(page, "#player")

    delete_from_page(page, batch_row(filename))
    assert page.is_hidden("#player")
    assert page.get_attribute("#player", "src") is None  # the batch's jobs went with it


def test_a_job_deleted_elsewhere_first_is_deleted_from_the_page_too(page, live, console):
    console.expected.append("status of 404")  # Chromium logs the API's answer as a failed load
    job = finished_job(live, "Deleted twice.")
    page.click("#refresh-recent")
    page.click(f"{job_row(job['id'])} button:has-text('Play')")
    audio_duration(page, "#player")
    assert live.client.delete(f"{live.base}/v1/jobs/{job['id']}", timeout=30).status_code == 204  # another tab

    delete_from_page(page, job_row(job["id"]))
    assert f"job {job['id'][:8]} was already deleted" in page.inner_text("#recent-status")
    assert page.get_attribute("#recent-status", "class") == "status ok"
    assert page.is_hidden("#player")
