"""Run results on the canvas, in headless Chromium against both frontends (fixture ``page``): the loop badge
and chart on QG_RetryEnd follow a real loop run on the real server while it runs and after it, and score
nodes show their per-image scores after a real QG_TechnicalScore run (no weights needed)."""

import argparse
import json
import time

from harness import ComfyClient

# Deterministic scores by seed (the test pack's SeedScore): the loop passes the threshold 6 at attempt 4.
SCORES = {"11": 3.0, "12": 5.5, "13": 4.0, "14": 6.5, "15": 9.0}
DELAY = 0.6  # seconds each attempt takes (a slow probe in the body), so the page can be watched mid-run


def wait_for_history(server, prompt_id: str, timeout: float = 120.0) -> dict:
    client = ComfyClient(server.url)
    try:
        return client.wait_finished(prompt_id, timeout)
    finally:
        client.close()


def build_loop(page) -> int:
    """RetryStart -> slow probe -> SeedScore -> RetryEnd (until_threshold 6, 5 attempts) -> Record."""
    start = page.add_node("QG_RetryStart", {"seed": 11, "max_attempts": 5, "seed_step": 1}, (20, 80))
    probe = page.add_node("QGTest_Probe", {"label": "slow", "delay": DELAY}, (320, 80))
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


def drawn(page, node_id: int):
    return page.evaluate("(id) => { const n = app.graph.getNodeById(id); return n.qgLoopDrawn ?? null; }", node_id)


def test_loop_badge_and_chart_follow_a_real_run(page):
    end = build_loop(page)
    prompt_id = page.queue()
    seen = []  # what the badge and chart showed, polled while the prompt runs
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        state = drawn(page, end)
        if state and state not in seen:
            seen.append(state)
        if state and state["attempt"] == 4:
            break
        time.sleep(0.05)
    entry = wait_for_history(page.server, prompt_id)
    assert entry["status"]["status_str"] == "success", entry["status"]
    page.wait_for_function("(id) => app.graph.getNodeById(id).qgLoopDrawn?.attempt === 4", arg=end, timeout=10000)
    final = drawn(page, end)
    assert final == {"badge": "attempt 4/5 · best 6.50", "points": 4, "threshold": 6.0, "attempt": 4}
    # During the run: earlier attempts were drawn before the last one, each with its own best so far and
    # one point per attempt so far.
    during = [s for s in seen if s["attempt"] < 4]
    assert during, f"the badge never showed an attempt before the last one: {seen}"
    best_so_far = {1: "3.00", 2: "5.50", 3: "5.50"}
    for state in during:
        assert state["badge"] == f"attempt {state['attempt']}/5 · best {best_so_far[state['attempt']]}", seen
        assert state["points"] == state["attempt"], seen
    loop = page.evaluate("(id) => app.graph.getNodeById(id).qgLoop", end)
    assert loop["prompt_id"] == prompt_id
    assert loop["scores"] == [3.0, 5.5, 4.0, 6.5]
    assert loop["best_attempt"] == 4 and loop["done"] is True


def test_badge_starts_over_on_the_next_run(page):
    end = build_loop(page)
    first = page.queue()
    wait_for_history(page.server, first)
    page.set_widget(end, "mode", "best_of_n")
    second = page.queue()
    entry = wait_for_history(page.server, second)
    assert entry["status"]["status_str"] == "success"
    page.wait_for_function("(id) => app.graph.getNodeById(id).qgLoopDrawn?.attempt === 5", arg=end, timeout=10000)
    loop = page.evaluate("(id) => app.graph.getNodeById(id).qgLoop", end)
    assert loop["prompt_id"] == second and loop["scores"] == [3.0, 5.5, 4.0, 6.5, 9.0]
    assert drawn(page, end)["badge"] == "attempt 5/5 · best 9.00"


def test_score_node_shows_per_image_scores_after_a_real_run(page):
    noise_a = page.add_node("QGTest_Noise", {"seed": 1, "size": 48}, (20, 80))
    noise_b = page.add_node("QGTest_Noise", {"seed": 2, "size": 48}, (20, 300))
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
    page.wait_for_function("(id) => !!app.graph.getNodeById(id).qgScoresDrawn", arg=score, timeout=10000)
    shown = page.evaluate("(id) => app.graph.getNodeById(id).qgScoresDrawn", score)
    assert shown == [
        f"technical · mean {report['score']:.2f}",
        f"#0 {report['scores'][0]:.2f}",
        f"#1 {report['scores'][1]:.2f}",
    ]
    # The node grew to hold the panel below its widgets.
    size = page.evaluate("(id) => { const n = app.graph.getNodeById(id); return [n.size[1], n.qgPanelHeight]; }", score)
    assert size[1] > 0 and size[0] > size[1]


def test_screenshot_script_pictures_a_run_and_thumbnails(page, chromium, tmp_path):
    """dev/screenshot.py's two modes on this module's server and browser: a PNG of the canvas after a real
    loop run, and a .jpg thumbnail next to a UI workflow."""
    import screenshot
    from PIL import Image

    build_loop(page)
    workflow = tmp_path / "loop.json"
    workflow.write_text(json.dumps(page.graph_to_prompt()["workflow"]))
    out = tmp_path / "canvas.png"
    run = argparse.Namespace(workflow=str(workflow), out=str(out), timeout=120.0)
    assert screenshot.run(run, chromium, page.server) == 0
    with Image.open(out) as picture:
        assert (picture.format, picture.size) == ("PNG", (1280, 800))
    assert screenshot.thumbnails(argparse.Namespace(dir=str(tmp_path)), chromium, page.server) == 0
    with Image.open(tmp_path / "loop.jpg") as thumbnail:
        assert thumbnail.format == "JPEG" and thumbnail.size[0] > 600
