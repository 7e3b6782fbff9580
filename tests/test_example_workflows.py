"""Every API-format example workflow against the live server's /object_info: known node types, every
required input given, constants within the declared bounds and choices, every link to an existing output of
a matching type. Model file names are not checked (the files are the user's).

A pack template may wrap the workflow as ``{"title", "description", "workflow"}``; the workflow is checked.
"""

import json
from pathlib import Path

import pytest
from quality_gate.nodes.core.loop import find_body

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "example_workflows" / "api").glob("*.json"))
MODEL_FILES = (".safetensors", ".ckpt", ".pt", ".pth", ".bin")


@pytest.fixture(scope="module")
def object_info(server):
    from harness import ComfyClient

    client = ComfyClient(server.url)
    info = client.get("/object_info")
    client.close()
    return info


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
    data = json.loads(path.read_text())
    workflow = data["workflow"] if isinstance(data.get("workflow"), dict) else data
    assert _problems(workflow, object_info) == []


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
