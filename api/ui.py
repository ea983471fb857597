"""GET /ui: a page to render, listen and follow batches, in plain HTML, CSS and JavaScript
(api/static, served as they are: no build step, nothing from a CDN)."""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import current_app, send_from_directory

from api.services import services

STATIC_URL_PATH = "/ui/static"
AWS_S3_ORIGINS = "https://*.amazonaws.com"


def page():
    response = send_from_directory(current_app.static_folder, "ui.html", max_age=0)
    # Audio may come from the bucket's presigned URLs: the page allows that origin for media
    # and nothing else from outside.
    response.headers["Content-Security-Policy"] = (
        f"default-src 'self'; media-src 'self' blob: {_media_origin()}; img-src 'self' data:; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _media_origin() -> str:
    settings = services().settings
    if not settings.s3_bucket:
        return ""
    endpoint = settings.s3_public_endpoint_url or settings.s3_endpoint_url
    if not endpoint:
        return AWS_S3_ORIGINS
    parts = urlsplit(endpoint)
    return f"{parts.scheme}://{parts.netloc}"
