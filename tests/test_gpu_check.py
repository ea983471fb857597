"""scripts/gpu-check --dry-run: every section of the GPU machine's check, on the CPU with the tiny model, in
an interpreter where the packages missing from the GPU machine's image cannot be imported."""

import json
import os
import subprocess
import sys

from support import ROOT

# Not on the GPU machine's image (and not carried there): importing one of them fails, as it would there.
ABSENT = ("sphn", "soundfile", "celery", "kombu", "sqlalchemy", "alembic", "psycopg", "boto3", "botocore", "flask",
          "werkzeug", "moto", "redis", "sounddevice", "aiohttp", "bitsandbytes")
SECTIONS = ["environment", "tiny_model", "gpu_tests", "benchmark", "benchmark_compiled"]


def test_the_dry_run_passes_every_section_and_writes_its_report(tmp_path):
    image = tmp_path / "image"
    image.mkdir()
    (image / "sitecustomize.py").write_text(f"import sys\nsys.modules.update(dict.fromkeys({ABSENT!r}))\n")
    env = dict(os.environ, PYTHONPATH=str(image))
    out = tmp_path / "out"

    done = subprocess.run([sys.executable, "scripts/gpu-check", "--dry-run", "--out", str(out), "--budget-s", "3000"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=3300)

    report = json.loads((out / "gpu-check.json").read_text())
    statuses = {name: section["status"] for name, section in report["sections"].items()}
    assert statuses == dict.fromkeys(SECTIONS, "ok"), done.stdout[-4000:] + done.stderr[-4000:]
    assert done.returncode == 0
    if any((ROOT / ".whl").glob("*.whl")):  # fetched by scripts/fetch-gpu-wheels: installed and first on sys.path
        assert report["sections"]["environment"]["carried_wheels_win"] is True
    assert report["sections"]["environment"]["sdpa"]["decode"]["ops"]  # the kernel the engine's attention got
    assert report["sections"]["tiny_model"]["replay_equals_eager"] == [True, True, True]
    assert " skipped, " in report["sections"]["gpu_tests"]["summary"]  # all collected, without the service
    benchmark = report["sections"]["benchmark"]
    assert [(case["impl"], case["batch"], case["repeats"]) for case in benchmark["summary"]] == [
        ("transformers", 1, 3), ("reference", 1, 3), ("engine (eager)", 1, 3), ("engine (eager)", 2, 3)]
    assert all(case["frames_per_s"] > 0 for case in benchmark["summary"])
    engine = benchmark["summary"][2]
    assert engine["aten_ops_per_frame"] > 0 and engine["kernels_per_frame"] is None  # no profiler kernels on CPU
    ops = engine["aten_ops_by_name"]  # where they go, the most frequent first
    assert "aten.addmm" in ops and list(ops.values()) == sorted(ops.values(), reverse=True)
    assert benchmark["targets"] and all(line.startswith("n/a on CPU") for line in benchmark["targets"])
    assert "n/a on CPU  engine (eager): batch 1 >= 15x real time" in done.stdout
