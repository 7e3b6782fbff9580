"""The retry loop on the real ComfyUI executor: behaviour under all four cache modes, then 1000 attempts and
memory on the default server.

Executions are counted server-side (QGTest_Probe, QGTest_SeedScore); QGTest_SeedScore turns each attempt's
seed into an exact score from a table, so which attempt passes is known in advance.
"""

import json
import threading
import time
from pathlib import Path

import pytest
from harness import ComfyClient, PromptRejected
from helpers import Graph, recorded, run_ok

EVENT_FIELDS = {
    "prompt_id",
    "node",
    "attempt",
    "max_attempts",
    "seed",
    "score",
    "best_score",
    "best_attempt",
    "threshold",
    "passed",
    "done",
}


def loop_graph(scores=None, max_attempts=4, threshold=6.0, mode="until_threshold", on_fail=None, delay=0.0):
    """outside -> [start -> body probe (candidate = seed) -> seed score] -> end -> six records."""
    g = Graph()
    outside = g.probe("outside")
    start = g.add("QG_RetryStart", seed=100, max_attempts=max_attempts, seed_step=1)
    candidate = g.out(g.add("QGTest_Probe", label=g.label("body"), value=g.out(start, 1), delay=delay))
    score = g.add(
        "QGTest_SeedScore",
        seed=g.out(start, 1),
        scores=json.dumps(scores or {}),
        default=1.0,
        label=g.label("score"),
        after=outside,
    )
    inputs = {"loop": g.out(start, 0), "candidate": candidate, "score": g.out(score), "threshold": threshold}
    end = g.add("QG_RetryEnd", mode=mode, **inputs, **({"on_fail": on_fail} if on_fail else {}))
    g.start, g.end, g.body = start, end, candidate[0]
    g.records = [
        g.record(g.out(end, i), name) for i, name in enumerate(("r_best", "r_score", "r_seed", "r_n", "r_ok", "r_hist"))
    ]
    return g


def results(result, g):
    return [recorded(result, r) for r in g.records[:5]] + [json.loads(recorded(result, g.records[5]))]


def outside_runs(server) -> int:
    """Without a cache (--cache-none) the executor reruns what an expansion links to outside it."""
    return None if server.name == "none" else 1


def test_until_threshold_stops_at_the_first_pass(cache_server, cclient):
    g = loop_graph({"102": 7, "103": 9}, max_attempts=6)
    result = run_ok(cclient, g)
    best, score, seed, attempts, passed, history = results(result, g)
    assert (best, score, seed, attempts, passed) == (102, 7.0, 102, 3, True)
    assert history == [{"attempt": a, "seed": 99 + a, "score": s} for a, s in ((1, 1.0), (2, 1.0), (3, 7.0))]
    counts = g.counts(cclient)
    assert counts["body"] == counts["score"] == 3
    if outside_runs(cache_server):
        assert counts["outside"] == 1


def test_best_of_n_runs_every_attempt_and_ties_keep_the_earliest(cclient):
    g = loop_graph({"101": 8, "103": 9, "104": 9}, max_attempts=5, mode="best_of_n")
    best, score, seed, attempts, passed, history = results(run_ok(cclient, g), g)
    assert (best, score, seed, attempts, passed) == (103, 9.0, 103, 5, True)
    assert len(history) == 5 and g.counts(cclient)["body"] == 5


def test_no_pass_returns_the_best(cclient):
    g = loop_graph({"101": 3, "102": 5}, max_attempts=3)
    assert results(run_ok(cclient, g), g)[:5] == [102, 5.0, 102, 3, False]


def test_no_pass_blocks_downstream(cclient):
    g = loop_graph({"101": 3}, max_attempts=3, on_fail="block")
    result = run_ok(cclient, g)
    assert not set(g.records) & set(result.outputs) and g.counts(cclient)["body"] == 3
    assert not any(name.startswith("r_") for name in g.counts(cclient))


def test_no_pass_is_an_error_naming_the_node(cclient):
    g = loop_graph({"101": 3}, max_attempts=3, on_fail="error")
    result = cclient.run(g.nodes)
    assert result.status == "error"
    message = result.error["exception_message"]
    assert f"Retry End (QG) #{g.end}: no attempt reached the threshold 6 in 3 of 3 attempts" in message
    assert "best score 3 at attempt 2" in message and result.error["node_id"] == g.end


