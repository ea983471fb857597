"""Time of validating a batch CSV (jobs.csv_batch.parse_batch_csv) on its own: no DB, no API.

Usage: python bench/csv_validation.py [--rows 10000] [--runs 5]
Builds a CSV in memory (texts of about 100-300 characters, some quoted with commas, quotes and
line breaks; a tenth of the rows in scripts of 20 lines, interleaved with independent rows),
then prints key=value lines: the file's size, and the best and median time and rows per second.
Then the same for a hostile file: MAX_CSV_BYTES of `a,b` lines under a one-column header (each
row has too many cells): CPU time, peak memory traced while refusing it, and the problems listed.
"""

from __future__ import annotations

import argparse
import csv
import io
import random
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from jobs.csv_batch import MAX_CSV_BYTES, MAX_CSV_ROWS, CsvRejected, parse_batch_csv  # noqa: E402

WORDS = (
    "the quick brown fox jumps over a lazy dog while seven wizards quietly hum an old song "
    "about rivers mountains and the long road home before the evening train leaves town"
).split()
VOICES = frozenset({"narrator", "alice", "bob"})
MAX_TEXT_CHARS = 2_000  # the service's default MAX_TEXT_CHARS


def build_csv(rows: int, seed: int = 0) -> bytes:
    rng = random.Random(seed)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(
        ["text", "speaker", "voice", "script", "id", "temperature", "topk", "seed", "pause_ms"]
    )
    for row in range(rows):
        text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(20, 60)))[:300]
        if row % 7 == 0:
            text = f'{text}, she said, "really?"\nAnd then: {text[:60]}'
        script = f"scene-{row // 10 % 50}" if row % 10 == 0 else ""  # 50 scripts of 20 lines
        writer.writerow([
            text,
            rng.randint(0, 3) if script else "",
            rng.choice(sorted(VOICES)) if row % 3 == 0 else "",
            script,
            "" if script else f"clip-{row}",
            "" if script else f"{rng.uniform(0.5, 1.2):.2f}",
            rng.choice(["", "40", "50"]) if not script else "",
            "" if script else rng.randint(0, 2**31 - 1),
            rng.choice(["", "150", "400"]) if script else "",
        ])
    return out.getvalue().encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=MAX_CSV_ROWS)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    data = build_csv(args.rows)
    print(f"event=built rows={args.rows} bytes={len(data)} limit_bytes={MAX_CSV_BYTES}")
    times = []
    for _ in range(args.runs):
        start = time.perf_counter()
        plan = parse_batch_csv(
            data, max_text_chars=MAX_TEXT_CHARS, voice_exists=VOICES.__contains__
        )
        times.append(time.perf_counter() - start)
    assert plan.rows == args.rows, plan.rows
    best, median = min(times), statistics.median(times)
    print(
        f"event=parsed rows={plan.rows} jobs={len(plan.jobs)} runs={args.runs} best_s={best:.3f} "
        f"median_s={median:.3f} rows_per_s={plan.rows / median:,.0f}"
    )
    refuse_hostile()


def refuse_hostile() -> None:
    data = b"text\n" + b"a,b\n" * ((MAX_CSV_BYTES - 5) // 4)
    tracemalloc.start()
    start = time.process_time()
    try:
        parse_batch_csv(data, max_text_chars=MAX_TEXT_CHARS, voice_exists=VOICES.__contains__)
        raise SystemExit("the hostile file was accepted")
    except CsvRejected as exc:
        problems = exc.problems
    cpu_s = time.process_time() - start  # with tracemalloc's own overhead
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(
        f"event=hostile bytes={len(data)} cpu_s={cpu_s:.2f} peak_mib={peak / 2**20:.1f} "
        f"problems_listed={len(problems)} last={problems[-1].message!r}"
    )


if __name__ == "__main__":
    main()
