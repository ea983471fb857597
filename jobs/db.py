"""Engine and session factory for any supported database URL."""
from __future__ import annotations

import time
from pathlib import Path

import psycopg
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from config import Settings


def service_engine(settings: Settings) -> Engine:
    """The engine of the API and the workers, with the configured timeouts."""
    return make_engine(
        settings.database_url,
        connect_timeout_s=settings.database_connect_timeout_s,
        timeout_s=settings.database_timeout_s,
    )


def make_engine(url: str, *, connect_timeout_s: int | None = None, timeout_s: float | None = None) -> Engine:
    """On PostgreSQL, `connect_timeout_s` bounds connecting and `timeout_s` every round trip: the
    server cancels a statement (lock waits included) or ends a transaction left idle after it,
    and the client stops waiting for a reply after it (a server that stopped answering
    altogether). Without them (migrations), nothing is bounded."""
    if url.startswith("sqlite"):
        database = url.split("///", 1)[-1]
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if timeout_s is None:
        return create_engine(url, pool_pre_ping=True)
    limit_ms = round(timeout_s * 1000)
    connect_args = {
        "options": f"-c statement_timeout={limit_ms} -c idle_in_transaction_session_timeout={limit_ms}",
    }
    if connect_timeout_s is not None:
        connect_args["connect_timeout"] = connect_timeout_s
    engine = create_engine(url, pool_pre_ping=True, pool_timeout=timeout_s, connect_args=connect_args)
    if engine.dialect.driver == "psycopg":

        @event.listens_for(engine, "do_connect")
        def connect(_dialect, _record, cargs, cparams):
            connection = BoundedConnection.connect(*cargs, **cparams)
            connection.reply_timeout_s = timeout_s
            return connection

    return engine


class BoundedConnection(psycopg.Connection):
    """A psycopg connection that gives up on a server that stopped answering.

    libpq waits for a reply forever; a partition or a hung proxy then holds the caller for good.
    psycopg drives every exchange (query, fetch, commit) through `wait`, waking the exchange
    every 0.1 s, so a deadline checked there bounds them all. On expiry the connection is
    closed (its protocol state is unknown), so the pool discards it.
    """

    reply_timeout_s: float | None = None

    def wait(self, gen, *args, **kwargs):
        if self.reply_timeout_s is None:
            return super().wait(gen, *args, **kwargs)
        return super().wait(self._within_deadline(gen), *args, **kwargs)

    def _within_deadline(self, gen):
        deadline = time.monotonic() + self.reply_timeout_s
        try:
            waiting_for = next(gen)
            while True:
                ready = yield waiting_for
                if time.monotonic() > deadline:
                    self.close()
                    raise psycopg.OperationalError(f"the database did not answer within {self.reply_timeout_s} s")
                waiting_for = gen.send(ready)
        except StopIteration as done:
            return done.value


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # WAL lets the API read while a worker writes; foreign keys are off by default in SQLite.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
