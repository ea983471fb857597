"""Alembic environment: target metadata from jobs.models, URL from the settings."""
from __future__ import annotations

from logging.config import fileConfig

from alembic import context

from config import Settings
from jobs.db import make_engine
from jobs.models import Base, UTCDateTime

if context.config.config_file_name and context.config.attributes.get("configure_logging", True):
    # keep the loggers the host process already made (the worker, the API, a test run) working
    fileConfig(context.config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def render_item(type_, obj, autogen_context):
    # Migrations stay free of project imports: UTCDateTime is a plain timestamptz column.
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def run_migrations() -> None:
    url = context.config.attributes.get("database_url") or Settings.from_env().database_url
    engine = make_engine(url)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            render_item=render_item,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations()
