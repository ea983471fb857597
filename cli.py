"""`csm-batch`: set-up and operator commands.

    csm-batch init               migrate the database and create the bucket/folder
    csm-batch keys create NAME   create an API key (printed once, stored hashed)
    csm-batch keys list          every key, revoked ones too
    csm-batch keys revoke KEY    refuse a key (by name or id) from its next request on
    csm-batch demo               render the example conversation on the embedded default
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import provision
from config import Settings, SettingsError
from demo import run_demo
from jobs.keys import KeyNotFound

EXAMPLE_SCRIPT = provision.ROOT / "examples" / "conversation.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="csm-batch", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("init", help="migrate the database and create the object store")
    keys = commands.add_parser("keys", help="manage API keys").add_subparsers(dest="action", required=True)
    keys.add_parser("create", help="create an API key").add_argument("name")
    keys.add_parser("list", help="list API keys, revoked ones too")
    keys.add_parser("revoke", help="revoke an API key").add_argument("name_or_id")
    demo = commands.add_parser("demo", help="render the example conversation end to end")
    demo.add_argument("--script", type=Path, default=EXAMPLE_SCRIPT)
    demo.add_argument("--out", type=Path, default=Path("out"))
    args = parser.parse_args(argv)

    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"csm-batch: {exc}", file=sys.stderr)
        return 2
    if args.command == "init":
        provision.init(settings)
        print("database migrated; object store ready")
    elif args.command == "keys":
        return _keys(settings, args)
    elif args.command == "demo":
        return run_demo(settings, args.script, args.out)
    return 0


def _keys(settings: Settings, args: argparse.Namespace) -> int:
    if args.action == "create":
        print(provision.create_key(settings, args.name))
    elif args.action == "list":
        for key in provision.list_keys(settings):
            revoked = f"revoked {key['revoked_at']:%Y-%m-%d %H:%M:%S}Z" if key["revoked_at"] else "active"
            print(f"{key['id']}\t{key['name']}\tcreated {key['created_at']:%Y-%m-%d %H:%M:%S}Z\t{revoked}")
    elif args.action == "revoke":
        try:
            key = provision.revoke_key(settings, args.name_or_id)
        except KeyNotFound as exc:
            print(f"csm-batch: {exc}", file=sys.stderr)
            return 1
        print(f"revoked key {key['id']} ({key['name']}); the API refuses it from now on")
    return 0


if __name__ == "__main__":
    sys.exit(main())