def test_max_attempts_one_and_a_pass_at_once_do_not_expand(cclient):
    g = loop_graph({}, max_attempts=1)
    result = run_ok(cclient, g)
    assert results(result, g)[:5] == [100, 1.0, 100, 1, False]
    assert not [n for n in result.executing if "." in n]  # no expanded node ran
    g = loop_graph({"100": 6}, max_attempts=9)
    assert results(run_ok(cclient, g), g)[3:5] == [1, True]


def test_max_attempts_is_validated_at_prompt(cclient):
    for bad in (0, 1001):
        g = loop_graph(max_attempts=bad)
        with pytest.raises(PromptRejected) as info:
            cclient.run(g.nodes)
        assert "max_attempts" in info.value.messages()
        assert "value_bigger_than_max" in json.dumps(info.value.body) or "smaller" in json.dumps(info.value.body)


def test_events_and_progress_after_each_attempt(cclient):
    g = loop_graph({"103": 7}, max_attempts=5)
    result = run_ok(cclient, g)
    events = result.loop_events
    assert [e["attempt"] for e in events] == [1, 2, 3, 4]
    assert all(set(e) == EVENT_FIELDS for e in events)
    assert all(e["prompt_id"] == result.prompt_id and e["node"] == g.end and e["max_attempts"] == 5 for e in events)
    assert [e["seed"] for e in events] == [100, 101, 102, 103]
    assert [e["done"] for e in events] == [False, False, False, True]
    assert events[-1]["best_score"] == 7.0 and events[-1]["best_attempt"] == 4
    progress = [(p["value"], p["max"]) for p in result.progress if p["node"] == g.end]
    assert progress == [(1, 5), (2, 5), (3, 5), (4, 5)]


def test_progress_state_does_not_grow_with_the_attempts(cclient):
    """ComfyUI sends every node of its progress registry at each node start and finish; the loop drops its
    finished nodes from it, so a long loop's messages are no larger than a short one's (else quadratic)."""
    short = run_ok(cclient, loop_graph({}, max_attempts=6, mode="best_of_n"))
    long = run_ok(cclient, loop_graph({}, max_attempts=60, mode="best_of_n"))
    # ten times the attempts, ten times the messages but for the few every prompt sends (attempt 1 waits
    # once for its lazy candidate and score)
    assert len(long.progress_state_sizes) > 7 * len(short.progress_state_sizes)
    assert max(long.progress_state_sizes) < 1.5 * max(short.progress_state_sizes)


def test_output_nodes_hanging_off_the_body_run_every_attempt(cclient):
    g = loop_graph({}, max_attempts=4)
    preview = g.record([g.body, 0], "preview")
    result = run_ok(cclient, g)
    assert g.counts(cclient)["preview"] == 4
    assert recorded(result, preview) == 100  # the user's own node: attempt 1
    shown = {n for n in result.history.get("meta", {}) if result.history["meta"][n]["display_node"] == preview}
    assert len(shown) == 4


def test_lazy_logic_inside_the_body(cclient):
    """A Switch in the body runs only the branch each attempt chooses."""
    g = Graph()
    start = g.add("QG_RetryStart", seed=0, max_attempts=3, seed_step=1)
    second = g.out(g.add("QG_Compare", a=g.out(start, 2), comparison="==", b=2))
    switch = g.add("QG_Switch", condition=second, on_true=g.probe("t", g.out(start, 1)), on_false=g.probe("f", 5))
    score = g.add("QGTest_SeedScore", seed=g.out(start, 1), scores="{}", default=1.0, label=g.label("s"))
    end = g.add(
        "QG_RetryEnd",
        loop=g.out(start, 0),
        candidate=g.out(switch),
        score=g.out(score),
        threshold=9.0,
        mode="best_of_n",
    )
    g.record(g.out(end, 3))
    run_ok(cclient, g)
    counts = g.counts(cclient)
    assert counts["t"] == 1 and counts["s"] == 3


def test_a_loop_in_a_branch_not_chosen_never_runs(cclient):
    g = loop_graph({}, max_attempts=3)
    switch = g.add("QG_Switch", condition=False, on_true=g.out(g.end, 0), on_false=g.json("7"))
    for record in g.records:
        del g.nodes[record]
    out = g.record(g.out(switch))
    assert recorded(run_ok(cclient, g), out) == 7
    assert "body" not in g.counts(cclient)


