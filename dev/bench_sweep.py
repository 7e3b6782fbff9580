"""Benchmark: a sweep spread over 1 and over 3 ComfyUI servers on the client's Dask engine, side by side in one run.

Every prompt costs a fixed sleep (the test pack's ``QGTest_Probe`` with ``delay``), so the 2 cores are not the
limit. The baseline is the same sweep queued by one server itself (``POST /qg/templates/<name>/sweep``: no
engine between prompts, only ComfyUI's own per-prompt cost); the ideal wall time over N servers is the baseline's
divided by N, and the engine's overhead per item is ``(wall - baseline / N) / items`` (servers left idle while the
engine hands out work or collects it, start and tail included). Each prompt's execution time (``execution_start``
to ``execution_success`` in its ``/history``) is shown too.

Targets: throughput with 3 servers at least 2.7x one (0.9 N); engine overhead at most 5 ms per item.
The thread-loop fan-out this engine replaced was measured the same way before it was removed (``--engine thread``
at the commit before the Dask engine); its figures are printed beside (docs/benchmarks.md#sweeps-over-servers).

Usage: .venv/bin/python dev/bench_sweep.py [--items 90] [--delay 0.1] [--per-server 2] [--rounds 3]
"""

from __future__ import annotations

import argparse
import random
import sys
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import ROOT, ComfyServer, Server, sleep_template  # noqa: E402

from client import Client  # noqa: E402

NAME = "bench_sleep"
RATIO_TARGET = 2.7
OVERHEAD_TARGET_MS = 5.0
# The thread-loop fan-out (client/fanout.py, removed), measured by this script before the Dask engine replaced it:
# 90 items of 0.1 s, per_server 2, on this 2-core machine.
OLD_FAN_OUT = {"ratio": 2.58, "overhead_ms_1": 120.9, "overhead_ms_3": 52.5}


def busy_seconds(runs: list) -> float:
    """Sum of the prompts' execution times, from the servers' histories."""
    total = 0.0
    for run in runs:
        messages = dict(Server(run.server).history(run.prompt_id)["status"]["messages"])
        total += (messages["execution_success"]["timestamp"] - messages["execution_start"]["timestamp"]) / 1000
    return total


def measure(urls: list, items: int, per_server: int, engine: str | None) -> dict:
    kwargs = {} if engine is None else {"engine": engine}
    with Client(urls, **kwargs) as qg:
        if engine == "server":  # the baseline: the one server queues the whole sweep itself
            sweep = lambda values: qg.sweep(NAME, {"n": values})  # noqa: E731
        elif engine is None:  # the old thread loop: its fan_out, also over one server
            sweep = lambda values: qg.fan_out(NAME, [{"n": v} for v in values], per_server=per_server)  # noqa: E731
        else:
            sweep = lambda values: qg.sweep(NAME, {"n": values}, per_server=per_server)  # noqa: E731
        sweep(list(range(10**6, 10**6 + 2 * len(urls))))  # warm up
        start = time.perf_counter()
        runs = sweep(list(range(items)))
        wall = time.perf_counter() - start
    assert [r.status for r in runs] == ["success"] * items, [r.status for r in runs]
    assert [r.outputs["n"]["qg_record"][0]["value"] for r in runs] == list(range(items))
    return {"wall": wall, "throughput": items / wall, "busy_per_item_ms": 1000 * busy_seconds(runs) / items}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=90)
    parser.add_argument("--delay", type=float, default=0.1, help="seconds each prompt sleeps")
    parser.add_argument("--per-server", type=int, default=2, help="our prompts each server holds at once")
    parser.add_argument("--rounds", type=int, default=3, help="each configuration's best of this many rounds")
    parser.add_argument("--engine", default="dask", help="'thread' measures the old fan-out (before its removal)")
    args = parser.parse_args()
    servers = [ComfyServer(node_roots=[ROOT / "tests" / "comfy_nodes"], name=f"bench{i}") for i in range(3)]
    threads = [threading.Thread(target=s.start) for s in servers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        label = uuid.uuid4().hex
        for s in servers:
            Server(s.url).request("PUT", f"/qg/templates/{NAME}", {"workflow": sleep_template(label, args.delay)})
        engine = None if args.engine == "thread" else args.engine
        configs = {
            "base": ([servers[0].url], "server"),
            "one": ([servers[0].url], engine),
            "three": ([s.url for s in servers], engine),
        }
        best: dict = {}
        for _ in range(args.rounds):  # in a new random order per round; the best round of each (a shared machine)
            for key in random.sample(list(configs), len(configs)):
                result = measure(*configs[key][:1], args.items, args.per_server, configs[key][1])
                if key not in best or result["wall"] < best[key]["wall"]:
                    best[key] = result
        base, one, three = best["base"], best["one"], best["three"]
    finally:
        for s in servers:
            s.cleanup()
    ratio = three["throughput"] / one["throughput"]
    for n, r in ((1, one), (3, three)):
        r["overhead_ms"] = 1000 * (r["wall"] - base["wall"] / n) / args.items
    print(
        f"{args.items} items of {args.delay * 1000:.0f} ms sleep, {args.per_server} per server, engine {args.engine}, "
        f"best of {args.rounds} rounds"
    )
    print(f"{'':>22} {'wall s':>8} {'items/s':>8} {'exec ms/item':>13} {'overhead ms/item':>17}")
    print(f"{'1 server, queued':>22} {base['wall']:8.2f} {base['throughput']:8.2f} {base['busy_per_item_ms']:13.1f}")
    for n, r in ((1, one), (3, three)):
        label = f"{n} server{'s' if n > 1 else ''}, {args.engine}"
        figures = f"{r['wall']:8.2f} {r['throughput']:8.2f} {r['busy_per_item_ms']:13.1f} {r['overhead_ms']:17.1f}"
        print(f"{label:>22} {figures}")
    overhead = max(one["overhead_ms"], three["overhead_ms"])
    print(f"throughput 3 vs 1: {ratio:.2f}x (target >= {RATIO_TARGET}x)")
    print(f"engine overhead per item: {overhead:.1f} ms at worst (target <= {OVERHEAD_TARGET_MS:g} ms)")
    old = OLD_FAN_OUT
    print(
        f"old thread-loop fan-out (measured before its removal): {old['ratio']:.2f}x, "
        f"overhead {old['overhead_ms_1']:.1f} ms/item with 1 server, {old['overhead_ms_3']:.1f} ms/item with 3"
    )
    ok = ratio >= RATIO_TARGET and overhead <= OVERHEAD_TARGET_MS
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
