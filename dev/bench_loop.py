"""Benchmark: what does the retry loop's machinery cost per attempt, and does it grow linearly?

Runs on a real ComfyUI (CPU), side by side in one run, with a websocket client attached (as the web UI is)
and without one (POST /prompt, then /history polled every 5 ms). Every prompt uses new seeds, so nothing
comes from ComfyUI's cache.

  loop      QG_RetryStart -> [QGTest_Probe (candidate), QGTest_SeedScore (score)] -> QG_RetryEnd (best_of_n,
            so every attempt runs) -> one QGTest_Record
  unrolled  the same two body nodes copied by hand N times, each copy ending in a QGTest_Record (the
            least a hand-made graph needs to make each copy run). The record takes the probe, so ComfyUI
            skips each copy's score node: 2 nodes run per copy against the loop's 3 (the body's two and a
            step), which makes the loop's overhead look larger than it is, never smaller

Prints median wall times for N attempts, the loop's overhead per attempt ((loop - unrolled) / N, target
<= 20 ms), time(100) / time(50) for the loop (target <= 2.2), and the server's RSS over two loops of 40
attempts of a 1024x1024 body. Usage: .venv/bin/python dev/bench_loop.py [--rounds N] [--counts 10,50,100,1000]
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import ROOT, ComfyClient, ComfyServer  # noqa: E402

OVERHEAD_TARGET_MS = 20.0
GROWTH_TARGET = 2.2
SEEDS = itertools.count(10**6, 10**4)


def body(prompt: dict, key: str, seed) -> tuple[list, list]:
    prompt[f"{key}p"] = {"class_type": "QGTest_Probe", "inputs": {"label": "bench", "value": seed}}
    prompt[f"{key}s"] = {
        "class_type": "QGTest_SeedScore",
        "inputs": {"seed": seed, "scores": "{}", "default": 1.0, "label": "bench"},
    }
    return [f"{key}p", 0], [f"{key}s", 0]


def loop(count: int, seed: int) -> dict:
    prompt = {"start": {"class_type": "QG_RetryStart", "inputs": {"seed": seed, "max_attempts": count, "seed_step": 1}}}
    candidate, score = body(prompt, "b", ["start", 1])
    prompt["end"] = {
        "class_type": "QG_RetryEnd",
        "inputs": {
            "loop": ["start", 0],
            "candidate": candidate,
            "score": score,
            "threshold": 1e6,
            "mode": "best_of_n",
        },
    }
    prompt["out"] = {"class_type": "QGTest_Record", "inputs": {"label": "bench", "value": ["end", 3]}}
    return prompt


def unrolled(count: int, seed: int) -> dict:
    prompt: dict = {}
    for k in range(count):
        candidate, _ = body(prompt, f"{k}_", seed + k)
        prompt[f"{k}_r"] = {"class_type": "QGTest_Record", "inputs": {"label": "bench", "value": candidate}}
    return prompt


def timed(client: ComfyClient, prompt: dict, how: str) -> float:
    if how == "polling":
        # close the websocket first: ComfyUI broadcasts a prompt's progress_state messages to every open
        # socket when the prompt was queued without a client_id, so an open one would not be "no client"
        client.close()
        return client.run_polling(prompt, timeout=1800).seconds
    result = client.run(prompt, timeout=1800)
    if result.status != "success":
        raise SystemExit(f"failed: {result.error}")
    return result.seconds


def rss_mb(server: ComfyServer) -> float:
    for line in Path(f"/proc/{server.process.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def memory(server: ComfyServer, client: ComfyClient) -> list[float]:
    def big(seed: int) -> dict:
        return {
            "start": {"class_type": "QG_RetryStart", "inputs": {"seed": seed, "max_attempts": 40, "seed_step": 1}},
            "img": {"class_type": "QGTest_Noise", "inputs": {"seed": ["start", 1], "size": 1024}},
            "score": {
                "class_type": "QGTest_SeedScore",
                "inputs": {"seed": ["start", 1], "scores": "{}", "default": 1.0, "label": "m", "after": ["img", 0]},
            },
            "end": {
                "class_type": "QG_RetryEnd",
                "inputs": {
                    "loop": ["start", 0],
                    "candidate": ["img", 0],
                    "score": ["score", 0],
                    "threshold": 9.0,
                    "mode": "best_of_n",
                },
            },
            "out": {"class_type": "QGTest_Record", "inputs": {"label": "m", "value": ["end", 3]}},
        }

    figures = [rss_mb(server)]
    for seed in (1, 5000):
        client.run_polling(big(seed), timeout=600)
        figures.append(rss_mb(server))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds for counts below 1000 (1000 runs once)")
    parser.add_argument("--counts", default="10,50,100,1000")
    args = parser.parse_args()
    counts = [int(c) for c in args.counts.split(",")]
    variants = {"loop": loop, "unrolled": unrolled}
    clients = ("websocket", "polling")
    times: dict[tuple, list[float]] = {}
    with ComfyServer(node_roots=[ROOT / "tests" / "comfy_nodes"], name="bench") as server:
        client = ComfyClient(server.url)
        timed(client, loop(5, next(SEEDS)), "websocket")  # warm-up
        for count in counts:
            for _ in range(args.rounds if count < 1000 else 1):
                for how in clients:
                    for name, make in variants.items():
                        times.setdefault((name, count, how), []).append(timed(client, make(count, next(SEEDS)), how))
        mem = memory(server, client)
        client.close()
    median = {key: statistics.median(t) for key, t in times.items()}
    print("QG retry loop, ComfyUI 0.3.75 on the CPU, median wall time per prompt (queue to end)")
    print(f"{'attempts':>9} | {'websocket client':^38} | {'no client (polling)':^38}")
    header = f"{'loop':>9} {'unrolled':>10} {'overhead/attempt':>17}"
    print(f"{'':>9} | {header} | {header}")
    for count in counts:
        cells = []
        for how in clients:
            lp, un = median["loop", count, how], median["unrolled", count, how]
            cells.append(f"{lp:8.2f}s {un:9.2f}s {(lp - un) / count * 1000:14.1f} ms")
        print(f"{count:>9} | {cells[0]} | {cells[1]}")
    if 50 in counts and 100 in counts:
        for how in clients:
            growth = median["loop", 100, how] / median["loop", 50, how]
            verdict = "met" if growth <= GROWTH_TARGET else "MISSED"
            baseline = median["unrolled", 100, how] / median["unrolled", 50, how]
            print(
                f"time(100)/time(50), loop, {how}: {growth:.2f} (target <= {GROWTH_TARGET}: {verdict}); "
                f"the unrolled graph itself: {baseline:.2f}"
            )
    for count in counts:
        worst = max((median["loop", count, h] - median["unrolled", count, h]) / count * 1000 for h in clients)
        verdict = "met" if worst <= OVERHEAD_TARGET_MS else "MISSED"
        print(f"overhead per attempt at {count}, worst of the two: {worst:.1f} ms (target <= 20 ms: {verdict})")
    image = 1024 * 1024 * 3 * 4 / 2**20
    print(
        f"memory, 40 attempts of a 1024x1024 body (one image = {image:.0f} MB): RSS {mem[0]:.0f} MB -> "
        f"{mem[1]:.0f} MB after one loop (+{(mem[1] - mem[0]) / 40:.1f} MB per attempt) -> {mem[2]:.0f} MB "
        f"after a second loop (+{mem[2] - mem[1]:.0f} MB)"
    )


if __name__ == "__main__":
    main()
