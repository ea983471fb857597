"""DELETE of a job or a batch: its objects first, then its rows.

The order is chosen for what a failure leaves behind. The store's calls are bounded (the S3
client's timeouts and attempts); when one fails, the DELETE answers 503 with the rows intact,
some of whose objects may already be gone, and the same DELETE, retried, finishes the work.
Rows first would leave, on a store failure, objects that no row names: orphans that nothing
finds again. No database transaction is open while the store is called, so a queued job may
be rendered meanwhile: its new objects are noticed and the DELETE refused (409), never orphaned.
"""
from __future__ import annotations

import uuid

from flask import g
from sqlalchemy import ColumnElement

from api.errors import ApiError, ErrorCode
from api.services import db, services
from jobs import deletion, retention


def delete_outputs_and_rows(
    which: ColumnElement[bool], *, location: str, batch_id: uuid.UUID | None = None
) -> None:
    """Deletes the jobs `which` selects (a batch's, when `batch_id` is given, and the batch):
    409 while one of them runs, 503 when the store fails (nothing of the rows is deleted)."""
    session = db()
    if count := deletion.running(session, which):
        raise _running(f"{count} job(s) are running")
    keys = retention.output_keys(session, which)
    session.commit()  # ends the read: no transaction stays open during the store's calls
    services().store.delete_many(keys)
    if set(retention.output_keys(session, which)) - set(keys):
        # A queued job was rendered while the store was called: deleting its row would leave its
        # new objects to no one. Refused as if it still ran; the retried DELETE takes them too.
        session.rollback()
        raise _running("a queued job was rendered meanwhile")
    deleted = deletion.delete_batch(session, batch_id) if batch_id else deletion.delete_jobs(session, which)
    if not deleted:
        session.rollback()
        raise _running("a queued job started running meanwhile")
    deletion.forget_submission(session, g.api_key_id, location)
    session.commit()


def _running(what: str) -> ApiError:
    return ApiError(
        ErrorCode.RUNNING, f"{what}; cancel (scripts stop between lines) or wait until they finish, then delete"
    )
