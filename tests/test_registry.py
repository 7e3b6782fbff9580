"""The public contract of the pack: ids, names, categories, descriptions, tooltips and a committed snapshot
of every node's inputs and outputs, so that a change to the contract is always deliberate.

Update the snapshot on purpose with: QG_UPDATE_SNAPSHOT=1 .venv/bin/python -m pytest tests/test_registry.py
"""

import ast
import importlib.util
import json
import os
import re
import sys
from pathlib import Path

import pytest
from quality_gate.nodes.registry import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS, NODES

ROOT = Path(__file__).resolve().parents[1]
SNAPSHOT = ROOT / "tests" / "snapshots" / "node_contract.json"


def _type(spec):
    kind = spec[0]
    return list(kind) if isinstance(kind, (list, tuple)) else str(kind)


def contract() -> dict:
    """Every node's id, display name, category, inputs (name -> type or combo options) and outputs."""
    result = {}
    for node, cls in sorted(NODES.items()):
        inputs = cls.INPUT_TYPES()
        result[node] = {
            "display_name": NODE_DISPLAY_NAME_MAPPINGS[node],
            "category": cls.CATEGORY,
            "output_node": bool(getattr(cls, "OUTPUT_NODE", False)),
            "inputs": {
                section: {name: _type(spec) for name, spec in inputs.get(section, {}).items()}
                for section in ("required", "optional")
            },
            "lazy": sorted(
                name
                for section in ("required", "optional")
                for name, spec in inputs.get(section, {}).items()
                if len(spec) > 1 and spec[1].get("lazy")
            ),
            "hidden": dict(inputs.get("hidden", {})),
            "return_types": [str(t) for t in cls.RETURN_TYPES],
            "return_names": list(cls.RETURN_NAMES),
        }
    return result


def test_contract_matches_the_committed_snapshot():
    current = contract()
    if os.environ.get("QG_UPDATE_SNAPSHOT") == "1":
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")
    committed = json.loads(SNAPSHOT.read_text())
    assert current == committed, (
        "the public node contract changed; if that is deliberate, run "
        "QG_UPDATE_SNAPSHOT=1 .venv/bin/python -m pytest tests/test_registry.py and commit the snapshot"
    )


@pytest.mark.parametrize("node", sorted(NODES))
def test_node_metadata(node):
    cls = NODES[node]
    assert re.fullmatch(r"QG_[A-Z][A-Za-z0-9]+", node)
    assert NODE_DISPLAY_NAME_MAPPINGS[node].endswith(" (QG)")
    assert cls.CATEGORY.startswith("quality_gate/")
    assert isinstance(cls.DESCRIPTION, str) and len(cls.DESCRIPTION) > 40
    assert cls.FUNCTION == "execute" and callable(getattr(cls, cls.FUNCTION))
    assert len(cls.RETURN_NAMES) == len(cls.RETURN_TYPES) == len(cls.OUTPUT_TOOLTIPS)
    inputs = cls.INPUT_TYPES()
    for section in ("required", "optional"):
        for name, spec in inputs.get(section, {}).items():
            assert len(spec) == 2 and spec[1].get("tooltip"), f"{node}.{name} has no tooltip"
            if spec[0] in ("INT", "FLOAT"):
                assert {"min", "max", "step", "default"} <= set(spec[1]), f"{node}.{name} needs bounds"


def test_root_exports_the_registry():
    spec = importlib.util.spec_from_file_location(
        "qg_root", ROOT / "__init__.py", submodule_search_locations=[str(ROOT)]
    )
    root = importlib.util.module_from_spec(spec)
    sys.modules["qg_root"] = root  # as ComfyUI does, so the relative imports resolve
    spec.loader.exec_module(root)
    assert root.WEB_DIRECTORY == "./js" and (ROOT / "js").is_dir()
    assert set(root.NODE_CLASS_MAPPINGS) == set(NODE_CLASS_MAPPINGS) == set(root.NODE_DISPLAY_NAME_MAPPINGS)
    assert {k: v.__name__ for k, v in root.NODE_CLASS_MAPPINGS.items()} == {
        k: v.__name__ for k, v in NODE_CLASS_MAPPINGS.items()
    }


def test_js_ids_match_the_registry():
    text = (ROOT / "js" / "ids.js").read_text()
    listed = re.findall(r'"(QG_[A-Za-z0-9]+)"', text)
    assert listed == list(NODES)


def test_requirements_match_pyproject():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    requirements = [
        line.strip()
        for line in (ROOT / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert project["project"]["dependencies"] == requirements
    assert re.fullmatch(r"\d+\.\d+\.\d+", project["project"]["version"])
    comfy = project["tool"]["comfy"]
    assert {"PublisherId", "DisplayName", "Icon", "requires-comfyui"} <= set(comfy)
    assert project["project"]["urls"]["Repository"]


def third_party_imports(paths) -> set:
    imported = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                imported.add(node.module.split(".")[0])
    return imported - set(sys.stdlib_module_names) - {"__future__", "client"}


def test_the_client_groups_declare_what_the_client_imports():
    """Every third-party module the client package imports is in the ``client`` optional-dependencies group; the
    Dask engine (client/dask_engine.py, the only module importing distributed) in the ``dask`` group."""
    import tomllib

    distributions = {"websocket": "websocket-client", "tqdm": "tqdm"}  # import name -> distribution name
    engine = ROOT / "client" / "dask_engine.py"
    core = third_party_imports(p for p in (ROOT / "client").glob("*.py") if p != engine)
    assert core == set(distributions), core
    groups = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert sorted(re.split(r"[<>=!~ ;\[]", spec)[0] for spec in groups["client"]) == sorted(distributions.values())
    # dask and click come with distributed (its own requirements)
    assert third_party_imports([engine]) == {"distributed", "dask", "click"}
    assert [re.split(r"[<>=!~ ;\[]", spec)[0] for spec in groups["dask"]] == ["distributed"]


COMFY_INTERNALS = {"server", "execution", "comfy_execution", "nodes", "folder_paths", "comfy", "comfy_api"}


def test_only_the_host_adapter_imports_comfyuis_internals():
    """Every import of ComfyUI's own modules (at any depth of a function) is in nodes/host.py; the pack's own
    ``nodes`` package is reached by relative imports only, so an absolute ``nodes`` is ComfyUI's."""
    offenders = []
    for path in sorted(ROOT.glob("nodes/**/*.py")) + [ROOT / "__init__.py"]:
        if path == ROOT / "nodes" / "host.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            else:
                continue
            offenders += [f"{path.relative_to(ROOT)}: {n}" for n in names if n.split(".")[0] in COMFY_INTERNALS]
    assert not offenders, offenders
    host = (ROOT / "nodes" / "host.py").read_text()
    assert "comfy_execution" in host and "folder_paths" in host  # the check looks where the imports really are


def test_the_server_exports_every_node(client):
    info = client.get("/object_info")
    ours = {k: v for k, v in info.items() if k.startswith("QG_")}
    assert set(ours) == set(NODES)
    for node, entry in ours.items():
        assert entry["display_name"] == NODE_DISPLAY_NAME_MAPPINGS[node]
        assert entry["category"].startswith("quality_gate/") and entry["description"]
        assert entry["python_module"] == "custom_nodes.quality_gate"
        assert entry["output_name"] == list(NODES[node].RETURN_NAMES)
        for section in ("required", "optional"):
            for name, spec in entry["input"].get(section, {}).items():
                assert spec[1].get("tooltip"), f"{node}.{name}"
