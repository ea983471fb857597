"""GET /openapi.json: the OpenAPI 3.1 document, built from the route table (api.routes), the
request models each view validates with (`view.inputs`, api.inputs) and the models of the
replies (api.schemas). pydantic's JSON Schema 2020-12 is what OpenAPI 3.1 takes as it is.

Besides what each route declares (api.spec), the document says what the code decides: which
routes need the bearer key (api.auth) and answer 401, and 503 while the database or object
store is down; path parameters from the rule's converters (or the view's path model) and 404
for a resource that is not there; the body, query and form models, their 422 and the body's
400, 413 and 415; the Idempotency-Key header of idempotent views; and OpenAI's error shape on
the routes marked with api.errors.openai_errors.
"""
from __future__ import annotations

import importlib.metadata
import inspect
import re
from typing import Any, Iterable

from pydantic import TypeAdapter

from api import schemas
from api.auth import needs_key
from api.idempotency import HEADER as IDEMPOTENCY_HEADER
from api.idempotency import MAX_KEY_CHARS, REPLAYED_HEADER
from api.spec import Reply, Route
from jobs.outbox import BATCH_COMPLETED, JOB_EVENTS

REF_TEMPLATE = "#/components/schemas/{model}"
SECURITY_SCHEME = "bearer"
JSON = "application/json"
FORM = "multipart/form-data"

DESCRIPTION = """\
Batch and synchronous speech synthesis with Sesame's CSM-1B.

Every `/v1` route (and `/generate_audio`) needs `Authorization: Bearer <key>` (create keys with
`csm-batch keys create NAME`); a key sees only its own jobs, batches and voices. Errors take one
shape, `{"error": {"code", "message", "field"?, "problems"?}}`, except on the OpenAI-compatible
routes, which answer OpenAI's; either way `code` is one of `ErrorCode`, each with its status. A server the request needs that is down or not answering gives
503 with Retry-After.
"""

TAGS = [
    {"name": "jobs", "description": "Texts and scripts (conversations) rendered in the background."},
    {"name": "batches", "description": "CSV uploads of many texts and scripts."},
    {"name": "voices", "description": "Voice prompts: a recording and its transcript."},
    {"name": "webhooks", "description": "Deliveries of job and batch events, and their signing secret."},
    {"name": "synchronous", "description": "The original deployment's contract: render and wait."},
    {"name": "openai", "description": "OpenAI-compatible text to speech (OpenAI's error shape)."},
    {"name": "service", "description": "Probes, metrics, this document and the web pages."},
]

HEADERS = {
    "Location": ("Where to poll the job or batch (202, 409, 504), or the presigned URL (302).", {"type": "string"}),
    "Retry-After": ("Seconds to wait before trying again.", {"type": "integer", "minimum": 0}),
    "Content-Disposition": ("attachment; filename=\"...\": the file's name.", {"type": "string"}),
    "x-should-retry": (
        "false: a retry would only repeat this (OpenAI's SDKs obey it).", {"type": "string", "enum": ["false"]}
    ),
    "X-Job-Id": ("The synchronous job's id (GET /v1/jobs/{job_id}).", {"type": "string", "format": "uuid"}),
    REPLAYED_HEADER: (
        "true: the first response to this Idempotency-Key, replayed.", {"type": "string", "enum": ["true"]}
    ),
}

CONVERTERS = {  # Flask's URL converters as JSON Schema
    "uuid": {"type": "string", "format": "uuid"},
    "int": {"type": "integer", "minimum": 0},
    "path": {"type": "string", "minLength": 1},
    "default": {"type": "string", "minLength": 1, "pattern": "^[^/]+$"},
}
_RULE_PART = re.compile(r"<(?:(?P<converter>\w+)(?:\([^)]*\))?:)?(?P<name>\w+)>")

# What the service POSTs to a webhook URL (OpenAPI 3.1 `webhooks`), signed per Standard Webhooks.
WEBHOOKS = {name: schemas.JobEvent for name in JOB_EVENTS.values()} | {BATCH_COMPLETED: schemas.BatchEvent}
WEBHOOK_HEADERS = {
    "webhook-id": "The event's id: the same on every attempt (deduplicate on it).",
    "webhook-timestamp": "Unix seconds of this attempt.",
    "webhook-signature": "`v1,<base64 HMAC-SHA256>` of `{id}.{timestamp}.{body}` keyed with the secret "
                         "(GET /v1/webhook-secret); two, space-separated, during a rotation.",
}

DEFAULT_DESCRIPTIONS = {
    400: "The body is not valid JSON.",
    401: "No API key, or an unknown one.",
    404: "No such resource (for this key).",
    413: "The body is over MAX_BODY_BYTES.",
    415: "The body is not of a media type the route reads.",
    422: "A bad field: `field` names the first, `problems` lists every one.",
    503: "The database or object store is unavailable: retry after Retry-After.",
}


