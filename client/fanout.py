"""Spreading runs over several servers: each item goes to the live server with the shortest queue, and the items of
a server that stops answering are queued again on the others.

The interface is the one function ``fan_out``; the rest of the client knows nothing else about scheduling, so a
scheduler (a Dask cluster, say) can take its place. What it needs from the ``runner`` (the ``Client``):
``servers`` and ``dead`` (URLs given up on; it adds to them), ``submit(server, name, params, workflow, index)``
-> Run, ``refresh(run, out_dir)`` -> True when the run ended, ``interrupt(runs)`` and ``raise_listener_errors()``.
"""

from __future__ import annotations

import logging
import time
from collections import deque

from .transport import TimedOut, Unreachable

LOG = logging.getLogger("quality_gate.client")


def fan_out(
    runner,
    name: str | None,
    items: list,
    workflow: dict | None = None,
    out_dir=None,
    per_server: int = 2,
    timeout: float | None = None,
    bar=None,
) -> list:
    """Run every item (a params dict) once, on the live server with the shortest queue, at most ``per_server`` of
    ours at a time on each; the runs in the items' order. A server that stops answering is dropped and its
    unfinished items are queued again elsewhere (a finished item is never re-run). Raises ``TimedOut`` when
    ``timeout`` seconds pass first, ``Unreachable`` when every server is gone."""
    deadline = None if timeout is None else time.monotonic() + timeout
    todo = deque(range(len(items)))
    flying: dict = {}  # index -> Run
    results: list = [None] * len(items)
    try:
        while todo or flying:
            runner.raise_listener_errors()
            if deadline is not None and time.monotonic() > deadline:
                left = len(todo) + len(flying)
                raise TimedOut(f"{left} run(s) did not finish within {timeout:g} s", list(flying.values()))
            alive = [s for s in runner.servers if s.url not in runner.dead]
            if not alive:
                raise Unreachable(f"every server is unreachable; {len(todo) + len(flying)} item(s) not run")
            _dispatch(runner, alive, todo, flying, items, name, workflow, per_server)
            for index, run in list(flying.items()):
                try:
                    finished = runner.refresh(run, out_dir)
                except Unreachable:
                    _drop(runner, run.server, todo, flying)
                    continue
                if finished:
                    results[index] = flying.pop(index)
                    if bar is not None:
                        bar.update(1)
            time.sleep(0.2)
        runner.raise_listener_errors()
    except KeyboardInterrupt:
        runner.interrupt(list(flying.values()))
        raise
    return results


def _dispatch(runner, alive, todo, flying, items, name, workflow, per_server) -> None:
    ours = {s.url: 0 for s in alive}
    for run in flying.values():
        ours[run.server] = ours.get(run.server, 0) + 1
    lengths = {}
    for server in alive:
        try:
            lengths[server.url] = server.queue_length()
        except Unreachable:
            _drop(runner, server.url, todo, flying)
    while todo:
        open_servers = [s for s in alive if s.url in lengths and ours[s.url] < per_server]
        if not open_servers:
            return
        server = min(open_servers, key=lambda s: (lengths[s.url], ours[s.url]))
        index = todo.popleft()
        try:
            flying[index] = runner.submit(server, name, items[index], workflow, index)
        except Unreachable:
            todo.appendleft(index)
            _drop(runner, server.url, todo, flying)
            lengths.pop(server.url, None)
            continue
        ours[server.url] += 1
        lengths[server.url] += 1


def _drop(runner, url: str, todo: deque, flying: dict) -> None:
    if url in runner.dead:
        return
    runner.dead.add(url)
    lost = sorted(i for i, run in flying.items() if run.server == url)
    for index in reversed(lost):
        del flying[index]
        todo.appendleft(index)
    LOG.warning("%s is unreachable; re-queueing its %d unfinished item(s) on the other servers", url, len(lost))
