"""The retry loop's plain logic: seeds, decisions, the body of a loop in a prompt graph, the expansion plan."""

import json
import math

import pytest
from quality_gate.nodes.core.errors import QGError
from quality_gate.nodes.core.loop import (
    FANOUT,
    Config,
    LoopSpec,
    State,
    check_max_attempts,
    copy_body,
    find_body,
    outputs,
    plan,
    seed_for,
)
from quality_gate.nodes.core.prompt import SEED_MAX

BLOCKED = object()


def state(max_attempts=4, threshold=6.0, mode="until_threshold", on_fail="return_best", seed=10, step=1):
    return State(Config(LoopSpec("1", seed, step, max_attempts), threshold, mode, on_fail, "9"))


def run(scores, **kw):
    s = state(max_attempts=len(scores), **kw)
    for i, score in enumerate(scores, 1):
        s = s.record(f"c{i}", score)
        if s.done:
            break
    return s


def test_seeds_step_and_wrap_at_2_64():
    assert [seed_for(10, 3, a) for a in (1, 2, 3)] == [10, 13, 16]
    assert seed_for(SEED_MAX, 1, 2) == 0 and seed_for(0, -1, 2) == SEED_MAX
    assert seed_for(5, 0, 1000) == 5


def test_until_threshold_stops_at_the_first_pass():
    s = run([1, 7, 9, 2])
    assert (s.attempts, s.best, s.best_score, s.best_seed, s.passed, s.done) == (2, "c2", 7.0, 11, True, True)


def test_best_of_n_runs_all_and_ties_keep_the_earliest():
    s = run([3, 8, 8, 1], mode="best_of_n")
    assert (s.attempts, s.best, s.best_attempt, s.passed) == (4, "c2", 2, True)
    assert json.loads(s.history_json())[2] == {"attempt": 3, "seed": 12, "score": 8.0}


def test_nan_never_wins_or_passes():
    s = run([math.nan, 2, math.nan], mode="best_of_n")
    assert (s.best, s.best_score) == ("c2", 2.0)
    s = run([math.nan, math.nan], mode="best_of_n", threshold=-1e9)
    assert s.best_attempt == 1 and not s.passed
    assert json.loads(s.history_json())[0]["score"] is None


def test_never_more_than_max_attempts():
    s = run([1, 1, 1])
    assert s.done and s.attempts == 3
    with pytest.raises(QGError, match="after the loop ended"):
        s.record("x", 9)


def test_outputs_on_fail():
    failed = run([1, 2])
    assert outputs(failed, BLOCKED)[:5] == ("c2", 2.0, 11, 2, False)
    assert outputs(run([1, 2], on_fail="block"), BLOCKED)[:6] == (BLOCKED,) * 6
    with pytest.raises(QGError, match="no attempt reached the threshold 6 in 2 of 2 attempts"):
        outputs(run([1, 2], on_fail="error"), BLOCKED)
    assert outputs(run([1, 9], on_fail="block"), BLOCKED)[0] == "c2"


def test_event_fields():
    event = run([1, 7]).event("p")
    assert event == {
        "prompt_id": "p",
        "node": "9",
        "attempt": 2,
        "max_attempts": 2,
        "seed": 11,
        "score": 7.0,
        "best_score": 7.0,
        "best_attempt": 2,
        "threshold": 6.0,
        "passed": True,
        "done": True,
    }


def test_bad_scores_and_counts():
    with pytest.raises(QGError, match="score must be a FLOAT, got str"):
        state().record("c", "7")
    for bad in (0, 1001, True, 2.5):
        with pytest.raises(QGError, match="max_attempts"):
            check_max_attempts(bad)


@pytest.mark.parametrize("count", [1, 2, 9, 10, 11, 31, 99, 100, 101, 999, 1000])
@pytest.mark.parametrize("chain", [FANOUT, 1])
def test_plan_covers_the_range_in_at_most_fanout_blocks_of_full_chains(count, chain):
    def check(first, last, depth=0):
        """Expand first..last as _advance does; returns the chains at the bottom and the deepest level."""
        if last - first < chain:
            return [(first, last)], depth
        ranges = plan(first, last, chain)
        assert len(ranges) <= FANOUT and ranges[0][0] == first and ranges[-1][1] == last
        assert all(b >= a and ranges[i + 1][0] == b + 1 for i, (a, b) in enumerate(ranges[:-1]))
        sizes = {b - a + 1 for a, b in ranges[:-1]}
        assert len(sizes) <= 1 and ranges[-1][1] - ranges[-1][0] + 1 <= max(sizes, default=last - first + 1)
        found = [check(a, b, depth + 1) for a, b in ranges]
        return [c for chains, _ in found for c in chains], max(d for _, d in found)

    chains, depth = check(2, count + 1)
    assert [a for a, _ in chains] == list(range(2, count + 2, chain))  # full chains, only the last one short
    assert depth <= (3 if chain == 1 else 2)


def graph_of(**nodes):
    return {k: {"class_type": v[0], "inputs": v[1]} for k, v in nodes.items()}


GRAPH = graph_of(
    ckpt=("Loader", {}),
    start=("QG_RetryStart", {"seed": 1, "max_attempts": 3, "seed_step": 1}),
    sample=("Sampler", {"model": ["ckpt", 0], "seed": ["start", 1]}),
    decode=("Decode", {"samples": ["sample", 0]}),
    score=("Score", {"image": ["decode", 0]}),
    preview=("Preview", {"images": ["decode", 0]}),
    unused=("Scale", {"image": ["decode", 0]}),
    end=("QG_RetryEnd", {"loop": ["start", 0], "candidate": ["decode", 0], "score": ["score", 0]}),
    save=("Save", {"images": ["end", 0]}),
    mix=("Preview", {"a": ["end", 0], "b": ["decode", 0]}),
)


def test_body_is_between_start_and_end_plus_hanging_output_nodes():
    body = find_body(GRAPH.__getitem__, list(GRAPH), "start", "end", lambda c: c in ("Preview", "Save"))
    assert set(body.nodes) == {"sample", "decode", "score", "preview"}
    assert body.outputs == {"preview"} and body.candidate == ["decode", 0]
    copies, candidate, score, _ = copy_body(body, "p.", ("spec", 104, 5))
    assert candidate == ["p.decode", 0] and score == ["p.score", 0]
    assert copies["sample"][1] == {"model": ["ckpt", 0], "seed": 104}  # outside stays linked
    assert copies["decode"] == ("Decode", {"samples": ["p.sample", 0]}, "decode")
    assert GRAPH["sample"]["inputs"]["seed"] == ["start", 1]


def test_a_body_that_does_not_depend_on_start_is_an_error():
    graph = graph_of(
        start=("QG_RetryStart", {}),
        make=("Make", {}),
        end=("QG_RetryEnd", {"loop": ["start", 0], "candidate": ["make", 0], "score": 1.0}),
    )
    with pytest.raises(QGError, match="neither candidate nor score depends on Retry Start #start"):
        find_body(graph.__getitem__, list(graph), "start", "end", lambda c: False)
