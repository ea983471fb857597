"""A real headless browser (Debian's chromium, driven by Playwright) on the live service: once on
the local store (SQLite, filesystem broker, local folder) and once on the S3 stack."""
from __future__ import annotations

import shutil

import pytest

from provision import create_key, init
from support import Stack, make_settings, run_worker, serve_api

BROWSER_ARGS = [
    "--no-sandbox",  # root in CI containers
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Variables a developer's shell may set that would move the local stack off its embedded default.
SERVICE_VARIABLES = ("DATABASE_URL", "BROKER_URL", "S3_BUCKET", "S3_ENDPOINT_URL", "S3_PUBLIC_ENDPOINT_URL")


@pytest.fixture(scope="session")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("browser tests need Playwright for Python: pip install -r requirements-dev.txt")
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        pytest.skip("browser tests need a chromium binary on PATH: apt-get install chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=BROWSER_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def local_stack(tmp_path_factory, tiny_model_dir):
    """The embedded default with a worker: what `make demo` runs, where the API signs file URLs."""
    data_dir = tmp_path_factory.mktemp("ui-local")
    environ = {
        **{name: "" for name in SERVICE_VARIABLES},
        "CSM_DATA_DIR": str(data_dir),
        "CSM_MODEL": str(tiny_model_dir),
        "CSM_DEVICE": "cpu",
    }
    settings = make_settings(**environ)
    init(settings)
    with serve_api(settings) as base, run_worker(environ, data_dir / "worker.log"):
        yield Stack(base=base, key=create_key(settings, "ui"), environ=environ)


@pytest.fixture(params=["local", "s3"])
def live(request) -> Stack:
    return request.getfixturevalue("local_stack" if request.param == "local" else "stack")
