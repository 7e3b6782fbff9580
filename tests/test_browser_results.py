"""Run results on the nodes, in headless Chromium against both frontends and, on the newest, both node
renderers (classic canvas and Vue "Nodes 2.0"): the loop badge, status, chart and attempt table on
QG_RetryEnd follow a real loop run on the real server while it runs and after it, and score nodes show their
per-image scores after a real QG_TechnicalScore run (no weights needed). What is checked is what a person
sees: the DOM text of the result panels (and of the Vue node), and in the classic renderer the pixels of
the node's area against a screenshot from before the run."""

import argparse
import io
import json
import time
import uuid

import pytest
from browser import CanvasPage
from harness import NEWEST_FRONTEND, PINNED_FRONTEND, ComfyClient

# Deterministic scores by seed (the test pack's SeedScore): the loop passes the threshold 6 at attempt 4.
SCORES = {"11": 3.0, "12": 5.5, "13": 4.0, "14": 6.5, "15": 9.0}
DELAY = 0.6  # seconds each attempt takes (a slow probe in the body), so the page can be watched mid-run


# The combinations that exist: the Vue renderer ("Nodes 2.0") is tested on the newest frontend only.
COMBINATIONS = [(PINNED_FRONTEND, "classic"), (NEWEST_FRONTEND, "classic"), (NEWEST_FRONTEND, "vue")]


# Each test runs once per frontend and renderer that exist together (no skipped combinations); the server of
# a frontend is shared by its renderers.
pytestmark = pytest.mark.parametrize(
    ("frontend_server", "renderer"),
    COMBINATIONS,
    indirect=True,
    scope="module",
    ids=[f"frontend-{version}-{renderer}" for version, renderer in COMBINATIONS],
)


@pytest.fixture(scope="module")
def renderer(request, frontend_server):
    """The node renderer, switched through the server's settings before the page loads."""
    client = ComfyClient(frontend_server.url, server=frontend_server)
    try:
        client.request("POST", "/api/settings/Comfy.VueNodes.Enabled", request.param == "vue")
    finally:
        client.close()
    return request.param


@pytest.fixture(scope="module")
def canvas(chromium, frontend_server, renderer):
    """This module's canvas: one page per frontend and renderer."""
    page = CanvasPage(chromium, frontend_server).open()
    enabled = page.evaluate("() => !!LiteGraph.vueNodesMode")
    assert enabled == (renderer == "vue"), f"the {renderer} renderer did not come up"
    yield page
    page.close()


def wait_for_history(server, prompt_id: str, timeout: float = 120.0) -> dict:
    client = ComfyClient(server.url, server=server)
    try:
        return client.wait_finished(prompt_id, timeout)
    finally:
        client.close()


def build_loop(page) -> int:
    """RetryStart -> slow probe -> SeedScore -> RetryEnd (until_threshold 6, 5 attempts) -> Record."""
    start = page.add_node("QG_RetryStart", {"seed": 11, "max_attempts": 5, "seed_step": 1}, (20, 80))
    # A fresh label each time: the same prompt again would come from ComfyUI's cache (no loop events).
    probe = page.add_node("QGTest_Probe", {"label": f"slow {uuid.uuid4()}", "delay": DELAY}, (320, 80))
    score = page.add_node("QGTest_SeedScore", {"scores": json.dumps(SCORES), "label": "score"}, (320, 300))
    end = page.add_node("QG_RetryEnd", {"threshold": 6.0, "mode": "until_threshold"}, (650, 120))
    record = page.add_node("QGTest_Record", {"label": "best"}, (980, 120))
    page.connect(start, "seed", probe, "value")
    page.connect(start, "seed", score, "seed")
    page.connect(probe, 0, score, "after")
    page.connect(start, "loop", end, "loop")
    page.connect(score, 1, end, "candidate")
    page.connect(score, 0, end, "score")
    page.connect(end, "best_score", record, "value")
    return end


def panel_text(page, node_id, panel: str = "qg_loop_panel") -> str | None:
    """The text a person sees in a node's result panel (a DOM widget), or None while it is not shown."""
    return page.evaluate(
        """([id, panel]) => {
            const el = document.querySelector(`.${panel}[data-qg-node="${id}"]`);
            if (!el || !el.isConnected) return null;
            const box = el.getBoundingClientRect();
            return box.width > 0 && box.height > 0 ? el.innerText : null;
        }""",
        [str(node_id), panel],
    )


