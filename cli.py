"""`csm-batch`: set-up and operator commands.

    csm-batch init               migrate the database and create the bucket/folder
    csm-batch keys create NAME   create an API key (printed once, stored hashed)
    csm-batch demo               render the example conversation on the embedded default
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from config import Settings, SettingsError

ROOT = Path(__file__).resolve().parent


def migrate(database_url: str) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["database_url"] = database_url
    command.upgrade(config, "head")


def init(settings: Settings) -> None:
    from storage import make_store

    migrate(settings.database_url)
    make_store(settings).ensure_ready()


def create_key(settings: Settings, name: str) -> str:
    from jobs.db import make_session_factory, service_engine
    from jobs.keys import create_key as create

    engine = service_engine(settings)
    try:
        with make_session_factory(engine).begin() as session:
            _row, key = create(session, name)
    finally:
        engine.dispose()
    return key


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="csm-batch", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("init", help="migrate the database and create the object store")
    keys = commands.add_parser("keys", help="manage API keys").add_subparsers(dest="action", required=True)
    keys.add_parser("create", help="create an API key").add_argument("name")
    demo = commands.add_parser("demo", help="render the example conversation end to end")
    demo.add_argument("--script", type=Path, default=ROOT / "examples" / "conversation.json")
    demo.add_argument("--out", type=Path, default=Path("out"))
    args = parser.parse_args(argv)

    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"csm-batch: {exc}", file=sys.stderr)
        return 2
    if args.command == "init":
        init(settings)
        print("database migrated; object store ready")
    elif args.command == "keys":
        print(create_key(settings, args.name))
    elif args.command == "demo":
        from demo import run_demo

        return run_demo(settings, args.script, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
