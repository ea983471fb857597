"""Time for the API to accept a 10,000-row CSV batch: validate, store every job, publish.

Usage: python bench/batch_submit.py [--rows 10000] [--runs 3] [--database-url URL] [--broker-url URL]
Runs the real Flask app in process (no HTTP framing) against SQLite and a filesystem broker by
default, or the given PostgreSQL and Redis. Prints key=value lines per run and the best.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from api import create_app  # noqa: E402
from bench.csv_validation import build_csv  # noqa: E402
from provision import create_key, init  # noqa: E402
from config import Settings  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--database-url")
    parser.add_argument("--broker-url")
    args = parser.parse_args()

    data = build_csv(args.rows).replace(b",narrator,", b",,").replace(b",alice,", b",,").replace(b",bob,", b",,")
    with tempfile.TemporaryDirectory() as data_dir:
        environ = {"CSM_DATA_DIR": data_dir}
        environ |= {"DATABASE_URL": args.database_url} if args.database_url else {}
        environ |= {"BROKER_URL": args.broker_url} if args.broker_url else {}
        settings = Settings.from_env(environ)
        init(settings)
        key = create_key(settings, "bench")
        client = create_app(settings).test_client()
        print(f"rows={args.rows} bytes={len(data)} database={settings.database_url.split(':')[0]} broker={settings.broker_url.split(':')[0]}")
        times = []
        for run in range(args.runs):
            started = time.perf_counter()
            response = client.post(
                "/v1/batches", data=data, content_type="text/csv", headers={"Authorization": f"Bearer {key}"}
            )
            times.append(time.perf_counter() - started)
            if response.status_code != 202:
                raise SystemExit(f"unexpected {response.status_code}: {response.get_data(as_text=True)[:500]}")
            print(f"run={run} seconds={times[-1]:.3f} jobs={response.get_json()['jobs_total']}")
        print(f"best_seconds={min(times):.3f} rows_per_s={args.rows / min(times):.0f}")


if __name__ == "__main__":
    main()
