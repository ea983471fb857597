"""Every view that reads input declares it with `takes`; the declaration is also the contract.

    @takes(body=JobBody)                          # a JSON body (application/json)
    @takes(query=JobListQuery)                    # the query string
    @takes(form=VoiceUpload)                      # multipart/form-data fields and files
    @takes(path=VoicePath)                        # path parameters the route's converters leave as text
    @takes(query=BatchOptions, form=BatchUpload, raw_body="text/csv", max_body_bytes=...)

The models live in jobs.validation and jobs.inputs. The wrapper checks every declared source
and answers one 422 listing every problem of all of them (400 in OpenAI's shape on routes marked
`openai_errors`). The view receives the validated models as keyword arguments `body`, `query` and
`form`; validated path parameters replace the route's own. A `form` is None when the request is
not multipart/form-data (and `raw_body` then says which other media type the view reads itself).

Finding a route's request model (for the OpenAPI document): `view.inputs` is the `Inputs` of
the view in api.routes.ROUTES (None for a view that reads no input). Each model is a pydantic
type: `pydantic.TypeAdapter(model).json_schema()` gives its schema.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from flask import g, request
from pydantic_core import from_json

from api.errors import ApiError, ErrorCode
from api.services import db, services
from jobs import outbox
from jobs.fields import Context, InvalidRequest, Problem, Refused, validate
from jobs.inputs import Upload
from jobs.voices import find_voice
from webhooks import UnsafeUrl, resolver_within, vet_url

FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")


@dataclass(frozen=True)
class Inputs:
    body: Any = None  # the JSON body's model
    query: Any = None
    form: Any = None
    path: Any = None
    raw_body: str | None = None  # a media type the view reads itself instead of a form
    max_body_bytes: int | None = None  # the route's own body limit, above the app's MAX_BODY_BYTES


def takes(**declared):
    inputs = Inputs(**declared)

    def wrap(view):
        @functools.wraps(view)
        def wrapper(**kwargs):
            if inputs.max_body_bytes is not None:
                request.max_content_length = inputs.max_body_bytes
            return view(**kwargs, **read_inputs(inputs, kwargs))

        wrapper.inputs = inputs
        return wrapper

    return wrap


def read_inputs(inputs: Inputs, path_args: dict) -> dict:
    """The validated sources as the view's keyword arguments; raises InvalidRequest listing every
    problem (422, api.errors)."""
    context = request_context()
    values: dict[str, Any] = {}
    problems: list[Problem] = []
    sources = {
        "path": lambda: {name: path_args[name] for name in inputs.path.model_fields if name in path_args},
        "query": lambda: request.args.to_dict(),
        "body": json_body,
        "form": form_fields,
    }
    for source, read in sources.items():
        model = getattr(inputs, source)
        if model is None:
            continue
        if source == "form" and request.mimetype not in FORM_TYPES:
            values["form"] = None
            continue
        try:
            values[source] = validate(model, read(), context)
        except InvalidRequest as exc:
            problems += exc.problems
    if problems:
        raise InvalidRequest(problems)
    path = values.pop("path", None)
    if path is not None:
        path_args.update(path.model_dump())
    return values


def request_context() -> Context:
    """What the models' checks need of the service: limits, the caller's voices, the URL guard."""
    settings = services().settings
    return Context(
        max_text_chars=settings.max_text_chars,
        voice_exists=lambda name: find_voice(db(), g.api_key_id, name) is not None,
        check_webhook_url=check_webhook_url,
        openai_voices=settings.openai_voices,
    )


def check_webhook_url(url: str) -> None:
    """Refuses URLs the service will not call."""
    settings = services().settings
    try:
        vet_url(url, allow_private=settings.webhook_allow_private, resolve=resolver_within(settings.dns_timeout_s))
    except UnsafeUrl as exc:
        raise Refused(str(exc)) from None
    if outbox.is_disabled(db(), g.api_key_id, url):
        raise Refused("this URL answered 410 Gone and is disabled for your key")


def json_body() -> Any:
    if not request.is_json:
        raise ApiError(ErrorCode.UNSUPPORTED_MEDIA_TYPE, "send a JSON body with Content-Type: application/json")
    try:
        # pydantic_core's parser bounds nesting (the standard library's recurses until it fails)
        # and reads NaN, which the models then refuse by field.
        return from_json(request.get_data(cache=True), allow_inf_nan=True)
    except ValueError as exc:
        raise ApiError(ErrorCode.INVALID_JSON, f"the body is not valid JSON: {exc}", "body") from None


def form_fields() -> dict[str, Any]:
    """A form's fields (the first value of each) and files, as Upload."""
    fields: dict[str, Any] = request.form.to_dict()
    for name, part in request.files.items():
        fields[name] = Upload(part.filename, part.read())
    return fields