def node_text(page, node_id) -> str:
    """The DOM text of a node in the Vue renderer (title, widgets, badges, panels)."""
    return page.locator(f'[data-node-id="{node_id}"]').inner_text()


def node_box(page, node_id) -> dict:
    """A node's area on the page (title and the badge strip above it included), in CSS pixels."""
    return page.evaluate(
        """(id) => {
            const n = app.graph.getNodeById(id), ds = app.canvas.ds;
            const rect = app.canvas.canvas.getBoundingClientRect();
            const top = (LiteGraph.NODE_TITLE_HEIGHT ?? 30) + 24, s = ds.scale;
            return {x: rect.left + (n.pos[0] + ds.offset[0]) * s, y: rect.top + (n.pos[1] - top + ds.offset[1]) * s,
                    width: n.size[0] * s, height: (n.size[1] + top) * s, badge: top * s};
        }""",
        node_id,
    )


def changed_fraction(before: bytes, after: bytes, box: tuple[int, int, int, int]) -> float:
    """The fraction of pixels inside ``box`` (left, top, right, bottom) that differ between two PNGs."""
    from PIL import Image, ImageChops

    with Image.open(io.BytesIO(before)) as a, Image.open(io.BytesIO(after)) as b:
        diff = ImageChops.difference(a.convert("RGB").crop(box), b.convert("RGB").crop(box)).convert("L")
        changed = diff.point(lambda value: 255 if value > 24 else 0).histogram()[255]
        return changed / max(1, diff.width * diff.height)


def wait_text(page, node_id, expected: str, panel: str = "qg_loop_panel", timeout: float = 20.0) -> str:
    deadline = time.monotonic() + timeout
    text = None
    while time.monotonic() < deadline:
        text = panel_text(page, node_id, panel)
        if text and expected in text:
            return text
        time.sleep(0.05)
    raise AssertionError(f"the panel of node {node_id} never showed {expected!r}; last: {text!r}")


def test_loop_badge_and_chart_follow_a_real_run(page, renderer):
    end = build_loop(page)
    page.fit_view(margin=200, max_scale=1.0)
    before = page.screenshot()
    prompt_id = page.queue()
    seen = []  # the status line of the panel, polled while the prompt runs
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        text = panel_text(page, end)
        status = text.splitlines()[0] if text else None
        if status and status not in seen:
            seen.append(status)
        if status and status.startswith("attempt 4/"):
            break
        time.sleep(0.05)
    entry = wait_for_history(page.server, prompt_id)
    assert entry["status"]["status_str"] == "success", entry["status"]
    text = wait_text(page, end, "attempt 4/5 · best 6.50 · passed")
    lines = text.splitlines()
    assert lines[:2] == ["attempt 4/5 · best 6.50 · passed", "score per attempt · threshold 6.00"]
    rows = [line.split() for line in lines[2:]]
    assert rows == [
        ["attempt", "seed", "score", "passed"],
        ["1", "11", "3.00", "no"],
        ["2", "12", "5.50", "no"],
        ["3", "13", "4.00", "no"],
        ["4", "14", "6.50", "yes"],
    ]
    # During the run: earlier attempts were shown before the last one, each with its own best so far.
    during = [s for s in seen if not s.startswith("attempt 4/")]
    assert during, f"the panel never showed an attempt before the last one: {seen}"
    best_so_far = {"1": "3.00", "2": "5.50", "3": "5.50"}
    for status in during:
        attempt = status.split()[1].split("/")[0]
        assert status == f"attempt {attempt}/5 · best {best_so_far[attempt]}", seen
    # The chart: one dot per attempt, the threshold line.
    dots = page.evaluate(
        "(id) => document.querySelectorAll(`.qg_loop_panel[data-qg-node='${id}'] svg circle`).length", str(end)
    )
    assert dots == 4
    if renderer == "vue":
        # Real DOM text inside the node itself (a person can select it).
        assert "attempt 4/5 · best 6.50 · passed" in node_text(page, end)
    else:
        # The canvas: the badge strip above the title and the node's body changed where badge and chart are.
        page.wait_for_timeout(300)
        after = page.screenshot()
        box = node_box(page, end)
        left, top, right = int(box["x"]), int(box["y"]), int(box["x"] + box["width"])
        strip = (left + int(box["width"] * 0.3), top, right, top + int(box["badge"]) - 8)
        body = (left, int(box["y"] + box["height"] * 0.55), right, int(box["y"] + box["height"]) - 4)
        assert changed_fraction(before, after, strip) > 0.03, "no badge drawn above the title"
        assert changed_fraction(before, after, body) > 0.03, "no chart in the node's body"


