"""What became of a queued prompt (``Run``) and its per-node timing table."""

from __future__ import annotations

from dataclasses import dataclass, field

TERMINAL = ("success", "error")


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
