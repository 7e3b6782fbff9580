"""Fixtures: the pack importable as ``quality_gate`` (for unit tests), real ComfyUI servers, and the real
frontend in headless Chromium (``page``: one server per frontend version, both versions for every browser
test; a screenshot of the page goes to ``.qg-run/browser-failures/`` when a browser test fails).

The pack root has an ``__init__.py`` that ComfyUI imports; tests import the pack's modules through an
empty ``quality_gate`` package object instead, so no ComfyUI module is needed for the plain logic.
"""

from __future__ import annotations

import re
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

from browser import FRONTENDS, CanvasPage, browser_server, launch  # noqa: E402
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
    c = ComfyClient(server.url, server=server)
    yield c
    c.close()


@pytest.fixture
def cclient(cache_server):
    c = ComfyClient(cache_server.url, server=cache_server)
    yield c
    c.close()


@pytest.fixture
def graph():
    return Graph()


# Browser tests ---------------------------------------------------------------------------------------------

FAILURE_SHOTS = ROOT / ".qg-run" / "browser-failures"


@pytest.fixture(scope="session")
def chromium():
    """Debian's chromium driven by Playwright, one for the whole session."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch(playwright)
        yield browser
        browser.close()


@pytest.fixture(scope="module", params=FRONTENDS, ids=[f"frontend-{v}" for v in FRONTENDS])
def frontend_server(request, tmp_path_factory):
    """A ComfyUI (with the test node pack) serving one frontend: the pinned 1.32.9 or the newest 1.58.1
    through --front-end-root. Browser tests run once against each."""
    version = request.param
    workdir = tmp_path_factory.mktemp(f"comfy-frontend-{version}")
    srv = browser_server(version, workdir=workdir, node_roots=[TEST_NODES], name=f"frontend-{version}").start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def canvas(chromium, frontend_server):
    """One page per module and frontend with the canvas open (opening it costs seconds)."""
    page = CanvasPage(chromium, frontend_server).open()
    yield page
    page.close()


@pytest.fixture
def page(canvas):
    """The canvas with an empty graph; fails the test when this pack's extensions logged an error."""
    if canvas.page.is_closed():
        canvas.page = canvas.context.new_page()
        canvas.open()
    canvas.reset()
    yield canvas
    errors = canvas.our_errors()
    assert not errors, "console errors from the Quality Gate extensions:\n" + "\n".join(errors)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A PNG of the page when a browser test (one using ``page``) fails, named after the test id."""
    outcome = yield
    report = outcome.get_result()
    page = getattr(item, "funcargs", {}).get("page")
    if report.failed and isinstance(page, CanvasPage) and not page.page.is_closed():
        FAILURE_SHOTS.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", item.nodeid)[-150:]
        from playwright.sync_api import Error as PlaywrightError

        try:
            page.screenshot(path=str(FAILURE_SHOTS / f"{name}.png"))
        except PlaywrightError as error:  # a failed screenshot must not hide the test's own failure
            report.sections.append(("browser failure screenshot", f"not saved: {error}"))
