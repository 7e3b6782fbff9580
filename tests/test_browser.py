"""The real frontend in headless Chromium, against both frontend versions (fixture ``page``): the pack's
extensions register, every node of the pack can be created on the canvas with its widgets, and every
UI-format example workflow loads with all its nodes and turns into the same prompt as its API twin."""

import json
import re
from pathlib import Path

import pytest
from helpers import read_object_info, spec_widgets
from quality_gate.nodes.registry import NODES

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "example_workflows"
UI_EXAMPLES = sorted(EXAMPLES.glob("*.json"))


def declared_extensions() -> set[str]:
    """The ``qg.*`` names the files in js/ register."""
    names = set()
    for path in (ROOT / "js").glob("*.js"):
        names |= set(re.findall(r"registerExtension\(\{\s*name:\s*\"(qg\.[A-Za-z]+)\"", path.read_text()))
    return names


def registered_extensions(page) -> list[str]:
    return page.evaluate(
        """() => {
            const fromManager = app.extensionManager?.extensions ?? [];
            const all = [...(app.extensions ?? []), ...fromManager];
            return [...new Set(all.map((e) => e.name))];
        }"""
    )


def test_every_extension_of_the_pack_registers(page):
    registered = {name for name in registered_extensions(page) if name.startswith("qg.")}
    assert registered == declared_extensions()


@pytest.fixture(scope="module")
def object_info(frontend_server):
    return read_object_info(frontend_server.url)


@pytest.mark.parametrize("node_id", list(NODES))
def test_every_node_can_be_created_on_the_canvas(page, object_info, node_id):
    node = page.evaluate(
        """(type) => {
            const node = LiteGraph.createNode(type);
            if (!node) return null;
            app.graph.add(node);
            return {
                type: node.type,
                widgets: (node.widgets ?? []).map((w) => w.name),
                inputs: (node.inputs ?? []).map((i) => i.name),
                outputs: (node.outputs ?? []).map((o) => [o.name, o.type]),
            };
        }""",
        node_id,
    )
    assert node is not None, f"LiteGraph.createNode({node_id}) returned null"
    spec = object_info[node_id]
    assert node["type"] == node_id
    missing = [name for name, _ in spec_widgets(spec) if name not in node["widgets"]]
    assert not missing, f"{node_id}: no widget for {missing} (widgets {node['widgets']})"
    assert [name for name, _ in node["outputs"]] == list(spec["output_name"])


def api_twin(ui_path: Path) -> Path:
    return ui_path.parent / "api" / ui_path.name


# Display-only widgets some frontends send with the prompt and the server ignores: frontend 1.32.9 sends
# PreviewAny's text box as "preview": "" (1.58.1 does not; the API twins hold declared inputs only).
DISPLAY_ONLY = {("PreviewAny", "preview")}


def normalise(prompt: dict) -> dict:
    """API-format prompt without titles and display-only widgets; links as [node id string, slot]."""

    def value(v):
        if isinstance(v, list) and len(v) == 2 and isinstance(v[1], int) and isinstance(v[0], (str, int)):
            return [str(v[0]), v[1]]
        return v

    return {
        str(node_id): {
            "class_type": node["class_type"],
            "inputs": {
                name: value(v) for name, v in node["inputs"].items() if (node["class_type"], name) not in DISPLAY_ONLY
            },
        }
        for node_id, node in prompt.items()
    }


@pytest.mark.parametrize("ui_path", UI_EXAMPLES, ids=[p.stem for p in UI_EXAMPLES])
def test_example_workflow_loads_and_matches_its_api_twin(page, ui_path):
    workflow = json.loads(ui_path.read_text())
    page.load_workflow(workflow)
    loaded = page.evaluate(
        """() => app.graph._nodes.map((n) => ({
            id: String(n.id), type: n.type, known: !!LiteGraph.registered_node_types[n.type],
        }))"""
    )
    by_id = {n["id"]: n for n in loaded}
    for node in workflow["nodes"]:
        found = by_id.get(str(node["id"]))
        assert found is not None, f"{ui_path.name}: node #{node['id']} ({node['type']}) not on the canvas"
        assert found["type"] == node["type"]
    missing = sorted({n["type"] for n in loaded if not n["known"]})
    assert not missing, f"{ui_path.name}: missing node types {missing}"
    twin = api_twin(ui_path)
    assert twin.is_file(), f"{ui_path.name} has no API twin at {twin.relative_to(ROOT)}"
    prompt = page.graph_to_prompt()["output"]
    expected = json.loads(twin.read_text())
    assert normalise(prompt) == normalise(expected)