def build_document(routes: Iterable[Route]) -> dict:
    routes = list(routes)
    operations = {route.endpoint for route in routes}
    schema_of = _Schemas(routes)
    paths: dict[str, dict] = {}
    for route in routes:
        paths.setdefault(openapi_path(route.rule), {})[route.method.lower()] = _operation(route, schema_of, operations)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "csm-batch",
            "version": importlib.metadata.version("csm-batch"),
            "description": DESCRIPTION,
        },
        "tags": TAGS,
        "paths": paths,
        "webhooks": {name: _webhook(name, model, schema_of) for name, model in WEBHOOKS.items()},
        "components": {
            "schemas": schema_of.components,
            "securitySchemes": {
                SECURITY_SCHEME: {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API key from `csm-batch keys create NAME`.",
                }
            },
        },
    }


def openapi_path(rule: str) -> str:
    """/v1/jobs/<uuid:job_id> -> /v1/jobs/{job_id}"""
    return _RULE_PART.sub(lambda match: "{" + match["name"] + "}", rule)


def inputs_of(route: Route):
    """What the view validates (api.inputs.Inputs), or None for a view that reads no input."""
    return getattr(route.view, "inputs", None)


class _Schemas:
    """Every model the routes name, as JSON Schemas under #/components/schemas."""

    def __init__(self, routes: list[Route]):
        types = [(schemas.Error, "serialization"), (schemas.OpenAIError, "serialization")]
        types += [(model, "serialization") for model in WEBHOOKS.values()]
        for route in routes:
            types += [(reply.model, "serialization") for reply in route.replies if reply.model is not None]
            inputs = inputs_of(route)
            if inputs is not None:
                types += [(model, "validation") for model in (inputs.body, inputs.query, inputs.form, inputs.path)
                          if model is not None]
        self._keys: dict[tuple[int, str], int] = {}
        adapters = []
        for kind, mode in types:
            if (id(kind), mode) not in self._keys:
                self._keys[(id(kind), mode)] = len(adapters)
                adapters.append((len(adapters), mode, TypeAdapter(kind)))
        self._schemas, top = TypeAdapter.json_schemas(adapters, ref_template=REF_TEMPLATE)
        self.components = dict(sorted(top.get("$defs", {}).items()))

    def ref(self, kind: Any, mode: str = "serialization") -> dict:
        """A reference to the type's schema (or the schema itself, for a type that is no model)."""
        return self._schemas[(self._keys[(id(kind), mode)], mode)]

    def resolved(self, kind: Any) -> dict:
        """A request model's own schema: its properties and which are required."""
        schema = self.ref(kind, "validation")
        if "$ref" in schema:
            return self.components[schema["$ref"].rsplit("/", 1)[1]]
        return schema


def _operation(route: Route, schema_of: _Schemas, operations: set[str]) -> dict:
    inputs = inputs_of(route)
    openai = getattr(route.view, "openai_errors", False)
    idempotent = getattr(route.view, "idempotent", False)
    operation: dict[str, Any] = {"operationId": route.endpoint, "summary": route.summary, "tags": [route.tag]}
    if route.view.__doc__:
        operation["description"] = inspect.cleandoc(route.view.__doc__)
    parameters = _path_parameters(route, schema_of)
    if inputs is not None and inputs.query is not None:
        parameters += _parameters("query", schema_of.resolved(inputs.query))
    if idempotent:
        parameters.append({
            "name": IDEMPOTENCY_HEADER, "in": "header", "required": False,
            "description": "Per API key for 24 h: the same key and request replay the first 2xx response; "
            "a refused request (4xx, 5xx) keeps nothing.",
            "schema": {"type": "string", "minLength": 1, "maxLength": MAX_KEY_CHARS, "pattern": "^[ -~]+$"},
        })
    if parameters:
        operation["parameters"] = parameters
    body = _request_body(route, schema_of)
    if body is not None:
        operation["requestBody"] = body
    secured = needs_key(openapi_path(route.rule))
    if secured:
        operation["security"] = [{SECURITY_SCHEME: []}]
    replies = _replies(route, secured, idempotent, openai)
    error_schema = schema_of.ref(schemas.OpenAIError if openai else schemas.Error)
    operation["responses"] = {
        str(reply.status): _response(reply, error_schema, schema_of, operations, idempotent)
        for reply in sorted(replies.values(), key=lambda reply: reply.status)
    }
    return operation


def _webhook(name: str, model: Any, schema_of: _Schemas) -> dict:
    return {
        "post": {
            "summary": f"{name}, sent to the job's or batch's webhook_url",
            "tags": ["webhooks"],
            "parameters": [
                {"name": header, "in": "header", "required": True, "description": description, "schema": {"type": "string"}}
                for header, description in WEBHOOK_HEADERS.items()
            ],
            "requestBody": {"required": True, "content": {JSON: {"schema": schema_of.ref(model)}}},
            "responses": {
                "2XX": {"description": "Delivered. Any other answer is retried (5 s to 10 h apart, eight attempts)."},
                "410": {"description": "The URL is disabled for the key: no more events are sent to it."},
            },
        }
    }


