"""Plain logic of the retry loop: seeds, the loop state, the decision after each attempt, the body of the
loop in a prompt graph, and the plan of the expansion.

Nothing here imports ComfyUI. A prompt graph is read through ``get_node(id) -> {"class_type", "inputs"}``
and a list of node ids, so the walks are testable on plain dicts. Bad input raises ``QGError``.

Shape of a loop at run time (see README "Retry loop"): attempt 1 is the body as the user drew it; the end
node records it and, unless it is done, expands the remaining attempts. Up to ``FANOUT`` attempts become
one chain: a copy of the body per attempt, each followed by a step node whose candidate and score inputs are
lazy, so a copy runs only when the step before it says "go on". More attempts become a chain of at most
``FANOUT`` block nodes, each expanding its share of the attempts the same way when it runs (a chain of
steps, or of smaller blocks) and passing the result on without expanding once the loop is done. A body with
output nodes hanging off it gets one block per attempt at the bottom instead (output nodes in an expansion
always run). The state flows as a link within one chain and as a value into a new expansion, so no node's
ancestry reaches back into earlier expansions: every chain is at most ``FANOUT`` long and nesting grows
with the logarithm of ``max_attempts`` (three levels at 1000 attempts, four with output nodes in the body).
"""

from __future__ import annotations

import json
import math
import numbers
from dataclasses import dataclass, field, replace
from typing import Any

from .errors import QGError
from .prompt import SEED_MAX, is_link
from .ranking import json_number

MODES = ("until_threshold", "best_of_n")
ON_FAIL = ("return_best", "block", "error")
MAX_ATTEMPTS = 1000
# ComfyUI's cache signs each new node with its whole ancestry, so a chain of F steps costs about F^2 and a
# loop about attempts * F: at 1000 attempts 10 took half the time of 32 here (dev/bench_loop.py)
FANOUT = 10
GATE = "QG_Gate"  # a closed Gate with on_closed block in the body makes its attempt a failed one


def seed_for(seed: int, seed_step: int, attempt: int) -> int:
    """The seed of an attempt (1-based): seed + (attempt - 1) * seed_step, wrapping at 2^64."""
    return (int(seed) + (int(attempt) - 1) * int(seed_step)) % (SEED_MAX + 1)


