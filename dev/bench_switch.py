"""Benchmark: does QG_Switch cost anything when it skips an expensive branch?

Runs on a real ComfyUI (CPU), side by side in one run, in a new random order each round so machine noise
and the clean-up after a heavy prompt hit all variants alike. Every prompt uses a new colour, so no
variant is served from ComfyUI's cache.

  cheap     the cheap branch alone (EmptyImage 1024 -> ImageBlur -> PreviewImage)
  lazy      QG_Switch choosing the cheap branch, with an expensive branch connected to on_false
  eager     a non-lazy switch (evaluates both inputs, like most switch nodes) with the same two branches

Prints median wall times (queue to end of prompt), with a websocket client attached (as the web UI is) and
without one (POST /prompt, then /history polled every 5 ms), and the ratios lazy/cheap (target <= 1.10)
and eager/cheap. Usage: .venv/bin/python dev/bench_switch.py [--rounds N]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import ROOT, ComfyClient, ComfyServer  # noqa: E402

TARGET = 1.10


def branch(prompt: dict, prefix: str, size: int, radius: int, colour: int) -> list:
    prompt[f"{prefix}_image"] = {
        "class_type": "EmptyImage",
        "inputs": {"width": size, "height": size, "batch_size": 1, "color": colour},
    }
    prompt[f"{prefix}_blur"] = {
        "class_type": "ImageBlur",
        "inputs": {"image": [f"{prefix}_image", 0], "blur_radius": radius, "sigma": 4.0},
    }
    return [f"{prefix}_blur", 0]


def workflow(variant: str, colour: int) -> dict:
    prompt: dict = {}
    cheap = branch(prompt, "cheap", 1024, 6, colour)
    if variant == "cheap":
        value = cheap
    else:
        expensive = branch(prompt, "expensive", 1536, 24, colour)
        switch = "QG_Switch" if variant == "lazy" else "QGTest_EagerSwitch"
        prompt["switch"] = {
            "class_type": switch,
            "inputs": {"condition": True, "on_true": cheap, "on_false": expensive},
        }
        value = ["switch", 0]
    prompt["preview"] = {"class_type": "PreviewImage", "inputs": {"images": value}}
    return prompt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=12)
    args = parser.parse_args()
    variants = ("cheap", "lazy", "eager")
    clients = ("websocket", "polling")
    times: dict[tuple[str, str], list[float]] = {(v, c): [] for v in variants for c in clients}
    with ComfyServer(node_roots=[ROOT / "tests" / "comfy_nodes"], name="bench") as server:
        client = ComfyClient(server.url)
        client.run(workflow("eager", 1))  # warm-up: first-run imports and allocations
        colour = 1
        runs = [(v, c) for c in clients for v in variants]
        shuffle = random.Random(0).shuffle
        for _ in range(args.rounds):
            shuffle(runs)  # a new order each round: no variant always follows the heavy one
            for variant, how in runs:
                colour += 1  # a new colour per prompt: nothing comes from the cache
                if how == "websocket":
                    result = client.run(workflow(variant, colour))
                    if result.status != "success":
                        raise SystemExit(f"{variant} failed: {result.error}")
                    seconds = result.seconds
                else:
                    seconds = client.run_polling(workflow(variant, colour)).seconds
                times[variant, how].append(seconds)
        client.close()
    median = {key: statistics.median(t) for key, t in times.items()}
    print(f"QG_Switch laziness, ComfyUI 0.3.75 on the CPU, {args.rounds} rounds, median wall time per prompt")
    print(f"{'':34}{'websocket client':>26}{'no client (polling)':>26}")
    labels = {
        "cheap": "cheap branch alone",
        "lazy": "QG_Switch, expensive connected",
        "eager": "non-lazy switch baseline",
    }
    for variant in variants:
        cells = []
        for how in clients:
            ratio = median[variant, how] / median["cheap", how]
            cells.append(f"{median[variant, how] * 1000:9.1f} ms  ratio {ratio:6.3f}")
        print(f"  {labels[variant]:32}{cells[0]:>26}{cells[1]:>26}")
    worst = max(median["lazy", how] / median["cheap", how] for how in clients)
    verdict = "met" if worst <= TARGET else "MISSED"
    print(f"QG_Switch ratio, worst of the two: {worst:.3f} (target <= {TARGET:.2f}: {verdict})")


if __name__ == "__main__":
    main()
