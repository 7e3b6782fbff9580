"""The subgraph blueprints in ``subgraphs/``: each is what ``dev/build_blueprints.py`` made with the frontend's own
"Convert to Subgraph" (a workflow whose only node is the subgraph instance, its definition with a category and a
description), every inner node and link agrees with the live ``/object_info``, ComfyUI lists them at
``GET /global_subgraphs``, and frontend 1.58.1 registers them in its node library and turns one into a prompt."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from browser import NEWEST_FRONTEND
from helpers import read_object_info, spec_inputs, spec_widgets

ROOT = Path(__file__).resolve().parents[1]
BLUEPRINTS = sorted((ROOT / "subgraphs").glob("*.json"))
IDS = [p.stem for p in BLUEPRINTS]
BOUNDARY = (-10, -20)  # the subgraph's input and output nodes in its links
CATEGORY = "Quality Gate"


@pytest.fixture(scope="module")
def object_info(server):
    return read_object_info(server.url)


def definition(path: Path) -> tuple[dict, dict]:
    data = json.loads(path.read_text())
    return data, data["definitions"]["subgraphs"][0]


def test_there_are_blueprints_for_the_loop_and_the_hires_fix():
    assert len(BLUEPRINTS) == 2
    kinds = [{n["type"] for n in definition(p)[1]["nodes"]} for p in BLUEPRINTS]
    assert any({"QG_RetryStart", "QG_RetryEnd", "KSampler", "VAEDecode", "QG_TechnicalScore"} <= k for k in kinds)
    assert any({"QG_Gate", "QG_Compare", "QG_TechnicalScore", "VAEEncode", "KSampler"} <= k for k in kinds)


@pytest.mark.parametrize("path", BLUEPRINTS, ids=IDS)
def test_a_blueprint_is_one_subgraph_node_with_its_definition(path):
    data, sub = definition(path)
    assert len(data["nodes"]) == 1 and data["nodes"][0]["type"] == sub["id"]
    assert len(data["definitions"]["subgraphs"]) == 1
    assert sub["name"] == path.stem and sub["category"] == CATEGORY and len(sub["description"]) > 80
    instance = data["nodes"][0]
    assert [(i["name"], i["type"]) for i in instance["inputs"]] == [(i["name"], i["type"]) for i in sub["inputs"]]
    assert [(o["name"], o["type"]) for o in instance["outputs"]] == [(o["name"], o["type"]) for o in sub["outputs"]]


@pytest.mark.parametrize("path", BLUEPRINTS, ids=IDS)
def test_every_inner_node_and_link_agrees_with_the_live_object_info(path, object_info):
    _, sub = definition(path)
    nodes = {n["id"]: n for n in sub["nodes"]}
    problems = []
    for node in sub["nodes"]:
        spec = object_info.get(node["type"])
        if spec is None:
            problems.append(f"#{node['id']}: unknown node type {node['type']}")
            continue
        names = spec_widgets(spec)
        if len(node.get("widgets_values", [])) != sum(2 if control else 1 for _, control in names):
            problems.append(f"#{node['id']} {node['type']}: widget values do not fit {names}")
        declared = {name: kind for name, kind, _ in spec_inputs(spec)}
        for entry in node["inputs"]:
            if declared.get(entry["name"]) != entry["type"]:
                problems.append(f"#{node['id']}.{entry['name']}: not an input of type {entry['type']}")
        # an ANY output ("*") shows the type it follows on the canvas (js/follow_types.js)
        if not all(d in ("*", o["type"]) for o, d in zip(node["outputs"], spec["output"], strict=True)):
            problems.append(f"#{node['id']}: outputs differ from /object_info")
    for link in sub["links"]:
        origin, target = link["origin_id"], link["target_id"]
        if origin not in BOUNDARY:
            kind = object_info[nodes[origin]["type"]]["output"][link["origin_slot"]]
            if kind not in ("*", link["type"]):
                problems.append(f"link {link['id']}: type {link['type']} but #{origin} gives {kind}")
        if target not in BOUNDARY:
            entry = nodes[target]["inputs"][link["target_slot"]]
            if entry["link"] != link["id"] or entry["type"] not in (link["type"], "*") and link["type"] != "*":
                problems.append(f"link {link['id']}: #{target} input {entry['name']} does not take it")
    boundary_links = {link["id"] for link in sub["links"] if BOUNDARY[0] in (link["origin_id"],)}
    for entry in sub["inputs"]:
        if not set(entry["linkIds"]) <= boundary_links:
            problems.append(f"subgraph input {entry['name']}: links that do not start at the input node")
    assert problems == []


def test_comfyui_lists_the_blueprints(client):
    listed = {e["name"] for e in client.get("/global_subgraphs").values()}
    assert {p.stem for p in BLUEPRINTS} <= listed


@pytest.mark.parametrize("frontend_server", [NEWEST_FRONTEND], indirect=True, ids=["frontend-1.58.1"])
def test_the_newest_frontend_lists_them_and_makes_a_prompt_of_one(page):
    """The node library holds each blueprint under Subgraph Blueprints/Quality Gate; one placed on the
    canvas (the blueprint the frontend's own store hands out) becomes a prompt of its inner nodes, with
    execution ids outer:inner and the blueprint's widget values."""
    listed = page.evaluate(
        """async () => {
            const stores = app.extensionManager._p._s;
            for (let i = 0; i < 100 && ![...stores.get("nodeDef").blueprintNodeDefsByName.values()]
                .some((d) => d.category === "Subgraph Blueprints/Quality Gate"); i++)
                await new Promise((r) => setTimeout(r, 100));
            return [...stores.get("nodeDef").blueprintNodeDefsByName.values()]
                .filter((d) => d.category === "Subgraph Blueprints/Quality Gate")
                .map((d) => ({name: d.name, display: d.display_name, description: d.description}));
        }"""
    )
    assert sorted(d["display"] for d in listed) == sorted(IDS)
    loop = next(d for d in listed if "retry loop" in d["display"])
    output = page.evaluate(
        """async (name) => {
            const blueprint = app.extensionManager._p._s.get("subgraph").getBlueprint(name);
            await app.loadGraphData(blueprint);
            return (await app.graphToPrompt()).output;
        }""",
        loop["name"],
    )
    inner = {k: v for k, v in output.items() if ":" in k}
    kinds = {v["class_type"] for v in inner.values()}
    assert {"QG_RetryStart", "KSampler", "VAEDecode", "QG_TechnicalScore", "QG_RetryEnd"} <= kinds
    end = next(v for v in inner.values() if v["class_type"] == "QG_RetryEnd")
    assert end["inputs"]["threshold"] == 6.0 and end["inputs"]["mode"] == "until_threshold"
    start = next(k for k, v in inner.items() if v["class_type"] == "QG_RetryStart")
    assert end["inputs"]["loop"] == [start, 0]