def check_max_attempts(value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise QGError(f"max_attempts must be an INT from 1 to {MAX_ATTEMPTS}, got {type(value).__name__} {value!r}")
    if not 1 <= int(value) <= MAX_ATTEMPTS:
        raise QGError(f"max_attempts must be from 1 to {MAX_ATTEMPTS}, got {value}")
    return int(value)


def check_choice(name: str, value, options) -> str:
    if value not in options:
        raise QGError(f"{name} {value!r} is not known; expected one of: {', '.join(options)}")
    return value


def as_score(value) -> float:
    """A score as a float: numbers and one-element tensors; anything else is an error."""
    if hasattr(value, "numel") and hasattr(value, "item"):
        if value.numel() != 1:
            raise QGError(f"score must be one number, got a tensor of shape {tuple(value.shape)}")
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise QGError(f"score must be a FLOAT, got {type(value).__name__} {str(value)[:40]!r}")
    return float(value)


def _better(score: float, best: float) -> bool:
    """Strictly better (ties keep the earlier attempt); NaN is worse than any number."""
    if math.isnan(score):
        return False
    return math.isnan(best) or score > best


def passes(score: float, threshold: float) -> bool:
    return not math.isnan(score) and score >= threshold


@dataclass(frozen=True)
class LoopSpec:
    """What QG_RetryStart hands to QG_RetryEnd through its ``loop`` output."""

    start: str  # the start node's id
    seed: int
    seed_step: int
    max_attempts: int

    def seed_of(self, attempt: int) -> int:
        return seed_for(self.seed, self.seed_step, attempt)


@dataclass(frozen=True, eq=False)
class Config:
    spec: LoopSpec
    threshold: float
    mode: str
    on_fail: str
    node: str  # the end node's id as shown (its display id): events, progress, messages
    body: Body | None = None
    unique_id: str = ""  # the end node's own id: every node it expands into has an id starting "<unique_id>."
    real: str = ""  # the top-level node of the prompt the end node is (or was expanded from): errors name it


@dataclass(frozen=True, eq=False, repr=False)
class State:
    """The loop after some attempts. Immutable: each attempt makes a new one (the candidate is shared by
    reference, never copied)."""

    config: Config
    attempts: int = 0
    best: Any = None
    best_score: float = math.nan
    best_seed: int = 0
    best_attempt: int = 0
    score: float = math.nan  # the latest attempt's score
    history: str = ""  # the JSON objects of every attempt so far, joined by ", " (built once per attempt)
    done: bool = False

    def __repr__(self) -> str:  # short: ComfyUI prints inputs in error reports
        return (
            f"<retry loop of #{self.config.node}: {self.attempts}/{self.config.spec.max_attempts} attempts, "
            f"best {self.best_score:g} at attempt {self.best_attempt}>"
        )

    @property
    def passed(self) -> bool:
        return self.best_attempt > 0 and passes(self.best_score, self.config.threshold)

    def record(self, candidate, score) -> State:
        """The state after the next attempt, with the decision whether the loop is done."""
        config = self.config
        attempt = self.attempts + 1
        if self.done or attempt > config.spec.max_attempts:
            raise QGError(f"attempt {attempt} recorded after the loop ended (max_attempts {config.spec.max_attempts})")
        score = as_score(score)
        seed = config.spec.seed_of(attempt)
        item = json.dumps({"attempt": attempt, "seed": seed, "score": json_number(score)})
        history = f"{self.history}, {item}" if self.history else item
        new = {"attempts": attempt, "score": score, "history": history}
        if self.best_attempt == 0 or _better(score, self.best_score):
            new.update(best=candidate, best_score=score, best_seed=seed, best_attempt=attempt)
        state = replace(self, **new)
        stop = config.mode == "until_threshold" and passes(score, config.threshold)
        return replace(state, done=stop or attempt >= config.spec.max_attempts)

    def record_blocked(self) -> State:
        """The state after an attempt that a closed Gate (on_closed block) in the body blocked: a failed
        attempt (score -inf, noted ``"blocked": true`` in the history) that never becomes the best; the loop
        goes on unless it was the last attempt."""
        config = self.config
        attempt = self.attempts + 1
        if self.done or attempt > config.spec.max_attempts:
            raise QGError(f"attempt {attempt} recorded after the loop ended (max_attempts {config.spec.max_attempts})")
        seed = config.spec.seed_of(attempt)
        item = json.dumps({"attempt": attempt, "seed": seed, "score": None, "blocked": True})
        history = f"{self.history}, {item}" if self.history else item
        done = attempt >= config.spec.max_attempts
        return replace(self, attempts=attempt, score=-math.inf, history=history, done=done)

    def next_attempt(self) -> str:
        """The attempt about to run, as an error names it: ``attempt 3 of 8 (seed 44)``."""
        spec = self.config.spec
        return f"attempt {self.attempts + 1} of {spec.max_attempts} (seed {spec.seed_of(self.attempts + 1)})"

    def event(self, prompt_id) -> dict:
        """The ``qg.loop`` websocket event after the latest attempt."""
        return {
            "prompt_id": prompt_id,
            "node": self.config.node,
            "attempt": self.attempts,
            "max_attempts": self.config.spec.max_attempts,
            "seed": self.config.spec.seed_of(self.attempts),
            "score": json_number(self.score),
            "best_score": json_number(self.best_score),
            "best_attempt": self.best_attempt,
            "threshold": json_number(self.config.threshold),
            "passed": self.passed,
            "done": self.done,
        }

    def history_json(self) -> str:
        return f"[{self.history}]"

    def failure(self) -> str:
        spec = self.config.spec
        if self.best_attempt == 0:
            return (
                f"every attempt ({self.attempts} of {spec.max_attempts}) was blocked by a closed Gate in the loop "
                "body and on_fail is 'error'"
            )
        return (
            f"no attempt reached the threshold {self.config.threshold:g} in {self.attempts} of "
            f"{spec.max_attempts} attempts (best score {self.best_score:g} at attempt {self.best_attempt}, "
            f"seed {self.best_seed}) and on_fail is 'error'"
        )


def outputs(state: State, blocked) -> tuple:
    """The end node's six outputs plus the state; ``blocked`` (an ExecutionBlocker) replaces the six when
    the loop ended without a pass and on_fail is block, or when every attempt was blocked (no candidate to
    return). on_fail error raises."""
    values = (state.best, state.best_score, state.best_seed, state.attempts, state.passed, state.history_json())
    if state.done and not state.passed:
        if state.config.on_fail == "error":
            raise QGError(state.failure())
        if state.config.on_fail == "block" or state.best_attempt == 0:  # every attempt blocked: nothing to return
            values = (blocked,) * len(values)
    return (*values, state)


# --- the body of the loop ------------------------------------------------------------------------------


def _links(node: dict):
    return [v[0] for v in node["inputs"].values() if is_link(v)]


@dataclass(frozen=True, eq=False)
class Body:
    """The nodes copied for each attempt: ``nodes`` (id -> {"class_type", "inputs"}) are the body
    (downstream of ``start`` and upstream of end) and the nodes that hang off it towards an output node;
    ``candidate`` and ``score`` are the end node's two inputs. The start node itself is not copied: each
    copy gets its attempt's outputs as values."""

    start: str
    nodes: dict = field(default_factory=dict)
    display: dict = field(default_factory=dict)  # id -> the id shown for it (progress, previews)
    outputs: frozenset = frozenset()
    candidate: Any = None
    score: Any = None
    gates: tuple = ()  # the ``open`` inputs of the blocking Gates (on_closed block) in the body


def find_body(get_node, node_ids, start: str, end: str, is_output, display=lambda node: node) -> Body:
    """The loop body in a prompt graph: {descendants of start} ∩ {ancestors of end}, plus the nodes
    downstream of it that lead to an output node without passing through end, and the ``open`` inputs of the
    body's Gates that block when closed (``GATE`` with on_closed block). Iterative walks only."""
    end_node = get_node(end)
    ancestors, stack = set(), _links(end_node)
    while stack:
        node = stack.pop()
        if node not in ancestors:
            ancestors.add(node)
            stack.extend(_links(get_node(node)))
    if start not in ancestors:
        raise QGError(f"the loop input does not come from Retry Start #{start} upstream of this node")
    graph = {n: get_node(n) for n in node_ids}
    children: dict[str, list] = {}
    for node, info in graph.items():
        for parent in _links(info):
            children.setdefault(parent, []).append(node)

    def downstream(roots, allowed=None):
        seen, stack = set(), list(roots)
        while stack:
            for child in children.get(stack.pop(), ()):
                if child not in seen and (allowed is None or child in allowed):
                    seen.add(child)
                    stack.append(child)
        return seen

    body = downstream([start], ancestors) - {start}
    inputs = end_node["inputs"]
    if not any(is_link(inputs.get(name)) and inputs[name][0] in body | {start} for name in ("candidate", "score")):
        raise QGError(
            f"neither candidate nor score depends on Retry Start #{start}, so every attempt would be the "
            "same: connect its seed (or attempt) output into the nodes that make the candidate"
        )
    after_end = downstream([end]) | {end}
    hanging = downstream(body | {start}) - body - after_end - {start}
    # keep only what leads to an output node: the rest would never run
    parents = {n: [p for p in _links(graph[n]) if p in hanging] for n in hanging}
    wanted, stack = set(), [n for n in hanging if is_output(graph[n]["class_type"])]
    while stack:
        node = stack.pop()
        if node not in wanted:
            wanted.add(node)
            stack.extend(parents[node])
    copied = body | wanted
    return Body(
        start=start,
        nodes={n: graph[n] for n in copied},
        display={n: display(n) for n in copied},
        outputs=frozenset(n for n in wanted if is_output(graph[n]["class_type"])),
        candidate=inputs.get("candidate"),
        score=inputs.get("score"),
        gates=tuple(
            graph[n]["inputs"].get("open", True)
            for n in sorted(body)
            if graph[n]["class_type"] == GATE and graph[n]["inputs"].get("on_closed", "block") == "block"
        ),
    )


def plan(first: int, last: int, chain: int = FANOUT, fanout: int = FANOUT) -> list[tuple[int, int]]:
    """Split attempts first..last (inclusive) into at most ``fanout`` consecutive ranges of ``chain`` times
    a power of ``fanout`` attempts each, the smallest such size that needs no more ranges (the last range
    may be shorter). So the chains at the bottom are full (``chain`` attempts; a loop's cost per attempt
    does not grow with ``max_attempts``) and a range of one attempt (with ``chain`` 1) is one copy."""
    count = last - first + 1
    if count < 1:
        raise QGError(f"no attempts in {first}..{last}")
    size = chain
    while size * fanout < count:
        size *= fanout
    return [(a, min(a + size - 1, last)) for a in range(first, last + 1, size)]


def copy_body(body: Body, prefix: str, start_outputs: tuple) -> tuple[dict, Any, Any, list]:
    """One attempt's copy of the body for a GraphBuilder whose ids are ``prefix + local id`` (the local id
    is the original id): links between copied nodes point at the copies, links to the start node become
    this attempt's values ``start_outputs`` (loop, seed, attempt), and every other link and constant stays
    as it is, so nodes outside the body run once. Returns {local id: (class_type, inputs, display id)}, the
    step node's candidate and score inputs, and the copies' Gate ``open`` inputs."""

    def remap(value):
        if is_link(value) and value[0] == body.start:
            return start_outputs[int(value[1])]
        if is_link(value) and value[0] in body.nodes:
            return [prefix + value[0], value[1]]
        return value

    nodes = {
        node_id: (info["class_type"], {name: remap(v) for name, v in info["inputs"].items()}, body.display[node_id])
        for node_id, info in body.nodes.items()
    }
    return nodes, remap(body.candidate), remap(body.score), [remap(g) for g in body.gates]
