"""Helpers on ComfyUI's API-format prompt ``{node id: {"class_type", "inputs", "_meta"?}}`` shared by the loop and
the templates: what a link is, a node's title, and the seed range. Nothing here imports ComfyUI."""

from __future__ import annotations

from typing import Any

SEED_MAX = 0xFFFFFFFFFFFFFFFF  # seeds are 0 .. 2^64 - 1, as KSampler declares them


def is_link(value: Any) -> bool:
    """ComfyUI's link form, exactly as its executor reads it (``graph_utils.is_link``): a two-item list of a node id
    as str and an output index as a number. ``[5, 0]`` and ``("5", 0)`` are constants."""
    return (
        isinstance(value, list) and len(value) == 2 and isinstance(value[0], str) and isinstance(value[1], (int, float))
    )


def title_of(prompt: dict, node: str) -> str:
    """A node's title (``_meta.title``), else its class type, else its id."""
    entry = prompt.get(node) or {}
    meta = entry.get("_meta") if isinstance(entry.get("_meta"), dict) else {}
    return str(meta.get("title") or entry.get("class_type") or node)
