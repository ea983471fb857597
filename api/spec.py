"""What the route table (api.routes) says of each route beyond its method, rule and view: a
summary, a tag, the replies and their links, an example body. api.openapi builds GET
/openapi.json from it and from what the code already says (the request models, the API key,
idempotency, OpenAI's error shape, path parameters), which the table does not repeat.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from pydantic import BaseModel

from jobs.formats import FORMATS, WAV

AUDIO_TYPES = tuple(dict.fromkeys(f.media_type for f in FORMATS.values()))  # every output format's


@dataclass(frozen=True)
class Link:
    """From a reply to another operation (OpenAPI `links`): `view` is the target's view, its
    parameters are runtime expressions such as `$response.body#/id`, or constants."""

    name: str
    view: Callable
    parameters: dict[str, Any]


@dataclass(frozen=True)
class Reply:
    status: int
    description: str
    model: type[BaseModel] | None = None  # a JSON body; an error reply takes the route's error shape
    media_types: tuple[str, ...] = ()  # a body of bytes or text, in one of these types
    headers: tuple[str, ...] = ()  # names of response headers (api.openapi.HEADERS)
    links: tuple[Link, ...] = ()


@dataclass(frozen=True)
class Route:
    method: str
    rule: str  # Flask's: /v1/jobs/<uuid:job_id>
    view: Callable
    summary: str
    tag: str
    replies: tuple[Reply, ...]
    examples: dict[str, Any] = field(default_factory=dict)  # request body media type -> an example
    operation_id: str | None = None  # where two rules share a view; else the view's name

    @property
    def endpoint(self) -> str:
        return self.operation_id or self.view.__name__


def ok(model: type[BaseModel], description: str = "OK", status: int = 200, **more) -> Reply:
    return Reply(status, description, model, **more)


def accepted(model: type[BaseModel], description: str, *links: Link) -> Reply:
    """202: stored and queued; Location is where to poll it."""
    return Reply(202, description, model, headers=("Location",), links=links)


def fails(status: int, description: str, *headers: str) -> Reply:
    return Reply(status, description, headers=headers)


def download(
    media_types: tuple[str, ...], description: str, model: type[BaseModel] | None = None
) -> tuple[Reply, Reply]:
    """A stored file: streamed from the local store, or a redirect to a presigned URL on S3.
    `model`: a JSON file's shape."""
    return (
        Reply(200, f"{description} (local store).", model, media_types, headers=("Content-Disposition",)),
        Reply(302, f"{description}: a presigned URL of the object store (S3), valid PRESIGN_EXPIRY_S.",
              headers=("Location",)),
    )


def audio_download(description: str) -> tuple[Reply, Reply]:
    return download(AUDIO_TYPES, description)


def wav_download(description: str) -> tuple[Reply, Reply]:
    return download((WAV.media_type,), description)


def links_to(parameter: str, expression: str, *views: Callable, **constants: str) -> tuple[Link, ...]:
    """One link to each of `views`, passing `parameter` from `expression` (and `constants`)."""
    return tuple(Link(view.__name__, view, {parameter: expression, **constants}) for view in views)
