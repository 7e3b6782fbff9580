"""Benchmark: does QG_Switch cost anything when it skips an expensive branch?

Runs on a real ComfyUI (CPU), side by side in one run, rotating the order each round so machine noise hits
all variants alike. Every prompt uses a new colour, so no variant is served from ComfyUI's cache.

  cheap     the cheap branch alone (EmptyImage 1024 -> ImageBlur -> PreviewImage)
  lazy      QG_Switch choosing the cheap branch, with an expensive branch connected to on_false
  eager     a non-lazy switch (evaluates both inputs, like most switch nodes) with the same two branches

Prints median wall times (queue to end of prompt, websocket client attached) and the ratios lazy/cheap
(target <= 1.10) and eager/cheap. Usage: .venv/bin/python dev/bench_switch.py [--rounds N]
"""

from __future__ import annotations

import argparse
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
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    variants = ("cheap", "lazy", "eager")
    times: dict[str, list[float]] = {v: [] for v in variants}
    with ComfyServer(node_roots=[ROOT / "tests" / "comfy_nodes"], name="bench") as server:
        client = ComfyClient(server.url)
        client.run(workflow("eager", 1))  # warm-up: first-run imports and allocations
        colour = 1
        for r in range(args.rounds):
            order = variants[r % 3 :] + variants[: r % 3]
            for variant in order:
                colour += 1  # a new colour per prompt: nothing comes from the cache
                result = client.run(workflow(variant, colour))
                if result.status != "success":
                    raise SystemExit(f"{variant} failed: {result.error}")
                times[variant].append(result.seconds)
        client.close()
    median = {v: statistics.median(t) for v, t in times.items()}
    lazy_ratio, eager_ratio = median["lazy"] / median["cheap"], median["eager"] / median["cheap"]
    print(f"QG_Switch laziness, ComfyUI 0.3.75 on the CPU, {args.rounds} rounds, median wall time per prompt")
    print(f"  cheap branch alone              {median['cheap'] * 1000:8.1f} ms")
    print(
        f"  QG_Switch, expensive connected  {median['lazy'] * 1000:8.1f} ms   ratio {lazy_ratio:.3f} "
        f"(target <= {TARGET:.2f}: {'met' if lazy_ratio <= TARGET else 'MISSED'})"
    )
    print(f"  non-lazy switch baseline        {median['eager'] * 1000:8.1f} ms   ratio {eager_ratio:.3f}")


if __name__ == "__main__":
    main()