def _path_parameters(route: Route, schema_of: _Schemas) -> list[dict]:
    """From the rule's converters, or the view's path model where it checks more."""
    inputs = inputs_of(route)
    modelled = schema_of.resolved(inputs.path).get("properties", {}) if inputs and inputs.path else {}
    parameters = []
    for match in _RULE_PART.finditer(route.rule):
        name = match["name"]
        schema = _without_null(modelled[name]) if name in modelled else dict(CONVERTERS[match["converter"] or "default"])
        parameters.append({"name": name, "in": "path", "required": True, "schema": schema})
    return parameters


def _parameters(location: str, schema: dict) -> list[dict]:
    required = set(schema.get("required", ()))
    parameters = []
    for name, field in schema.get("properties", {}).items():
        field = _without_null(field)
        description = field.pop("description", None)
        parameter = {"name": name, "in": location, "required": name in required, "schema": field}
        if description:
            parameter["description"] = description
        parameters.append(parameter)
    return parameters


def _without_null(schema: dict) -> dict:
    """A parameter's schema less its null choice: a query string or path has no null (absent is None)."""
    schema = dict(schema)
    choices = schema.get("anyOf")
    if choices and {"type": "null"} in choices:
        rest = [choice for choice in choices if choice != {"type": "null"}]
        del schema["anyOf"]
        schema |= rest[0] if len(rest) == 1 else {"anyOf": rest}
    if schema.get("default", ...) is None:
        del schema["default"]
    return schema


def _request_body(route: Route, schema_of: _Schemas) -> dict | None:
    inputs = inputs_of(route)
    if inputs is None:
        return None
    content: dict[str, dict] = {}
    if inputs.body is not None:
        content[JSON] = {"schema": schema_of.ref(inputs.body, "validation")}
    if inputs.raw_body is not None:
        content[inputs.raw_body] = {"schema": {"type": "string"}}
    if inputs.form is not None:
        content[FORM] = {"schema": schema_of.ref(inputs.form, "validation")}
    for media_type, example in route.examples.items():
        content[media_type]["example"] = example
    return {"required": True, "content": content} if content else None


def _replies(route: Route, secured: bool, idempotent: bool, openai: bool) -> dict[int, Reply]:
    """The route's own replies, over those derived from the code."""
    inputs = inputs_of(route)
    derived: list[int] = []
    if secured:
        derived += [401, 503]
    if "<" in route.rule:
        derived.append(404)
    if inputs is not None:
        if any(model is not None for model in (inputs.body, inputs.query, inputs.form, inputs.path)):
            derived.append(422)
        if inputs.body is not None:
            derived.append(400)
        if inputs.body is not None or inputs.form is not None or inputs.raw_body is not None:
            derived += [413, 415]
    replies: dict[int, Reply] = {}
    for status in derived:
        description = DEFAULT_DESCRIPTIONS[status]
        if openai and status == 422:  # OpenAI's BadRequestError
            status, description = 400, "A bad field (`param` names it)."
        headers = ("Retry-After",) if status == 503 else ()
        if status in replies:
            description = f"{replies[status].description} Or: {description}"
        replies[status] = Reply(status, description, headers=headers)
    if idempotent:
        for status, description in (
            (400, "A malformed Idempotency-Key."),
            (409, "A request with this Idempotency-Key is still being processed."),
            (422, "This Idempotency-Key was used for another request."),
        ):
            earlier = replies.get(status)
            replies[status] = Reply(status, f"{earlier.description} Or: {description}" if earlier else description)
    for reply in route.replies:
        earlier = replies.get(reply.status)
        if earlier is not None and reply.model is None and not reply.media_types and reply.status >= 400:
            # An error the route describes itself keeps the derived headers (Retry-After).
            reply = Reply(reply.status, reply.description, headers=tuple(dict.fromkeys(earlier.headers + reply.headers)))
        replies[reply.status] = reply
    return replies


def _response(reply: Reply, error_schema: dict, schema_of: _Schemas, operations: set[str], idempotent: bool) -> dict:
    response: dict[str, Any] = {"description": reply.description}
    content = {}
    if reply.model is not None:
        content[JSON] = {"schema": schema_of.ref(reply.model)}
    elif reply.status >= 400:
        content[JSON] = {"schema": error_schema}
    for media_type in reply.media_types:
        content[media_type] = {"schema": {"type": "string", "format": "binary"}}
    if content:
        response["content"] = content
    headers = list(reply.headers)
    if idempotent and reply.status < 300:
        headers.append(REPLAYED_HEADER)
    if headers:
        response["headers"] = {name: {"description": HEADERS[name][0], "schema": HEADERS[name][1]} for name in headers}
    if reply.links:
        response["links"] = {}
        for link in reply.links:
            if link.view.__name__ not in operations:
                raise ValueError(f"link {link.name!r} names no operation of the route table")
            response["links"][link.name] = {"operationId": link.view.__name__, "parameters": link.parameters}
    return response
