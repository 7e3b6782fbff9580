"""Benchmark: milliseconds per megapixel of the weights-free technical score (nodes/core/technical.py).

Scores, in one run and in a new random order each round, a batch of 16 images of 1024x1024 and one image of
2048x2048 (random pixels in 0..1: the cost does not depend on the content), with torch's thread count as
ComfyUI leaves it (torch's default; pass --threads N to change it). Prints per case the median and the best
wall time per megapixel of input, the process CPU time per megapixel (all threads together: on a machine
shared with other work the wall time swings, the CPU time much less), and the ratio of the median wall time to
the target (30 ms per megapixel; <= 1.00 meets it). The load average is printed too, since other processes
on the machine slow every figure down.

Usage: .venv/bin/python dev/bench_technical.py [--rounds N] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
import types
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
if "quality_gate" not in sys.modules:  # the pack's modules through an empty package, as tests/conftest.py does
    package = types.ModuleType("quality_gate")
    package.__path__ = [str(ROOT)]
    sys.modules["quality_gate"] = package

from quality_gate.nodes.core.technical import technical_scores  # noqa: E402

TARGET_MS_PER_MP = 30.0


def cases() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {
        "16 x 1024x1024": torch.rand(16, 1024, 1024, 3, generator=g),
        "1 x 2048x2048": torch.rand(1, 2048, 2048, 3, generator=g),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = leave torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    images = cases()
    megapixels = {name: x.shape[0] * x.shape[1] * x.shape[2] / 1e6 for name, x in images.items()}
    for x in images.values():  # warm up (allocator, thread pool)
        technical_scores(x[:1])
    wall: dict[str, list[float]] = {name: [] for name in images}
    cpu: dict[str, list[float]] = {name: [] for name in images}
    for _ in range(args.rounds):
        order = list(images)
        random.shuffle(order)
        for name in order:
            c0, t0 = time.process_time(), time.perf_counter()
            technical_scores(images[name])
            t1, c1 = time.perf_counter(), time.process_time()
            wall[name].append((t1 - t0) * 1000 / megapixels[name])
            cpu[name].append((c1 - c0) * 1000 / megapixels[name])

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, load {load:.2f}")
    print(f"{'case':16s} {'wall median':>12s} {'wall best':>10s} {'cpu median':>11s} {'median/target':>14s}")
    for name in images:
        median = statistics.median(wall[name])
        print(
            f"{name:16s} {median:9.1f} ms {min(wall[name]):7.1f} ms {statistics.median(cpu[name]):8.1f} ms "
            f"{median / TARGET_MS_PER_MP:13.2f}x"
        )
    print(f"(ms per megapixel of input; target {TARGET_MS_PER_MP:.0f} ms, {args.rounds} rounds)")


if __name__ == "__main__":
    main()