def gated_loop_graph(open_attempts: str, max_attempts=5, mode="until_threshold", on_fail=None):
    """start -> Gate(value = seed, open = attempt in open_attempts, block when closed) -> body probe
    (candidate) and seed score (score) -> end -> six records."""
    g = Graph()
    start = g.add("QG_RetryStart", seed=100, max_attempts=max_attempts, seed_step=1)
    is_open = g.add("QG_Compare", a=g.json(open_attempts), comparison="contains", b=g.out(start, 2))
    gate = g.out(g.add("QG_Gate", value=g.out(start, 1), open=g.out(is_open), on_closed="block"))
    candidate = g.probe("body", gate)
    score = g.add("QGTest_SeedScore", seed=gate, scores=json.dumps({"103": 7}), default=1.0, label=g.label("score"))
    extra = {"on_fail": on_fail} if on_fail else {}
    end = g.add(
        "QG_RetryEnd", loop=g.out(start, 0), candidate=candidate, score=g.out(score), threshold=6.0, mode=mode, **extra
    )
    g.end = end
    g.records = [
        g.record(g.out(end, i), name) for i, name in enumerate(("r_best", "r_score", "r_seed", "r_n", "r_ok", "r_hist"))
    ]
    return g


def test_a_closed_gate_in_the_body_fails_its_attempt_and_the_loop_goes_on(cclient):
    """The Gate is open on even attempts only: the odd ones are blocked, count as failed attempts (score null,
    "blocked" in the history; their candidate and score never run) and the loop goes on to attempt 4, whose
    score 7 passes."""
    g = gated_loop_graph("[2, 4]")
    best, score, seed, attempts, passed, history = results(run_ok(cclient, g), g)
    assert (best, score, seed, attempts, passed) == (103, 7.0, 103, 4, True)
    assert history == [
        {"attempt": 1, "seed": 100, "score": None, "blocked": True},
        {"attempt": 2, "seed": 101, "score": 1.0},
        {"attempt": 3, "seed": 102, "score": None, "blocked": True},
        {"attempt": 4, "seed": 103, "score": 7.0},
    ]
    counts = g.counts(cclient)
    assert counts["body"] == counts["score"] == 2


def test_two_gates_in_the_body_block_an_attempt_when_either_is_closed(cclient):
    """Gate A is open on even attempts, Gate B behind it on every attempt but 4: only attempt 2 makes a
    candidate; the others are blocked, and the loop still runs all five and returns attempt 2."""
    g = gated_loop_graph("[2, 4]", mode="best_of_n")
    start = g.nodes[g.end]["inputs"]["loop"][0]
    gate_a = next(n for n, info in g.nodes.items() if info["class_type"] == "QG_Gate")
    b_open = g.add("QG_Compare", a=g.out(start, 2), comparison="!=", b=4)
    gate_b = g.add("QG_Gate", value=g.out(gate_a), open=g.out(b_open), on_closed="block")
    for info in g.nodes.values():
        for name, value in info["inputs"].items():
            if value == [gate_a, 0] and info["class_type"] != "QG_Gate":
                info["inputs"][name] = g.out(gate_b)
    best, score, seed, attempts, passed, history = results(run_ok(cclient, g), g)
    assert (best, score, seed, attempts, passed) == (101, 1.0, 101, 5, False)
    assert [h.get("blocked", False) for h in history] == [True, False, True, True, True]
    assert g.counts(cclient)["body"] == 1


def test_a_loop_whose_every_attempt_is_blocked_blocks_or_fails(cclient):
    """No attempt made a candidate: with return_best there is nothing to return, so the outputs block (as the
    Gate would outside a loop); with on_fail error the prompt fails saying so."""
    g = gated_loop_graph("[]", max_attempts=3, mode="best_of_n")
    run_ok(cclient, g)
    assert "body" not in g.counts(cclient) and not any(n.startswith("r_") for n in g.counts(cclient))
    g = gated_loop_graph("[]", max_attempts=3, on_fail="error")
    result = cclient.run(g.nodes)
    assert result.status == "error"
    assert f"Retry End (QG) #{g.end}: every attempt (3 of 3) was blocked" in result.error["exception_message"]


