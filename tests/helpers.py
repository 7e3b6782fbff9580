"""Helpers for the server tests: a prompt builder and readers for what the test nodes recorded."""

from __future__ import annotations

import uuid

from harness import ComfyClient


class Graph:
    """A small builder for API-format prompts. Probe labels get a per-graph salt, so caches never carry a
    result from one test (or cache mode) to another and counts are this graph's own."""

    def __init__(self, id_prefix: str = ""):
        self.nodes: dict[str, dict] = {}
        self.salt = uuid.uuid4().hex[:10]
        self.id_prefix = id_prefix  # e.g. "12:" for ids like the frontend's subgraph nodes

    def add(self, class_type: str, **inputs) -> str:
        node = f"{self.id_prefix}{len(self.nodes) + 1}"
        self.nodes[node] = {"class_type": class_type, "inputs": inputs}
        return node

    @staticmethod
    def out(node: str, slot: int = 0) -> list:
        return [node, slot]

    def label(self, name: str) -> str:
        return f"{name}-{self.salt}"

    def json(self, text: str) -> list:
        return self.out(self.add("QGTest_Json", json=text))

    def probe(self, name: str, value=None, delay: float = 0.0) -> list:
        inputs = {"label": self.label(name), "delay": delay}
        if value is not None:
            inputs["value"] = value
        return self.out(self.add("QGTest_Probe", **inputs))

    def record(self, value, name: str = "out") -> str:
        return self.add("QGTest_Record", label=self.label(name), value=value)

    def counts(self, client: ComfyClient) -> dict:
        """Executions per probe/record name in this graph."""
        prefix = f"-{self.salt}"
        return {k[: -len(prefix)]: v for k, v in client.get("/qgtest/counts").items() if k.endswith(prefix)}


def run_ok(client: ComfyClient, graph, timeout: float = 300):
    """Run a graph (a ``Graph`` or its nodes) and require success."""
    result = client.run(getattr(graph, "nodes", graph), timeout=timeout)
    assert result.status == "success", result.error
    return result


def batch_of(graph, *links):
    """One IMAGE batch of several IMAGE links (ComfyUI's ImageBatch, two at a time)."""
    out = links[0]
    for link in links[1:]:
        out = graph.out(graph.add("ImageBatch", image1=out, image2=link))
    return out


def report_of(result, node: str) -> dict:
    """The score report a score node showed (its ``qg_scores`` UI)."""
    return result.outputs[node]["qg_scores"][0]


def recorded(result, node: str):
    """The value a QGTest_Record node received, as JSON (tensors as {"tensor": shape, "sum": ...})."""
    return result.outputs[node]["qg_record"][0]["value"]


# ---------------------------------------------------------------- node specs as the frontend reads them

WIDGET_TYPES = ("INT", "FLOAT", "STRING", "BOOLEAN", "COMBO")


def read_object_info(url: str) -> dict:
    client = ComfyClient(url)
    try:
        return client.get("/object_info")
    finally:
        client.close()


def spec_inputs(spec: dict) -> list[tuple[str, str, dict]]:
    """(name, type, options) of a node's inputs in the frontend's order (``input_order``: required, then optional);
    a combo's type is COMBO."""
    declared = {**spec["input"].get("required", {}), **spec["input"].get("optional", {})}
    order = spec.get("input_order") or {k: list(spec["input"].get(k, {})) for k in ("required", "optional")}
    rows = []
    for name in order.get("required", []) + order.get("optional", []):
        kind, options = declared[name][0], (declared[name][1] if len(declared[name]) > 1 else {})
        rows.append((name, "COMBO" if isinstance(kind, list) else kind, options))
    return rows


def spec_widgets(spec: dict) -> list[tuple[str, bool]]:
    """(name, has a control value) of every widget the frontend builds for a node, in order: widget types that are
    not forceInput; an INT gets a "control after generate" value when declared so, or by default when named seed or
    noise_seed (the frontend's rule)."""
    rows = []
    for name, kind, options in spec_inputs(spec):
        if kind not in WIDGET_TYPES or options.get("forceInput"):
            continue
        default = kind == "INT" and name in ("seed", "noise_seed")
        rows.append((name, bool(options.get("control_after_generate", default))))
    return rows
