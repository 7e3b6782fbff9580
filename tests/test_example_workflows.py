"""Every API-format example workflow against the live server's /object_info: known node types, every
required input given, constants within the declared bounds and choices, every link to an existing output of
a matching type. Model file names are not checked (the files are the user's).

Every API-format example is a plain API prompt ``{node id: {class_type, inputs}}`` (what third-party clients and
linters read); the pack's run-by-name templates (``templates/*.json``, ``{"title", "description", "workflow"}``) hold
the same workflow as the API example of the same name, and are checked the same way.

Every UI-format example (``example_workflows/*.json``, LiteGraph 0.4) is well formed and gives exactly its API
twin when converted the way the frontend's graphToPrompt does it (widgets from the live /object_info, in order,
skipping the "control after generate" values; then the links; seen in Chromium, frontend 1.58.1 gives exactly
this, and 1.32.9 adds only ``"preview": ""`` to PreviewAny, its display widget, which the server ignores). The
committed files are what ``dev/build_examples.py`` writes, and its node table agrees with /object_info.
"""

import json
from pathlib import Path

import pytest
from helpers import WIDGET_TYPES, read_object_info, spec_inputs, spec_widgets
from quality_gate.nodes.core.loop import find_body

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "example_workflows" / "api").glob("*.json"))
UI_FILES = sorted((ROOT / "example_workflows").glob("*.json"))
TEMPLATES = sorted((ROOT / "templates").glob("*.json"))

MODEL_FILES = (".safetensors", ".ckpt", ".pt", ".pth", ".bin")


@pytest.fixture(scope="module")
def object_info(server):
    return read_object_info(server.url)


def _types_match(received: str, declared) -> bool:
    if isinstance(declared, list):  # a combo: ComfyUI takes a link into it when the value is a string
        return received in ("*", "STRING", "COMBO")
    if "*" in (received, declared) or received == declared:
        return True
    return bool(set(received.split(",")) & set(declared.split(",")))


def _problems(workflow: dict, object_info: dict) -> list[str]:
    problems = []
    for node_id, node in workflow.items():
        spec = object_info.get(node["class_type"])
        if spec is None:
            problems.append(f"#{node_id}: unknown node type {node['class_type']}")
            continue
        declared = {**spec["input"].get("required", {}), **spec["input"].get("optional", {})}
        for name in spec["input"].get("required", {}):
            if name not in node["inputs"]:
                problems.append(f"#{node_id} {node['class_type']}: required input {name} missing")
        for name, value in node["inputs"].items():
            if name not in declared:
                problems.append(f"#{node_id} {node['class_type']}: unknown input {name}")
                continue
            kind, options = declared[name][0], (declared[name][1] if len(declared[name]) > 1 else {})
            if isinstance(value, list):  # a link
                source = workflow.get(value[0])
                if source is None:
                    problems.append(f"#{node_id}.{name}: link to missing node {value[0]}")
                    continue
                outputs = object_info[source["class_type"]]["output"]
                if value[1] >= len(outputs) or not _types_match(outputs[value[1]], kind):
                    problems.append(f"#{node_id}.{name}: link {value} does not give {kind}")
            elif isinstance(kind, list):
                if value not in kind and not str(value).endswith(MODEL_FILES):
                    problems.append(f"#{node_id}.{name}: {value!r} is not one of {kind}")
            elif kind in ("INT", "FLOAT"):
                low, high = options.get("min", -float("inf")), options.get("max", float("inf"))
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
                    problems.append(f"#{node_id}.{name}: {value!r} is not a {kind} in {low}..{high}")
                elif kind == "INT" and not isinstance(value, int):
                    problems.append(f"#{node_id}.{name}: {value!r} is not an INT")
    return problems


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_matches_the_live_object_info(path, object_info):
    assert _problems(json.loads(path.read_text()), object_info) == []


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_api_example_is_a_plain_api_prompt(path):
    prompt = json.loads(path.read_text())
    assert isinstance(prompt, dict) and prompt
    for node_id, node in prompt.items():
        assert isinstance(node, dict), f"{path.name}: {node_id!r} is not a node"
        assert isinstance(node.get("class_type"), str), f"{path.name}: {node_id!r} has no class_type"
        assert isinstance(node.get("inputs"), dict), f"{path.name}: {node_id!r} has no inputs"


def test_pack_templates_wrap_their_api_example():
    assert [p.name for p in TEMPLATES] == ["template_batch_txt2img.json", "template_solid_image.json"]
    for path in TEMPLATES:
        template = json.loads(path.read_text())
        assert sorted(template) == ["description", "title", "workflow"] and template["title"], path.name
        assert template["workflow"] == json.loads((ROOT / "example_workflows" / "api" / path.name).read_text())


def test_retry_example_runs_only_sampling_and_scoring_per_attempt(object_info):
    workflow = json.loads((EXAMPLES[0].parent / "retry_until_quality.json").read_text())
    kinds = {node["class_type"]: node_id for node_id, node in workflow.items()}
    body = find_body(
        workflow.__getitem__,
        list(workflow),
        kinds["QG_RetryStart"],
        kinds["QG_RetryEnd"],
        lambda class_type: object_info.get(class_type, {}).get("output_node", False),
    )
    assert sorted(workflow[n]["class_type"] for n in body.nodes) == ["KSampler", "QG_TechnicalScore", "VAEDecode"]
    assert workflow[kinds["SaveImage"]]["inputs"]["images"] == [kinds["QG_RetryEnd"], 0]


