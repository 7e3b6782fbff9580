"""What became of a queued prompt (``Run``) and its per-node timing table."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

TERMINAL = ("success", "error")
PROMPT_IDS = uuid.UUID("5d0c8a4e-9a51-4c41-9a3e-2b7f51e0c417")  # the namespace of item prompt ids


def item_prompt_id(sweep_id: str, index: int) -> str:
    """The prompt id of a sweep's item: a canonical UUID string derived from the sweep id and the item's index, the
    same on every attempt and every server (a retry that finds it known was queued before)."""
    return str(uuid.uuid5(PROMPT_IDS, f"{sweep_id}/{index}"))


@dataclass
class Run:
    """One queued prompt and what became of it."""

    prompt_id: str
    server: str
    params: dict = field(default_factory=dict)
    status: str = "pending"  # pending, running, success, error
    outputs: dict = field(default_factory=dict)  # by save node title, as /qg/runs reports them
    error: dict | None = None
    files: list = field(default_factory=list)  # downloaded paths
    timings: list = field(default_factory=list)  # [(node, class_type, title, seconds, cached)]
    index: int = 0  # position in a sweep

    @property
    def done(self) -> bool:
        return self.status in TERMINAL


def collect(server, run: Run, reply: dict) -> None:
    """Fill a finished run from its ``/qg/runs`` reply and the server's websocket timings (``server`` is a
    ``transport.Server``)."""
    run.status = reply["status"]
    run.outputs, run.error = reply.get("outputs") or {}, reply.get("error")
    run.params = reply.get("params") or run.params
    server.events.settle(run.prompt_id)
    times, cached = server.events.timings(run.prompt_id)
    prompt = server.history(run.prompt_id).get("prompt", [None, None, {}])[2]
    rows = [(n, *node_label(prompt, n), s, False) for n, s in times.items()]
    rows += [(n, *node_label(prompt, n), 0.0, True) for n in sorted(cached - set(times))]
    run.timings = sorted(rows, key=lambda r: -r[3])


def images(outputs: dict) -> list:
    """The image entries (filename, subfolder, type) of a run's outputs."""
    return [i for o in outputs.values() if isinstance(o, dict) for i in o.get("images", [])]


def node_label(prompt: dict, node: str) -> tuple[str, str]:
    """(class_type, title) of a node of the prompt (a node id inside an expanded subgraph names its parent)."""
    entry = prompt.get(node) or prompt.get(node.split(".")[0]) or {}
    return entry.get("class_type", "?"), (entry.get("_meta") or {}).get("title", "")


def format_timings(timings: list) -> str:
    """A per-node timing table, slowest first."""
    total = sum(t[3] for t in timings) or 1.0
    lines = [f"{'node':>10}  {'class':<24} {'title':<24} {'seconds':>9} {'share':>6}"]
    for node, kind, title, seconds, cached in timings:
        shown = "cached" if cached else f"{seconds:9.3f}"
        lines.append(f"{node:>10}  {kind[:24]:<24} {title[:24]:<24} {shown:>9} {100 * seconds / total:5.1f}%")
    lines.append(f"{'':>10}  {'total':<24} {'':<24} {total:9.3f}")
    return "\n".join(lines)
