"""The /ui page in a real headless browser against the live API and a worker (tiny model)."""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import pytest

from support import TIMEOUT_S, wav_bytes

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
