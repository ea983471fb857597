"""/docs in a real headless browser: Swagger UI renders the API's own document from the
package's files, and "Try it out" sends the key given to "Authorize" as a bearer header."""
from __future__ import annotations

import pytest

from provision import create_key, init
from support import make_settings, serve_api
from ui.conftest import SERVICE_VARIABLES

WAIT_MS = 30_000


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    settings = make_settings(**{name: "" for name in SERVICE_VARIABLES}, CSM_DATA_DIR=str(tmp_path_factory.mktemp("docs")))
    init(settings)
    with serve_api(settings) as base:
        yield base, create_key(settings, "docs")


def test_swagger_ui_renders_the_document_and_tries_a_request_with_the_key(browser, api):
    base, key = api
    context = browser.new_context()
    page = context.new_page()
    errors, requests = [], []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("request", lambda request: requests.append(request.url))
    page.goto(f"{base}/docs")
    page.wait_for_selector("#operations-jobs-list_jobs", timeout=WAIT_MS)
    operations = page.eval_on_selector_all(".opblock", "blocks => blocks.length")
    documented = page.evaluate("() => fetch('/openapi.json').then(r => r.json())")
    assert operations == sum(len(methods) for methods in documented["paths"].values()) + len(documented["webhooks"])

    page.click("button.authorize")
    page.fill(".auth-container input", key)
    page.click(".auth-btn-wrapper button.authorize")
    page.click(".auth-btn-wrapper button.btn-done")
    page.click("#operations-jobs-list_jobs .opblock-summary-control")
    page.click("#operations-jobs-list_jobs button.try-out__btn")
    page.click("#operations-jobs-list_jobs button.execute")
    answer = "#operations-jobs-list_jobs .live-responses-table tr.response"
    status = page.wait_for_selector(f"{answer} .response-col_status", timeout=WAIT_MS)
    assert status.inner_text().strip().startswith("200")  # 401 without the key
    assert '"jobs": []' in page.inner_text("#operations-jobs-list_jobs .live-responses-table")

    context.close()
    assert errors == []
    assert all(url.startswith(base) or url.startswith("data:") for url in requests), requests