def test_badge_starts_over_on_the_next_run(page):
    end = build_loop(page)
    first = page.queue()
    wait_for_history(page.server, first)
    wait_text(page, end, "attempt 4/5")
    page.set_widget(end, "mode", "best_of_n")
    second = page.queue()
    entry = wait_for_history(page.server, second)
    assert entry["status"]["status_str"] == "success"
    text = wait_text(page, end, "attempt 5/5 · best 9.00 · passed")
    assert len(text.splitlines()) == 2 + 1 + 5, text  # status, caption, table head, five attempts
    loop = page.evaluate("(id) => app.graph.getNodeById(id).properties.qg_loop", end)
    assert loop["prompt_id"] == second and [a["score"] for a in loop["attempts"]] == [3.0, 5.5, 4.0, 6.5, 9.0]


def run_scored_batch(page) -> tuple[int, list[str]]:
    """Two noise images batched into a Technical Score (mean), run from the page: (score node, the lines its
    panel must show)."""
    seed = uuid.uuid4().int % 10**9  # a new prompt each time (a cached node sends no UI output)
    noise_a = page.add_node("QGTest_Noise", {"seed": seed, "size": 48}, (20, 80))
    noise_b = page.add_node("QGTest_Noise", {"seed": seed + 1, "size": 48}, (20, 300))
    batch = page.add_node("ImageBatch", {}, (300, 150))
    score = page.add_node("QG_TechnicalScore", {"reduce": "mean"}, (560, 150))
    record = page.add_node("QGTest_Record", {"label": "score"}, (900, 150))
    page.connect(noise_a, 0, batch, "image1")
    page.connect(noise_b, 0, batch, "image2")
    page.connect(batch, 0, score, "image")
    page.connect(score, "score", record, "value")
    prompt_id = page.queue()
    entry = wait_for_history(page.server, prompt_id)
    assert entry["status"]["status_str"] == "success", entry["status"]
    report = entry["outputs"][str(score)]["qg_scores"][0]
    assert len(report["scores"]) == 2
    expected = [
        f"technical · mean {report['score']:.2f}",
        f"#0 {report['scores'][0]:.2f}",
        f"#1 {report['scores'][1]:.2f}",
    ]
    return score, expected


def test_score_node_shows_per_image_scores_after_a_real_run(page, renderer):
    score, expected = run_scored_batch(page)
    text = wait_text(page, score, expected[0], panel="qg_scores_panel")
    assert text.splitlines() == expected
    if renderer == "vue":
        assert all(line in node_text(page, score) for line in expected)


def test_results_are_shown_again_after_a_page_reload(page, renderer):
    """The last result of each node lives in its properties, saved with the workflow the frontend keeps across
    a reload: after reloading the page, the score panel and the loop panel show the same text (DOM text in
    both renderers), without running anything again."""
    score, expected = run_scored_batch(page)
    wait_text(page, score, expected[0], panel="qg_scores_panel")
    end = build_loop(page)
    entry = wait_for_history(page.server, page.queue())
    assert entry["status"]["status_str"] == "success"
    loop = wait_text(page, end, "attempt 4/5 · best 6.50 · passed")
    page.wait_for_timeout(1500)  # the frontend persists the workflow (with the nodes' properties) on a change
    page.open()  # a reload: a new page load of the same server
    assert page.evaluate("(id) => !!app.graph.getNodeById(id)", score), "the workflow was not restored"
    assert wait_text(page, score, expected[0], panel="qg_scores_panel").splitlines() == expected
    assert wait_text(page, end, "attempt 4/5 · best 6.50 · passed") == loop
    if renderer == "vue":
        assert all(line in node_text(page, score) for line in expected)


