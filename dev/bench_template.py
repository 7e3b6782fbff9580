"""Benchmark: what does running a template by name cost over a plain POST /prompt, and how fast is a sweep queued?

On a real ComfyUI (CPU), side by side in one run:

  by name   POST /qg/templates/<name>/run with 7 parameters (validate the parameters, fill them in, ComfyUI's own
            validation, queue) of a 30-node template (8 parameter nodes, EmptyImage, 19 ImageInvert, Gate, Preview)
  plain     POST /prompt of the same graph (ComfyUI's validation and queue)

Each request is timed on the client from send to reply (the latency a caller sees), in a new random order per
round, and the queue is drained between requests so execution never overlaps a measurement. Then a 200-item sweep
is queued (POST /qg/templates/<name>/sweep) and timed from send to reply; its queue is cleared after.

Targets: by name at most 20 ms slower (median); a 200-item sweep queued within 2 s.
Usage: .venv/bin/python dev/bench_template.py [--rounds N]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import ComfyClient, ComfyServer  # noqa: E402

NAME = "bench_30_nodes"
LATENCY_TARGET_MS = 20.0
SWEEP_TARGET_S = 2.0


def template() -> dict:
    def param(kind, name, value, **extra):
        return {"class_type": kind, "inputs": {"name": name, "value": value, **extra}}

    wf = {
        "w": param("QG_ParamInt", "width", 8, min=8, max=64, step=8),
        "h": param("QG_ParamInt", "height", 8, min=8, max=64, step=8),
        "c": param("QG_ParamInt", "color", 0, min=0, max=0xFFFFFF, step=1),
        "s": param("QG_ParamFloat", "scale", 1.0, min=0.5, max=2.0, step=0.5),
        "m": param("QG_ParamChoice", "method", "area", choices="nearest-exact\nbilinear\narea"),
        "o": param("QG_ParamBool", "open", True),
        "t": param("QG_ParamText", "note", "bench"),
        "seed": param("QG_ParamSeed", "seed", 1, policy="fixed"),
        "image": {
            "class_type": "EmptyImage",
            "inputs": {"width": ["w", 0], "height": ["h", 0], "batch_size": 1, "color": ["c", 0]},
        },
    }
    previous = ["image", 0]
    for i in range(19):
        wf[f"inv{i}"] = {"class_type": "ImageInvert", "inputs": {"image": previous}}
        previous = [f"inv{i}", 0]
    wf["gate"] = {"class_type": "QG_Gate", "inputs": {"value": previous, "open": ["o", 0]}}
    wf["preview"] = {"class_type": "PreviewImage", "_meta": {"title": "image"}, "inputs": {"images": ["gate", 0]}}
    assert len(wf) == 30
    return wf


def drain(client: ComfyClient, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.get("/prompt")["exec_info"]["queue_remaining"] == 0:
            return
        time.sleep(0.01)
    raise TimeoutError("the queue did not drain")


def timed(call) -> tuple[float, object]:
    """(milliseconds, reply) of one call."""
    start = time.perf_counter()
    reply = call()
    return (time.perf_counter() - start) * 1000, reply


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--sweeps", type=int, default=3)
    args = parser.parse_args()
    with ComfyServer(name="bench-template") as server:
        client = ComfyClient(server.url)
        client.request("PUT", f"/qg/templates/{NAME}", {"workflow": template(), "title": "30-node benchmark"})
        graph = template()
        variants = {
            "by name": lambda i: client.request(
                "POST",
                f"/qg/templates/{NAME}/run",
                {"params": {"width": 16, "height": 8, "color": i, "scale": 1.5, "method": "bilinear", "open": True}},
            ),
            "plain": lambda i: client.request("POST", "/prompt", {"prompt": {**graph, "c": _color(graph, i)}}),
        }
        times: dict = {name: [] for name in variants}
        for warmup in range(3):
            for call in variants.values():
                call(warmup)  # also proves both are accepted (an error raises)
                drain(client)
        for i in range(args.rounds):
            order = list(variants)
            random.shuffle(order)
            for name in order:
                times[name].append(timed(lambda n=name, i=i: variants[n](1000 + i))[0])
                drain(client)
        last = client.request("POST", f"/qg/templates/{NAME}/run", {"params": {"color": 7}})["prompt_id"]
        drain(client)
        done = client.get(f"/qg/runs/{last}")
        assert done["status"] == "success" and done["outputs"]["image"]["images"], done
        sweeps = []
        for k in range(args.sweeps):
            body = {"params": {"width": 8}, "sweep": {"color": {"start": 10_000 + 200 * k, "count": 200}}}
            ms, reply = timed(lambda b=body: client.request("POST", f"/qg/templates/{NAME}/sweep", b))
            assert len(reply["items"]) == 200
            sweeps.append(ms / 1000)
            client.request("POST", "/queue", {"clear": True})
            drain(client)
    by_name, plain = statistics.median(times["by name"]), statistics.median(times["plain"])
    sweep = statistics.median(sweeps)
    print(f"30-node template, {args.rounds} rounds, median request latency (send to reply):")
    print(f"  run by name  POST /qg/templates/{NAME}/run  {by_name:7.2f} ms")
    print(f"  plain        POST /prompt (same graph)              {plain:7.2f} ms")
    verdict = "ok" if by_name - plain <= LATENCY_TARGET_MS else "MISSED"
    print(f"  difference   {by_name - plain:+7.2f} ms   (target <= +{LATENCY_TARGET_MS:.0f} ms: {verdict})")
    verdict = "ok" if sweep <= SWEEP_TARGET_S else "MISSED"
    print(
        f"200-item sweep queued in {sweep:.3f} s (median of {args.sweeps}; target <= {SWEEP_TARGET_S:.0f} s: {verdict})"
    )


def _color(graph: dict, i: int) -> dict:
    """The colour parameter node with a new default, so the plain prompt is not served from the cache either."""
    node = graph["c"]
    return {**node, "inputs": {**node["inputs"], "value": i}}


if __name__ == "__main__":
    main()
