"""Fixtures: the pack importable as ``quality_gate`` (for unit tests), and real ComfyUI servers.

The pack root has an ``__init__.py`` that ComfyUI imports; tests import the pack's modules through an
empty ``quality_gate`` package object instead, so no ComfyUI module is needed for the plain logic.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TEST_NODES = ROOT / "tests" / "comfy_nodes"
sys.path.insert(0, str(ROOT / "dev"))

if "quality_gate" not in sys.modules:
    package = types.ModuleType("quality_gate")
    package.__path__ = [str(ROOT)]
    sys.modules["quality_gate"] = package

from harness import CACHE_MODES, ComfyClient, ComfyServer  # noqa: E402
from helpers import Graph  # noqa: E402


def _server(tmp_path_factory, name: str, extra_args) -> ComfyServer:
    """A started server; its ``name`` is the cache mode for the per-mode servers."""
    workdir = tmp_path_factory.mktemp(f"comfy-{name}")
    return ComfyServer(workdir=workdir, extra_args=extra_args, node_roots=[TEST_NODES], name=name).start()


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """One ComfyUI with default caching, for suites that do not depend on the cache mode."""
    srv = _server(tmp_path_factory, "default", [])
    yield srv
    srv.stop()


@pytest.fixture(scope="session", params=list(CACHE_MODES), ids=[f"cache-{m}" for m in CACHE_MODES])
def cache_server(request, tmp_path_factory):
    """One ComfyUI per cache mode (--cache-classic, --cache-lru 10, --cache-none, --cache-ram); tests
    using it run once under each."""
    srv = _server(tmp_path_factory, request.param, CACHE_MODES[request.param])
    yield srv
    srv.stop()


@pytest.fixture
def client(server):
    c = ComfyClient(server.url)
    yield c
    c.close()


@pytest.fixture
def cclient(cache_server):
    c = ComfyClient(cache_server.url)
    yield c
    c.close()


@pytest.fixture
def graph():
    return Graph()