def test_screenshot_script_pictures_a_run_and_thumbnails(page, chromium, tmp_path):
    """dev/screenshot.py's two modes on this module's server and browser: a PNG of the canvas after a real
    loop run, and a .jpg thumbnail next to a UI workflow."""
    import screenshot
    from PIL import Image

    build_loop(page)
    workflow = tmp_path / "loop.json"
    workflow.write_text(json.dumps(page.graph_to_prompt()["workflow"]))
    out = tmp_path / "canvas.png"
    run = argparse.Namespace(workflow=str(workflow), out=str(out), timeout=120.0, convert=None)
    assert screenshot.run(run, chromium, page.server) == 0
    with Image.open(out) as picture:
        assert (picture.format, picture.size) == ("PNG", (1280, 800))
    assert screenshot.thumbnails(argparse.Namespace(dir=str(tmp_path)), chromium, page.server) == 0
    with Image.open(tmp_path / "loop.jpg") as thumbnail:
        assert thumbnail.format == "JPEG" and thumbnail.size[0] > 600


def test_duplicate_parameter_names_are_marked_in_the_node(page, renderer):
    first = page.add_node("QG_ParamInt", {"name": "steps"}, (60, 120))
    second = page.add_node("QG_ParamFloat", {"name": "cfg"}, (60, 420))
    page.fit_view(margin=200, max_scale=1.0)
    page.wait_for_timeout(300)
    before = page.screenshot()
    page.set_widget(second, "name", "steps")
    mark = f"⚠ duplicate name (also #{first})"
    if renderer == "vue":
        page.wait_for_function(
            "([id, mark]) => document.querySelector(`[data-node-id='${id}']`)?.innerText.includes(mark)",
            arg=[str(second), mark],
            timeout=10_000,
        )
    else:
        page.wait_for_timeout(400)
        box = node_box(page, second)
        strip = (int(box["x"]), int(box["y"]), int(box["x"] + box["width"]), int(box["y"] + box["badge"]) - 8)
        assert changed_fraction(before, page.screenshot(), strip) > 0.03, "no duplicate badge above the title"
    page.set_widget(second, "name", "cfg")
    page.wait_for_timeout(300)
    shown = page.evaluate("(id) => app.graph.getNodeById(id).widgets.map((w) => w.name)", second)
    assert "qg_duplicate_panel" not in shown
    if renderer == "vue":
        assert mark not in node_text(page, second)


def test_loop_inside_a_subgraph_shows_on_the_inner_node_and_a_summary_outside(page, renderer):
    """The loop converted into a subgraph with the frontend's own command: the events carry execution ids
    ("6:4"); the closed subgraph node shows a summary, the inner node its panel once the subgraph is open."""
    build_loop(page)
    loop_nodes = page.evaluate("() => app.graph.nodes.filter((n) => n.type !== 'QGTest_Record').map((n) => n.id)")
    sub = page.convert_to_subgraph(loop_nodes)
    inner = page.evaluate(
        "(id) => String(app.graph.getNodeById(id).subgraph.nodes.find((n) => n.type === 'QG_RetryEnd').id)", sub
    )
    converted = {"sub": str(sub), "inner": inner}
    page.fit_view(margin=200, max_scale=1.0)
    page.wait_for_timeout(300)
    before = page.screenshot()
    prompt_id = page.queue()
    prompt = wait_for_history(page.server, prompt_id)["prompt"][2]  # the queued API prompt
    assert f"{converted['sub']}:{converted['inner']}" in prompt, sorted(prompt)
    summary = "loop: best 6.50 · 4 attempt(s)"
    if renderer == "vue":
        page.wait_for_function(
            "([id, text]) => document.querySelector(`[data-node-id='${id}']`)?.innerText.includes(text)",
            arg=[converted["sub"], summary],
            timeout=10_000,
        )
    else:
        page.wait_for_timeout(400)
        box = node_box(page, converted["sub"])
        strip = (int(box["x"]), int(box["y"]), int(box["x"] + box["width"]), int(box["y"] + box["badge"]) - 8)
        assert changed_fraction(before, page.screenshot(), strip) > 0.03, "no summary badge on the subgraph node"
    try:
        page.evaluate(
            """(id) => { const sub = app.graph.getNodeById(id); app.canvas.openSubgraph(sub.subgraph, sub); }""",
            converted["sub"],
        )
        text = wait_text(page, converted["inner"], "attempt 4/5 · best 6.50 · passed")
        assert text.splitlines()[-1].split() == ["4", "14", "6.50", "yes"]
    finally:
        page.evaluate("() => app.canvas.setGraph(app.rootGraph ?? app.graph)")
