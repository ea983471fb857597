"""GET /openapi.json (the document api.openapi builds from the route table) and GET /docs,
Swagger UI rendering it from the package's own files (api/static, nothing from a CDN)."""
from __future__ import annotations

from flask import current_app, jsonify, send_from_directory

from api.openapi import build_document

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)


def openapi_document():
    return jsonify(document())


def document() -> dict:
    """The app's document, built from its route table on first use."""
    extensions = current_app.extensions
    if "csm_batch_openapi" not in extensions:
        extensions["csm_batch_openapi"] = build_document(extensions["csm_batch_routes"])
    return extensions["csm_batch_openapi"]


def docs_page():
    """Swagger UI: browse the API; "Authorize" with a key to try requests from the page."""
    response = send_from_directory(current_app.static_folder, "docs.html", max_age=0)
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response