def graph_to_prompt(workflow: dict, object_info: dict) -> dict:
    """What the frontend queues for a UI workflow: every widget's value by name, then each linked input."""
    links = {link[0]: link for link in workflow["links"]}
    prompt = {}
    for node in workflow["nodes"]:
        names = spec_widgets(object_info[node["type"]])
        values, inputs = list(node["widgets_values"]), {}
        assert len(values) == sum(2 if control else 1 for _, control in names), (node["id"], node["type"])
        for name, control in names:
            inputs[name] = values.pop(0)
            if control:
                assert values.pop(0) in ("fixed", "increment", "decrement", "randomize"), (node["id"], name)
        for entry in node["inputs"]:
            if entry.get("link") is not None:
                _, origin, slot, *_ = links[entry["link"]]
                inputs[entry["name"]] = [str(origin), slot]
        prompt[str(node["id"])] = {"class_type": node["type"], "_meta": {"title": node["title"]}, "inputs": inputs}
    return prompt


def _wellformed(workflow: dict, object_info: dict) -> list[str]:
    problems = []
    nodes = {node["id"]: node for node in workflow["nodes"]}
    if workflow.get("version") != 0.4 or len(nodes) != len(workflow["nodes"]):
        problems.append("not a LiteGraph 0.4 workflow with unique node ids")
    if workflow["last_node_id"] < max(nodes) or workflow["last_link_id"] < max(
        (link[0] for link in workflow["links"]), default=0
    ):
        problems.append("last_node_id / last_link_id below the ids used")
    for link_id, origin, slot, target, target_slot, kind in workflow["links"]:
        output = nodes[origin]["outputs"][slot]
        if link_id not in (output["links"] or []) or output["type"] != kind:
            problems.append(f"link {link_id}: not listed on #{origin} output {slot} or of another type")
        if nodes[target]["inputs"][target_slot]["link"] != link_id:
            problems.append(f"link {link_id}: #{target} input {target_slot} does not hold it")
    listed = {link[0] for link in workflow["links"]}
    for node in workflow["nodes"]:
        spec = object_info[node["type"]]
        if [(o["name"], o["type"]) for o in node["outputs"]] != list(
            zip(spec["output_name"], spec["output"], strict=True)
        ):
            problems.append(f"#{node['id']}: outputs differ from /object_info")
        declared = {name: kind for name, kind, _ in spec_inputs(spec)}
        for entry in node["inputs"]:
            if declared.get(entry["name"]) != entry["type"] or (
                entry["link"] is not None and entry["link"] not in listed
            ):
                problems.append(f"#{node['id']}.{entry['name']}: unknown input, other type or dangling link")
            if entry["type"] in WIDGET_TYPES and "widget" in entry and entry["widget"] != {"name": entry["name"]}:
                problems.append(f"#{node['id']}.{entry['name']}: widget input names another widget")
        x, y = node["pos"]
        inside = [
            g["title"]
            for g in workflow["groups"]
            if g["bounding"][0] <= x
            and g["bounding"][1] <= y
            and x + node["size"][0] <= g["bounding"][0] + g["bounding"][2]
            and y + node["size"][1] <= g["bounding"][1] + g["bounding"][3]
        ]
        if len(inside) != 1:
            problems.append(f"#{node['id']} {node['title']}: in groups {inside}, not in exactly one")
    return problems


def test_every_api_example_has_a_ui_twin_and_back():
    assert [p.name for p in UI_FILES] == [p.name for p in EXAMPLES]


@pytest.mark.parametrize("path", UI_FILES, ids=[p.stem for p in UI_FILES])
def test_ui_example_has_a_jpg_thumbnail(path):
    from PIL import Image

    thumbnail = path.with_suffix(".jpg")
    assert thumbnail.is_file(), "no thumbnail: run .venv/bin/python dev/screenshot.py thumbnails"
    with Image.open(thumbnail) as image:
        assert image.format == "JPEG" and min(image.size) >= 200


@pytest.mark.parametrize("path", UI_FILES, ids=[p.stem for p in UI_FILES])
def test_ui_example_is_wellformed_and_gives_its_api_twin(path, object_info):
    workflow = json.loads(path.read_text())
    assert _wellformed(workflow, object_info) == []
    assert {g["title"] for g in workflow["groups"]} >= {"Post-processing"}
    twin = json.loads((path.parent / "api" / path.name).read_text())
    assert graph_to_prompt(workflow, object_info) == twin


def test_committed_examples_are_the_generators_output():
    import build_examples

    files = build_examples.build()
    on_disk = {str(p.relative_to(ROOT)) for p in UI_FILES + EXAMPLES + TEMPLATES}
    assert sorted(files) == sorted(on_disk)
    stale = [name for name, text in files.items() if (ROOT / name).read_text() != text]
    assert stale == [], "run .venv/bin/python dev/build_examples.py"


def test_generator_node_table_matches_the_live_object_info(object_info):
    import build_examples

    for class_type in build_examples.SPECS:
        inputs, outputs = build_examples.spec(class_type)
        spec = object_info[class_type]
        widgets = dict(spec_widgets(spec))
        expected = [(name, kind, name in widgets, widgets.get(name, False)) for name, kind, _ in spec_inputs(spec)]
        assert [(s.name, s.type, s.widget, s.control) for s in inputs] == expected, class_type
        assert outputs == list(zip(spec["output_name"], spec["output"], strict=True)), class_type
