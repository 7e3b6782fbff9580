"""Run status: the ``/qg/runs`` reply for a prompt from ComfyUI's history, outputs keyed by save node title."""

from __future__ import annotations

from ..prompt import title_of


def outputs_by_title(prompt: dict, outputs: dict, meta: dict | None = None) -> dict:
    """History outputs keyed by the save node's title (``"<title> #<id>"`` where titles repeat)."""
    meta = meta or {}
    titles = {}
    for node in outputs:
        shown = (meta.get(node) or {}).get("display_node") or node
        titles[node] = title_of(prompt, shown) if shown in prompt else str(node)
    counts: dict[str, int] = {}
    for title in titles.values():
        counts[title] = counts.get(title, 0) + 1
    return {(t if counts[t] == 1 else f"{t} #{node}"): outputs[node] for node, t in titles.items()}


def summarize_history(entry: dict) -> dict:
    """``/qg/runs`` reply for a finished prompt from its history entry."""
    prompt_tuple = entry.get("prompt") or [None, None, {}, {}, []]
    prompt, extra = prompt_tuple[2] or {}, prompt_tuple[3] or {}
    status = entry.get("status") or {}
    reply = {
        "status": "success" if status.get("status_str") == "success" else "error",
        "outputs": outputs_by_title(prompt, entry.get("outputs") or {}, entry.get("meta")),
        **run_record(extra),
    }
    for kind, data in status.get("messages") or []:
        if kind in ("execution_error", "execution_interrupted"):
            reply["error"] = {
                "type": kind,
                "node": data.get("node_id"),
                "node_type": data.get("node_type"),
                "message": data.get("exception_message", "interrupted"),
            }
    return reply


def run_record(extra: dict) -> dict:
    record = extra.get("qg") if isinstance(extra, dict) else None
    if not isinstance(record, dict):
        return {"params": None}
    return {k: v for k, v in record.items() if k in ("template", "params", "batch_id")}