def test_a_loop_nested_in_another_loop_runs_in_full_each_outer_attempt(cclient):
    g = Graph()
    outer = g.add("QG_RetryStart", seed=10, max_attempts=3, seed_step=100)
    inner = g.add("QG_RetryStart", seed=g.out(outer, 1), max_attempts=2, seed_step=1)
    body = g.probe("inner", g.out(inner, 1))
    inner_score = g.add("QGTest_SeedScore", seed=g.out(inner, 1), scores='{"211": 5}', default=1.0, label="x")
    inner_end = g.add(
        "QG_RetryEnd", loop=g.out(inner, 0), candidate=body, score=g.out(inner_score), threshold=9.0, mode="best_of_n"
    )
    outer_end = g.add(
        "QG_RetryEnd",
        loop=g.out(outer, 0),
        candidate=g.out(inner_end, 0),
        score=g.out(inner_end, 1),
        threshold=9.0,
        mode="best_of_n",
    )
    best = g.record(g.out(outer_end, 0))
    history = g.record(g.out(outer_end, 5), "history")
    result = run_ok(cclient, g)
    assert recorded(result, best) == 211
    assert [h["score"] for h in json.loads(recorded(result, history))] == [1.0, 1.0, 5.0]
    assert g.counts(cclient)["inner"] == 6


def test_unchanged_requeue_runs_nothing_and_a_changed_threshold_reuses_attempts(cache_server, cclient):
    g = loop_graph({"102": 7}, max_attempts=5)
    first = run_ok(cclient, g)
    again = run_ok(cclient, g)
    if cache_server.name == "none":
        assert g.counts(cclient)["body"] == 6
        return
    assert results(again, g) == results(first, g) and g.counts(cclient)["body"] == 3
    assert again.executing == [] and g.end in again.cached
    g.nodes[g.end]["inputs"]["threshold"] = 8.0  # same attempts 1-3, then 4 and 5
    assert results(run_ok(cclient, g), g)[3:5] == [5, False]
    if cache_server.name != "lru":  # --cache-lru 10 may have evicted attempts 2 and 3 by now
        assert g.counts(cclient)["body"] == 5


def test_an_interrupt_stops_the_loop_and_the_next_run_is_right(cclient):
    g = loop_graph({"115": 7}, max_attempts=30, delay=0.2)
    other = ComfyClient(cclient.url)

    def interrupt():  # once the loop is under way (an interrupt before the prompt starts is dropped)
        deadline = time.monotonic() + 60
        while g.counts(other).get("body", 0) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        other.request("POST", "/interrupt", {})

    thread = threading.Thread(target=interrupt)
    thread.start()
    result = cclient.run(g.nodes, timeout=120)
    thread.join()
    assert result.status == "error" and result.error is None  # interrupted, not failed
    ran = g.counts(cclient)["body"]
    assert 3 <= ran < 16
    assert results(run_ok(cclient, g), g)[:5] == [115, 7.0, 115, 16, True]


def test_ids_stay_short_and_nesting_shallow(client):
    """100 attempts with a preview hanging off the body take the deepest shape: end -> block of attempts ->
    one attempt's block -> its copy of the body."""
    g = loop_graph({}, max_attempts=100, mode="best_of_n")
    g.record([g.body, 0], "preview")
    result = run_ok(client, g)
    longest = max(result.executing, key=len)
    assert len(longest) < 40 and longest.count(".0.0.") == 3, longest
    assert g.counts(client)["preview"] == 100


def test_a_thousand_attempts(server, client):
    """The largest loop the pack accepts, queued without a websocket client: no RecursionError, and the
    prompt worker still serves the next prompt."""
    g = loop_graph({}, max_attempts=1000, mode="best_of_n")
    result = client.run_polling(g.nodes, timeout=900, interval=0.05)
    assert result.status == "success", result.history.get("status")
    assert results(result, g)[3] == 1000 and g.counts(client)["body"] == 1000
    assert "RecursionError" not in server.log()
    small = loop_graph({"101": 9}, max_attempts=3)
    assert results(run_ok(client, small), small)[3] == 2


