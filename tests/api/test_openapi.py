"""GET /openapi.json and /docs: the document is valid OpenAPI 3.1, covers every route the app
serves, and says what the API does (its keys, its errors, its answers' shapes)."""
import re

import pytest
from openapi_spec_validator import validate

from api_helpers import auth, submit
from support import schema_errors

SAMPLE_PATH_VALUES = {"uuid": "00000000-0000-4000-8000-000000000000", "int": "0", "path": "a/b", "default": "x"}


@pytest.fixture
def document(client):
    response = client.get("/openapi.json")  # no key: the contract is public
    assert response.status_code == 200 and response.mimetype == "application/json"
    return response.get_json()


def documented_path(rule: str) -> str:
    return re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule)


def sample_path(rule: str) -> str:
    return re.sub(r"<(?:(\w+):)?\w+>", lambda m: SAMPLE_PATH_VALUES[m[1] or "default"], rule)


def served_routes(app) -> dict[str, set[str]]:
    """Each rule the app serves (but its static files) -> its methods."""
    served: dict[str, set[str]] = {}
    for rule in app.url_map.iter_rules():
        if rule.endpoint != "static":
            served.setdefault(rule.rule, set()).update(rule.methods - {"HEAD", "OPTIONS"})
    return served


def assert_documented(document, method: str, path: str, response) -> None:
    """The answer's status is documented for the operation, and its JSON body fits the schema."""
    answers = document["paths"][path][method.lower()]["responses"]
    assert str(response.status_code) in answers, (method, path, response.status_code, sorted(answers))
    content = answers[str(response.status_code)].get("content", {})
    if response.is_json:
        errors = schema_errors(document, content["application/json"]["schema"], response.get_json())
        assert not errors, (method, path, response.get_json(), errors)
    else:
        assert response.mimetype in content or not response.data, (method, path, response.mimetype)


def test_the_document_is_valid_openapi_3_1(document):
    validate(document)
    assert document["openapi"] == "3.1.0"
    assert document["components"]["securitySchemes"]["bearer"] == {
        "type": "http", "scheme": "bearer", "description": "An API key from `csm-batch keys create NAME`.",
    }


def test_every_route_the_app_serves_is_documented_with_its_methods(app, document):
    served = served_routes(app)
    assert len(served) > 30
    for rule, methods in served.items():
        operations = document["paths"].get(documented_path(rule))
        assert operations is not None, f"{rule} is not in the document"
        assert {method.upper() for method in operations} == methods, rule


def test_the_document_says_which_routes_need_a_key(app, client, document):
    """A route documented with the bearer scheme answers 401 without a key; any other does not."""
    for rule, methods in served_routes(app).items():
        for method in methods:
            operation = document["paths"][documented_path(rule)][method.lower()]
            response = client.open(sample_path(rule), method=method)
            if "security" in operation:
                assert operation["security"] == [{"bearer": []}]
                assert response.status_code == 401, (method, rule)
                assert_documented(document, method, documented_path(rule), response)
            else:
                assert response.status_code != 401, (method, rule)


def test_answers_fit_their_documented_schemas(client, key, document):
    submitted = submit(client, key, {"text": "Hello there.", "metadata": {"order": 42}})
    assert submitted.status_code == 202
    assert_documented(document, "POST", "/v1/jobs", submitted)
    job_id = submitted.get_json()["id"]
    for path, sample in [
        ("/v1/jobs/{job_id}", f"/v1/jobs/{job_id}"),
        ("/v1/jobs", "/v1/jobs?limit=1"),
        ("/v1/jobs/{job_id}/audio", f"/v1/jobs/{job_id}/audio"),  # 409: not rendered
        ("/v1/jobs/{job_id}", "/v1/jobs/00000000-0000-4000-8000-000000000000"),  # 404
        ("/v1/jobs/{job_id}/deliveries", f"/v1/jobs/{job_id}/deliveries"),
        ("/v1/batches", "/v1/batches"),
        ("/v1/voices", "/v1/voices"),
        ("/v1/webhook-secret", "/v1/webhook-secret"),
        ("/v1/models", "/v1/models"),
        ("/v1/models/{model}", "/v1/models/nope"),  # 404 in OpenAI's shape
        ("/healthz", "/healthz"),
    ]:
        assert_documented(document, "GET", path, client.get(sample, headers=auth(key)))
    canceled = client.post(f"/v1/jobs/{job_id}/cancel", headers=auth(key))
    assert canceled.status_code == 200
    assert_documented(document, "POST", "/v1/jobs/{job_id}/cancel", canceled)
    invalid = submit(client, key, {"text": "", "speaker": -1})
    assert invalid.status_code == 422
    assert_documented(document, "POST", "/v1/jobs", invalid)


def test_a_method_a_route_does_not_have_answers_405_with_allow(client, key):
    response = client.patch("/v1/jobs", headers=auth(key))
    assert response.status_code == 405
    assert set(response.headers["Allow"].split(", ")) >= {"GET", "POST"}
    assert response.get_json()["error"]["code"] == "method_not_allowed"


def test_the_docs_page_needs_no_key_and_loads_only_its_own_files(client):
    page = client.get("/docs")
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.get_data(as_text=True))
    assert {asset for asset in assets if not asset.startswith("data:")} == {
        "/ui/static/swagger-ui/swagger-ui.css", "/ui/static/swagger-ui/swagger-ui-bundle.js", "/ui/static/docs.js",
    }
    for asset in assets:
        if not asset.startswith("data:"):
            assert client.get(asset).status_code == 200, asset
