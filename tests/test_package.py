"""The Comfy Registry archive as the official tool builds it: comfy-cli (pinned, in a scratch venv under
``.qg-run/``, never a project requirement) runs ``comfy node validate`` and ``comfy node pack`` on a clone of
HEAD, in a git checkout and outside one (where only ``.comfyignore`` keeps caches out), with local junk of the
kinds a developer's tree holds. The archive is checked file by file, then unpacked on its own into a real
ComfyUI, which must register every node of the registry and list the pack's subgraph blueprints."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from harness import ROOT, ComfyClient, ComfyServer
from quality_gate.nodes.registry import NODES

COMFY_CLI = "comfy-cli==1.23.0"
VENV = ROOT / ".qg-run" / "comfy-cli"
MAX_BYTES = 2 * 2**20
WEIGHTS = (".safetensors", ".ckpt", ".pt", ".pth", ".bin")
DEV_ONLY = ("tests/", "dev/", ".ci/", ".github/")
MUST_SHIP = (
    "__init__.py",
    "pyproject.toml",
    "requirements.txt",
    "README.md",
    "LICENSE",
    "CHANGELOG.md",
    "docs/icon.svg",
    "nodes/registry.py",
    "nodes/core/score.py",
    "js/ids.js",
    "client/__init__.py",
    "example_workflows/retry_until_quality.json",
)
# What a working tree collects: caches, bytecode, downloaded weights, build output (none of it tracked by git).
JUNK = (
    ".qg-cache/random_sd15.safetensors",
    ".qg-run/scratch/log.txt",
    "nodes/__pycache__/score.cpython-311.pyc",
    "nodes/core/__pycache__/hf.cpython-311.pyc",
    "open_clip_model.safetensors",
    "build/lib/quality_gate/__init__.py",
    "dist/quality_gate-0.3.0.tar.gz",
    ".venv/bin/python",
    "node_modules/x/index.js",
)


@pytest.fixture(scope="module")
def comfy_cli() -> Path:
    """The pinned comfy-cli in its own venv, installed once and kept between runs (from PyPI)."""
    marker = VENV / "installed.txt"
    if not marker.is_file() or marker.read_text() != COMFY_CLI:
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True, timeout=300)
        pip = [str(VENV / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        subprocess.run([*pip, COMFY_CLI], check=True, timeout=900)
        marker.write_text(COMFY_CLI)
    return VENV / "bin" / "comfy"


def comfy(cli: Path, folder: Path, *args: str) -> str:
    done = subprocess.run(
        [str(cli), "--skip-prompt", "--no-enable-telemetry", *args],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"comfy {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr  # comfy-cli prints its verdicts on stderr


def with_junk(folder: Path) -> Path:
    for name in JUNK:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x = 1\n" if path.suffix in (".py", ".js") else b"\0" * 4096)
    return folder


@pytest.fixture(scope="module")
def checkouts(tmp_path_factory) -> dict[str, Path]:
    """HEAD as a git clone and as a plain copy of the same files (no .git), both with a developer's junk."""
    base = tmp_path_factory.mktemp("package")
    clone = base / "git" / "quality_gate"
    subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(ROOT), str(clone)], check=True, timeout=120)
    plain = base / "plain" / "quality_gate"
    shutil.copytree(clone, plain, ignore=shutil.ignore_patterns(".git"))
    return {"git": with_junk(clone), "plain": with_junk(plain)}


@pytest.fixture(scope="module")
def archives(comfy_cli, checkouts) -> dict[str, Path]:
    built = {}
    for kind, folder in checkouts.items():
        comfy(comfy_cli, folder, "node", "pack")
        built[kind] = folder / "node.zip"
    return built


def test_comfy_node_validate_passes(comfy_cli, checkouts):
    said = comfy(comfy_cli, checkouts["git"], "node", "validate")
    assert "All validation checks passed" in said and "Security warnings" not in said, said


@pytest.mark.parametrize("kind", ["git", "plain"])
def test_the_archive_holds_the_pack_and_nothing_else(archives, kind):
    archive = archives[kind]
    names = zipfile.ZipFile(archive).namelist()
    assert archive.stat().st_size < MAX_BYTES, f"{archive.stat().st_size} bytes"
    assert [n for n in names if n.endswith((".pyc", ".pyo")) or "__pycache__/" in n] == []
    assert [n for n in names if n.lower().endswith(WEIGHTS)] == []
    assert [n for n in names if n.startswith(DEV_ONLY)] == []
    assert [n for n in names if n.startswith((".qg-cache/", ".qg-run/", ".venv/", "build/", "dist/"))] == []
    assert [n for n in names if n.startswith("node_modules/") or n.endswith((".zip", ".tar.gz"))] == []
    missing = [n for n in MUST_SHIP if n not in names]
    assert missing == [], f"not in the archive: {missing}"
    assert any(n.startswith("subgraphs/") and n.endswith(".json") for n in names), "no subgraph blueprints"


def test_both_ways_of_packing_give_the_same_files(archives):
    """Outside git, .comfyignore alone must keep out what git does not track."""
    git, plain = (set(zipfile.ZipFile(archives[k]).namelist()) for k in ("git", "plain"))
    assert plain - git == set() and git - plain == set()


def test_the_unpacked_archive_loads_into_comfyui_on_its_own(archives, tmp_path):
    """The archive unpacked as the only copy of the pack: it imports (the harness fails on any import error),
    registers every node id of the registry, and ComfyUI lists its subgraph blueprints."""
    pack = tmp_path / "quality_gate"
    zipfile.ZipFile(archives["git"]).extractall(pack)
    with ComfyServer(workdir=tmp_path / "srv", pack=pack, name="package") as server:
        client = ComfyClient(server.url)
        info = client.get("/object_info")
        assert sorted(n for n in info if n.startswith("QG_")) == sorted(NODES)
        blueprints = client.get("/global_subgraphs")
        shipped = {p.stem for p in (pack / "subgraphs").glob("*.json")}
        listed = {e["name"] for e in blueprints.values() if e["info"]["node_pack"] == "custom_nodes.quality_gate"}
        assert shipped and listed == shipped
        client.close()
