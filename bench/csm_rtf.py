"""Real-time factor of the CSM engine on its own (no service code).

Usage: python bench/csm_rtf.py [SPEC] [--device cuda] [--seconds 10] [--runs 3]
SPEC is what `csm.load_generator` takes: "tiny", a model directory, or a cached hub id.
Prints key=value lines: load time, then per run audio seconds, wall seconds, RTF and peak GPU memory.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from csm import load_generator  # noqa: E402

TEXT = "The quick brown fox jumps over the lazy dog, and then it takes a long nap in the afternoon sun."


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec", nargs="?", default="tiny")
    parser.add_argument("--device", default=None)
    parser.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "csm-bench")
    parser.add_argument("--seconds", type=float, default=10.0, help="audio length limit per run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--text", default=TEXT)
    args = parser.parse_args()

    start = time.perf_counter()
    generator = load_generator(args.spec, device=args.device, cache_dir=args.cache_dir)
    print(f"event=loaded spec={args.spec} device={generator.device} load_s={time.perf_counter() - start:.2f}")
    generator.generate(args.text, 0, max_audio_length_ms=1_000, seed=0)  # warm-up

    cuda = generator.device.type == "cuda"
    for run in range(args.runs):
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        audio = generator.generate(args.text, 0, max_audio_length_ms=args.seconds * 1000, seed=run)
        wall = time.perf_counter() - start  # generate returns CPU audio: the device is done
        audio_s = audio.numel() / generator.sample_rate
        peak = f" peak_mem_mb={torch.cuda.max_memory_allocated() / 2**20:.0f}" if cuda else ""
        rtf = wall / audio_s if audio_s else float("nan")
        print(f"event=run run={run} audio_s={audio_s:.2f} wall_s={wall:.2f} rtf={rtf:.3f}{peak}")


if __name__ == "__main__":
    main()