def _rss_mb(server) -> float:
    for line in Path(f"/proc/{server.process.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_memory_of_a_loop_of_big_bodies(server, client):
    """40 attempts of a 1024x1024 body: about one body output (12 MB) per attempt, and a second loop of the
    same graph replaces the first rather than adding to it."""

    def big(seed):
        g = Graph()
        start = g.add("QG_RetryStart", seed=seed, max_attempts=40, seed_step=1)
        image = g.out(g.add("QGTest_Noise", seed=g.out(start, 1), size=1024))
        score = g.add("QGTest_SeedScore", seed=g.out(start, 1), scores="{}", default=1.0, label="m", after=image)
        end = g.add(
            "QG_RetryEnd", loop=g.out(start, 0), candidate=image, score=g.out(score), threshold=9.0, mode="best_of_n"
        )
        g.record(g.out(end, 3))
        return g

    image_mb = 1024 * 1024 * 3 * 4 / 2**20
    before = _rss_mb(server)
    run_ok(client, big(1))
    first = _rss_mb(server)
    run_ok(client, big(5000))
    second = _rss_mb(server)
    figures = f"RSS {before:.0f} MB -> {first:.0f} MB after one loop -> {second:.0f} MB after another"
    assert first - before <= 40 * image_mb * 1.25 + 64, figures
    assert second - first <= 0.15 * 40 * image_mb, figures


def test_a_nested_loop_with_a_preview_copies_only_its_own_level(client):
    """The outer loop's body holds an inner loop whose body feeds a preview and reads a node of the outer
    body. When the outer end looks for its body, the inner loop's expansion (copies of that preview) is
    already in the graph: copying those too would run stale previews again in every outer attempt."""
    g = Graph()
    outer = g.add("QG_RetryStart", seed=10, max_attempts=3, seed_step=100)
    shared = g.probe("shared", g.out(outer, 1))
    inner = g.add("QG_RetryStart", seed=g.out(outer, 1), max_attempts=2, seed_step=1)
    score = g.add(
        "QGTest_SeedScore", seed=g.out(inner, 1), scores='{"211": 5}', default=1.0, label=g.label("inner"), after=shared
    )
    preview = g.record(g.out(score, 1), "preview")
    inner_end = g.add(
        "QG_RetryEnd", loop=g.out(inner), candidate=g.out(score, 1), score=g.out(score), threshold=9.0, mode="best_of_n"
    )
    outer_end = g.add(
        "QG_RetryEnd",
        loop=g.out(outer),
        candidate=g.out(inner_end, 0),
        score=g.out(inner_end, 1),
        threshold=9.0,
        mode="best_of_n",
    )
    best = g.record(g.out(outer_end, 0))
    result = run_ok(client, g)
    assert recorded(result, best) == 211
    previews = sorted(
        o["qg_record"][0]["value"]
        for k, o in result.outputs.items()
        if result.history["meta"][k]["display_node"] == preview
    )
    assert previews == [10, 11, 110, 111, 210, 211]
    assert g.counts(client) == {"shared": 3, "inner": 6, "preview": 6, "out": 1}


def test_technical_score_as_the_score(client):
    """The pack's weights-free score in the loop: the best of three noise images by QG_TechnicalScore."""
    if "QG_TechnicalScore" not in client.get("/object_info"):
        pytest.skip("QG_TechnicalScore is not in this build (it comes with the scoring issue)")
    g = Graph()
    start = g.add("QG_RetryStart", seed=7, max_attempts=3, seed_step=1)
    image = g.out(g.add("QGTest_Noise", seed=g.out(start, 1), size=64))
    score = g.add("QG_TechnicalScore", image=image, reduce="max")
    end = g.add(
        "QG_RetryEnd", loop=g.out(start, 0), candidate=image, score=g.out(score), threshold=11.0, mode="best_of_n"
    )
    best_score, history = g.record(g.out(end, 1), "score"), g.record(g.out(end, 5), "history")
    result = run_ok(client, g)
    scores = [h["score"] for h in json.loads(recorded(result, history))]
    assert len(scores) == 3 and all(0 <= x <= 10 for x in scores)
    assert recorded(result, best_score) == max(scores)


def test_a_linked_max_attempts_out_of_range_is_an_error_naming_the_node(client):
    g = loop_graph()
    g.nodes[g.start]["inputs"]["max_attempts"] = g.json("5000")  # only known at run time
    result = client.run(g.nodes)
    assert result.status == "error"
    assert result.error["exception_message"].startswith(f"Retry Start (QG) #{g.start}: max_attempts must be from 1")
    assert "body" not in g.counts(client)


def test_an_error_inside_an_attempt_fails_the_prompt_and_the_worker_goes_on(client):
    """Attempt 3's copy of the body raises (ComfyUI reports it on the Retry End, the node it expanded from);
    no later attempt runs and the next prompt is served."""
    g = loop_graph({}, max_attempts=6, mode="best_of_n")
    third = g.add("QG_Compare", a=[g.start, 2], comparison="==", b=3)
    shape = g.add("QG_Switch", condition=g.out(third), on_true=g.json('"2,x"'), on_false=g.json('"2"'))
    g.nodes[g.body]["inputs"]["value"] = g.out(g.add("QGTest_Tensor", shape=g.out(shape), fill=1.0))
    result = client.run(g.nodes)
    assert result.status == "error" and result.error["node_id"] == g.end
    assert "invalid literal for int()" in result.error["exception_message"]
    assert g.counts(client)["body"] == 2
    small = loop_graph({"101": 9}, max_attempts=3)
    assert results(run_ok(client, small), small)[3] == 2


def history_error(entry: dict) -> dict:
    return next(data for event, data in entry["status"]["messages"] if event == "execution_error")


@pytest.mark.parametrize("failing", [3, 1])
def test_the_error_of_a_failed_attempt_names_the_attempt_and_its_seed(cclient, failing):
    """A node of attempt 3 (a copy of the body) or of attempt 1 (the body as drawn) raises: the error, on
    the websocket and in /history, and for a prompt queued without a websocket client, starts with the Retry
    End, the attempt and its seed, then the node's own message."""

    def failing_loop():
        g = loop_graph({}, max_attempts=6, mode="best_of_n")
        bad = g.add("QG_Compare", a=[g.start, 2], comparison="==", b=failing)
        shape = g.add("QG_Switch", condition=g.out(bad), on_true=g.json('"2,x"'), on_false=g.json('"2"'))
        g.nodes[g.body]["inputs"]["value"] = g.out(g.add("QGTest_Tensor", shape=g.out(shape), fill=1.0))
        return g

    g = failing_loop()
    prefix = f"Retry End (QG) #{g.end}: attempt {failing} of 6 (seed {99 + failing}) failed: "
    result = cclient.run(g.nodes)
    assert result.status == "error"
    assert result.error["exception_message"].startswith(prefix)
    assert "invalid literal for int()" in result.error["exception_message"]
    assert history_error(result.history)["exception_message"] == result.error["exception_message"]
    polled = cclient.run_polling(failing_loop().nodes)
    assert polled.status == "error"
    message = history_error(polled.history)["exception_message"]
    assert message.startswith(f"Retry End (QG) #{g.end}: attempt {failing} of 6") and message.count("failed:") == 1
    small = loop_graph({"101": 9}, max_attempts=3)
    ok = run_ok(cclient, small)
    assert results(ok, small)[3] == 2


def test_an_interrupt_of_a_long_loop_queued_without_a_client(server, client):
    # each attempt sleeps 0.1 s, so the loop cannot finish on its own before the interrupt lands (undelayed, 1000
    # attempts take about 4.5 s and a slow poll on a loaded machine could see the loop end first)
    g = loop_graph({}, max_attempts=1000, mode="best_of_n", delay=0.1)
    prompt_id = client.queue(g.nodes, use_socket=False)
    deadline = time.monotonic() + 60
    while g.counts(client).get("body", 0) < 3:  # under way (an interrupt before the prompt starts is dropped)
        assert time.monotonic() < deadline, "the loop did not start"
        time.sleep(0.05)
    client.request("POST", "/interrupt", {})
    while client.history(prompt_id).get("status", {}).get("completed") is None:
        assert time.monotonic() < deadline, "the interrupted loop did not end"
        time.sleep(0.1)
    assert client.history(prompt_id)["status"]["status_str"] == "error"
    ran = g.counts(client)["body"]
    assert 3 <= ran < 1000
    small = loop_graph({"101": 9}, max_attempts=3)
    assert results(run_ok(client, small), small)[3] == 2
    assert g.counts(client)["body"] == ran
