"""`csm-batch`: operator commands (on the service's own database) and client commands (over
HTTP, to CSM_API_URL with CSM_API_KEY).

    csm-batch init                    migrate the database and create the bucket/folder
    csm-batch keys create NAME        create an API key (printed once, stored hashed)
    csm-batch keys list               every key, revoked ones too
    csm-batch keys revoke NAME_OR_ID  refuse a key from its next request on
    csm-batch demo                    render the example conversation on the embedded default
    csm-batch say TEXT                render a text
    csm-batch script FILE.json        render a conversation
    csm-batch submit FILE.csv         check or submit a CSV batch, wait for it, download it
    csm-batch status ID               a job's or a batch's status
    csm-batch download ID --out DIR   a job's or a batch's files, skipping those already there
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import provision
from client import commands
from client.http import ApiClient, ApiRefused, BadDownload, Unreachable
from config import ClientSettings, Settings, SettingsError
from demo import run_demo
from jobs.formats import FORMATS
from jobs.keys import KeyNotFound

EXAMPLE_SCRIPT = provision.ROOT / "examples" / "conversation.json"


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.client:
            client = ClientSettings.from_env()
            return args.run(ApiClient(client.api_url, client.api_key, client.timeout_s), args)
        return args.run(Settings.from_env(), args)
    except SettingsError as exc:
        print(f"csm-batch: {exc}", file=sys.stderr)
        return 2
    except ApiRefused as exc:
        print(commands.explain(exc), file=sys.stderr)
        return 1
    except (Unreachable, BadDownload, KeyNotFound, OSError, json.JSONDecodeError) as exc:
        print(f"csm-batch: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("csm-batch: interrupted (submitted work goes on: see `csm-batch status ID`)", file=sys.stderr)
        return 130


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="csm-batch", description=" ".join(__doc__.split("\n\n")[0].split()))
    sub = root.add_subparsers(dest="command", required=True)

    def command(name: str, run, about: str, *, client: bool, parent=sub) -> argparse.ArgumentParser:
        """`client`: the command talks to the API (ClientSettings), else to the database (Settings)."""
        added = parent.add_parser(name, help=about)
        added.set_defaults(run=run, client=client)
        return added

    command("init", _init, "migrate the database and create the object store", client=False)
    keys = sub.add_parser("keys", help="manage API keys (on the database)")
    keys = keys.add_subparsers(dest="action", required=True)
    command("create", _create_key, "create an API key", client=False, parent=keys).add_argument("name")
    command("list", _list_keys, "list API keys, revoked ones too", client=False, parent=keys)
    revoke = command("revoke", _revoke_key, "revoke an API key: the API refuses it at once", client=False, parent=keys)
    revoke.add_argument("name_or_id")
    demo = command("demo", _demo, "render the example conversation end to end", client=False)
    demo.add_argument("--script", type=Path, default=EXAMPLE_SCRIPT)
    demo.add_argument("--out", type=Path, default=Path("out"))

    say = command("say", commands.say, "render a text (a job, polled) and save its audio", client=True)
    say.add_argument("text")
    say.add_argument("-o", "--output", type=Path, help="the audio file (default: JOB_ID.FORMAT here)")
    say.add_argument("--voice", help="one of the key's voices")
    say.add_argument("--speaker", type=int)
    say.add_argument("--format", choices=FORMATS, help="default: the output's extension, else wav")
    script = command("script", commands.script, "render a conversation (JSON, as examples/) and save it", client=True)
    script.add_argument("file", type=Path)
    script.add_argument("-o", "--output", type=Path, default=Path("."), help="the folder (default: here)")
    submit = command("submit", commands.submit, "check or submit a CSV batch", client=True)
    submit.add_argument("file", type=Path)
    submit.add_argument("--validate-only", action="store_true", help="only check the file; store nothing")
    submit.add_argument("--webhook-url", help="called when the batch ends")
    submit.add_argument("--wait", action="store_true", help="show progress until the batch ends")
    submit.add_argument("--out", type=Path, help="then download every output and manifest.csv here (implies --wait)")
    command("status", commands.status, "a job's or a batch's status", client=True).add_argument("id")
    download = command("download", commands.download, "a job's or a batch's files, resumably", client=True)
    download.add_argument("id")
    download.add_argument("--out", type=Path, required=True)
    return root


def _init(settings: Settings, _args) -> int:
    provision.init(settings)
    print("database migrated; object store ready")
    return 0


def _create_key(settings: Settings, args) -> int:
    print(provision.create_key(settings, args.name))
    return 0


def _list_keys(settings: Settings, _args) -> int:
    for key in provision.list_keys(settings):
        revoked = f"revoked {key['revoked_at']:%Y-%m-%d %H:%M:%S}Z" if key["revoked_at"] else "active"
        print(f"{key['id']}\t{key['name']}\tcreated {key['created_at']:%Y-%m-%d %H:%M:%S}Z\t{revoked}")
    return 0


def _revoke_key(settings: Settings, args) -> int:
    key = provision.revoke_key(settings, args.name_or_id)
    print(f"revoked key {key['id']} ({key['name']}); the API refuses it from now on")
    return 0


def _demo(settings: Settings, args) -> int:
    return run_demo(settings, args.script, args.out)


if __name__ == "__main__":
    sys.exit(main())
