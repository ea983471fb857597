"""`csm-batch demo` as a user runs it: it says so and exits non-zero when its worker cannot
start, and SIGTERM stops it with every process it started."""
import signal
import subprocess
import sys
import time
from pathlib import Path

from support import ROOT, demo_environment


def demo(tmp_path, model: str, **popen) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "cli", "demo", "--out", str(tmp_path / "out")],
        cwd=ROOT, env=demo_environment(tmp_path / "data", model) | {"HF_HOME": str(tmp_path / "hf")}, **popen,
    )


def processes() -> list[tuple[int, int, int]]:
    """(pid, parent pid, process group) of every process on the machine, from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()  # after "pid (name)"
        except OSError:  # gone meanwhile
            continue
        found.append((int(stat.parent.name), int(fields[1]), int(fields[2])))
    return found


def test_a_demo_whose_worker_cannot_load_the_model_says_so_and_fails(tmp_path):
    run = demo(tmp_path, "sesame/csm-1b", stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stdout, stderr = run.communicate(timeout=300)  # it waited over 5 minutes, silent, before
    assert run.returncode == 1, stdout + stderr
    assert "the worker stopped (exit status 1)" in stderr
    assert "Run `python -m csm.download sesame/csm-1b` first" in stderr


def test_sigterm_stops_the_demo_and_every_process_it_started(tmp_path, tiny_model_dir):
    output = tmp_path / "demo.out"
    with output.open("w") as out:
        run = demo(tmp_path, str(tiny_model_dir), stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 180
        while "submitted a script" not in output.read_text():  # the API is up, the worker starting
            assert run.poll() is None and time.monotonic() < deadline, output.read_text()
            time.sleep(0.2)
        children = [(pid, group) for pid, parent, group in processes() if parent == run.pid]
        groups = {group for _, group in children}
        assert len(children) == 2 and groups == {pid for pid, _ in children}  # API and worker lead their own
        run.send_signal(signal.SIGTERM)
        assert run.wait(timeout=90) == 128 + signal.SIGTERM
    finally:
        if run.poll() is None:
            run.kill()
    left = [pid for pid, _, group in processes() if group in groups]
    assert left == [], f"processes left in the demo's groups: {left}"
