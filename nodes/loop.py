"""Retry loop nodes: Retry Start and Retry End (category ``quality_gate/loop``), plus two internal nodes the
end node expands into. Thin adapters over ``core.loop``; the shape of the expansion is described there.
"""

from __future__ import annotations

from . import host
from .common import ANY, HIDDEN_ID, QGNode, combo, integer, number
from .core.errors import QGError
from .core.logic import as_bool
from .core.loop import (
    FANOUT,
    MAX_ATTEMPTS,
    MODES,
    ON_FAIL,
    Config,
    LoopSpec,
    State,
    check_choice,
    check_max_attempts,
    copy_body,
    find_body,
    outputs,
    plan,
)
from .core.prompt import SEED_MAX
from .logic import BoolOp

CATEGORY = "quality_gate/loop"
INTERNAL = "quality_gate/loop/internal"
STATE = "QG_RETRY_STATE"
STEP_ID = "qg_step"
OPEN_ID = "qg_open"
END_TYPES = (ANY, "FLOAT", "INT", "INT", "BOOLEAN", "STRING")
END_NAMES = ("best", "best_score", "best_seed", "attempts", "passed", "history")
END_TOOLTIPS = (
    "The candidate of the best attempt (the first one to pass in until_threshold mode).",
    "The score of the best attempt.",
    "The seed of the best attempt.",
    "How many attempts ran.",
    "True when the best score reached the threshold.",
    'Every attempt as JSON: [{"attempt": 1, "seed": ..., "score": ...}, ...] (a NaN score is null; an attempt '
    'a closed Gate blocked adds "blocked": true).',
)


def _blocker():
    return host.blocker()


class RunningAttempts:
    """The attempt every loop of a running prompt is in, so that when a node of an attempt fails, the error
    names the attempt and its seed: ``Retry End (QG) #12: attempt 3 of 8 (seed 44) failed: <the node's own
    message>`` (an inner loop's attempt follows its outer loop's). ComfyUI reports the failing node's own
    exception and calls no pack code in between, so the message is amended on its way out: the websocket
    ``execution_error`` (``host.on_sent``; it is the same dict the history keeps) and, for prompts queued
    without a websocket client, when the history is written (``host.on_prompt_done``). Entries live from an
    attempt's start to its record, and a prompt's are dropped when it ends."""

    def __init__(self):
        self._running: dict = {}  # prompt id -> {end node's unique id: (prefix, real node id, body node ids)}
        self.enabled = False

    def start(self, state: State) -> None:
        """The attempt after ``state`` starts (its candidate and score are asked for now)."""
        if not self.enabled or state.done:
            return
        config = state.config
        prefix = f"{RetryEnd.label(config.node)}: {state.next_attempt()} failed: "
        entry = (prefix, config.real, frozenset(config.body.nodes))
        self._running.setdefault(host.executing_prompt_id(), {})[config.unique_id] = entry

    def finish(self, state: State) -> None:
        running = self._running.get(host.executing_prompt_id())
        if running is not None:
            running.pop(state.config.unique_id, None)

    def amend(self, data, running=None) -> None:
        """Prefix an ``execution_error`` message of a node in a running attempt with the attempt (once)."""
        if not isinstance(data, dict):
            return
        running = self._running.get(data.get("prompt_id")) if running is None else running
        node, message = data.get("node_id"), data.get("exception_message")
        prefix = "".join(p for p, real, body in (running or {}).values() if node == real or node in body)
        if prefix and isinstance(message, str) and not message.startswith(prefix):
            data["exception_message"] = prefix + message

    def __call__(self, prompt_id, prompt: dict, outputs: dict, meta: dict, messages: list) -> None:
        """When the prompt has run: its errors as the history keeps them (a prompt queued without a websocket
        client sends none), then its entries go."""
        running = self._running.pop(prompt_id, None)
        if running:
            for event, data in messages:
                if event == "execution_error":
                    self.amend(data, running)


RUNNING = RunningAttempts()


def setup() -> None:
    """At pack load inside ComfyUI: name the attempt and seed in the errors of failed attempts."""
    RUNNING.enabled = host.on_prompt_done(RUNNING)
    host.on_sent("execution_error", RUNNING.amend)


def _report(state: State) -> None:
    """After an attempt: the ``qg.loop`` event (to the client that queued the prompt) and ComfyUI progress
    on the end node. The progress hook also raises if the user interrupted the prompt. Then the finished
    nodes of this loop's expansion leave ComfyUI's progress registry (``host.forget_finished``), which would
    otherwise make a loop's cost grow with the square of its attempts."""
    RUNNING.finish(state)
    client = host.client_id()
    if client is not None:
        host.send_event("qg.loop", state.event(host.executing_prompt_id()), client)
    host.progress(state.config.node, state.attempts, state.config.spec.max_attempts)
    host.forget_finished(f"{state.config.unique_id}.")


def _advance(state: State, first: int, last: int) -> dict | tuple:
    """Attempts first..last: the final outputs once the loop is done, else an expansion. A range that fits
    one chain (at most FANOUT attempts) becomes a copy of the body per attempt, each followed by a step node
    whose candidate and score are lazy, so a copy runs only when the step before it says "go on". Output
    nodes in an expansion always run, so a body with output nodes hanging off it gets one block node per
    attempt instead, which expands its copy only when it runs. Larger ranges become a chain of at most
    FANOUT blocks, each of which comes back here when it runs."""
    if state.done:
        return outputs(state, _blocker())
    graph = host.graph_builder()
    body, spec = state.config.body, state.config.spec
    if first == last or (not body.outputs and last - first < FANOUT):
        previous = state
        for attempt in range(first, last + 1):
            local = "" if first == last else f"{attempt}."
            if attempt == 1:  # only with Gates in the body: attempt 1 is the body as drawn, not a copy
                copies, candidate, score, opens = {}, body.candidate, body.score, list(body.gates)
            else:
                start_outputs = (spec, spec.seed_of(attempt), attempt)
                copies, candidate, score, opens = copy_body(body, graph.prefix + local, start_outputs)
            if STEP_ID in copies or any(n.startswith(OPEN_ID) for n in copies):
                raise QGError(
                    f"a node in the loop body has an id starting {OPEN_ID!r} or the id {STEP_ID!r}, "
                    "which the loop needs for itself"
                )
            for local_id, (class_type, inputs, display) in copies.items():
                graph.node(class_type, id=local + local_id, **inputs).set_override_display_id(display)
            gate = _all_open(graph, local, opens, state.config.node)
            tail = graph.node(
                RetryStep.NODE_ID,
                id=local + STEP_ID,
                state=previous,
                candidate=candidate,
                score=score,
                **({} if gate is None else {"open": gate}),
            )
            tail.set_override_display_id(state.config.node)
            previous = tail.out(len(END_TYPES))
    else:
        previous = state
        for a, b in plan(first, last, 1 if body.outputs else FANOUT):
            tail = graph.node(RetryBlock.NODE_ID, id=f"b{a}", state=previous, first=a, last=b)
            tail.set_override_display_id(state.config.node)
            previous = tail.out(len(END_TYPES))
    return {"result": tuple(tail.out(i) for i in range(len(END_TYPES) + 1)), "expand": graph.finalize()}


def _all_open(graph, local: str, opens: list, display: str):
    """The step's ``open`` input: None without Gates, else whether every Gate of this attempt is open (a
    constant, a link, or a chain of lazy BoolOp and nodes that stops at the first closed Gate)."""
    opens = [o for o in opens if o is not True]
    if not opens:
        return None
    result = opens[0]
    for i, other in enumerate(opens[1:], start=1):
        node = graph.node(BoolOp.NODE_ID, id=f"{local}{OPEN_ID}{i}", op="and", a=result, b=other)
        node.set_override_display_id(display)
        result = node.out(0)
    return result


def _is_output(class_type: str) -> bool:
    return getattr(host.node_class(class_type), "OUTPUT_NODE", False) is True


def _loop_state(node: type[QGNode], state, unique_id) -> State:
    """The internal nodes' ``state`` input, which only Retry End's expansion can make."""
    if not isinstance(state, State):
        message = f"state must be a loop state made by Retry End (this node is internal), got {type(state).__name__}"
        raise QGError(f"{node.label(unique_id)}: {message}")
    return state


class RetryStart(QGNode):
    TITLE = "Retry Start"
    CATEGORY = CATEGORY
    DESCRIPTION = (
        "Starts a retry loop: everything downstream of this node and upstream of its Retry End runs once per "
        "attempt, with seed = seed + (attempt - 1) * seed_step. Nodes outside the loop (model loaders, text "
        "encoders) run once. Connect loop to Retry End, and seed (or attempt) into the nodes that make the "
        f"candidate. At most {MAX_ATTEMPTS} attempts."
    )
    RETURN_TYPES = ("QG_LOOP", "INT", "INT")
    RETURN_NAMES = ("loop", "seed", "attempt")
    OUTPUT_TOOLTIPS = (
        "Connect to Retry End's loop input.",
        "This attempt's seed: seed + (attempt - 1) * seed_step, wrapping at 2^64.",
        "This attempt's number, 1-based.",
    )

    @classmethod
    def INPUT_TYPES(cls):
        seed = integer(0, 0, SEED_MAX, "The seed of attempt 1 (0 to 2^64 - 1).")
        seed[1]["control_after_generate"] = True
        return {
            "required": {
                "seed": seed,
                "max_attempts": integer(
                    4, 1, MAX_ATTEMPTS, f"The most attempts the loop runs, 1 to {MAX_ATTEMPTS}; never exceeded."
                ),
                "seed_step": integer(
                    1,
                    -SEED_MAX,
                    SEED_MAX,
                    "Added to the seed for each further attempt (wrapping at 2^64). 0 = the same seed every "
                    "attempt.",
                ),
            },
            "hidden": HIDDEN_ID,
        }

    def execute(self, seed, max_attempts, seed_step, unique_id=None):
        """Attempt 1 (the body as drawn); the copies of the body for later attempts get their seed and
        attempt number as values from Retry End's expansion."""
        with self.errors_named(unique_id):
            spec = LoopSpec(str(unique_id), int(seed), int(seed_step), check_max_attempts(max_attempts))
            return (spec, spec.seed, 1)


class RetryEnd(QGNode):
    TITLE = "Retry End"
    CATEGORY = CATEGORY
    DESCRIPTION = (
        "Ends a retry loop and keeps the best candidate. until_threshold stops at the first attempt whose "
        "score >= threshold; best_of_n runs every attempt. Ties keep the earlier attempt; a NaN score never "
        "wins or passes. Without a pass, on_fail returns the best (passed false), blocks everything "
        "downstream, or fails the prompt. A Gate in the body that is closed (on_closed block) makes its "
        "attempt a failed one (noted blocked in the history) and the loop goes on; when every attempt was "
        "blocked there is no candidate, so the outputs block (or on_fail error fails). Output nodes that hang "
        "off the loop body (a preview of each candidate) run for every attempt. Sends a qg.loop event and "
        "progress after each attempt. A loop inside another loop's body works (the inner loop runs in full in "
        "each outer attempt)."
    )
    RETURN_TYPES = END_TYPES
    RETURN_NAMES = END_NAMES
    OUTPUT_TOOLTIPS = END_TOOLTIPS

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "loop": ("QG_LOOP", {"tooltip": "From Retry Start's loop output."}),
                "candidate": (
                    ANY,
                    {
                        "lazy": True,
                        "tooltip": "What an attempt makes (an image, a latent...): the loop keeps the best.",
                    },
                ),
                "score": (
                    "FLOAT",
                    {
                        "lazy": True,
                        "forceInput": True,
                        "default": 0.0,
                        "min": -1e9,
                        "max": 1e9,
                        "step": 0.01,
                        "tooltip": "This attempt's score (higher is better), e.g. from Technical Score.",
                    },
                ),
                "threshold": number(
                    6.0, -1e9, 1e9, "A score at or above this passes (same units as score, e.g. 0-10)."
                ),
                "mode": combo(
                    MODES,
                    "until_threshold",
                    "until_threshold: stop at the first attempt that passes. best_of_n: run every attempt and "
                    "keep the best.",
                ),
            },
            "optional": {
                "on_fail": combo(
                    ON_FAIL,
                    "return_best",
                    "When no attempt passes: return_best = output the best anyway with passed false; block = "
                    "skip everything downstream silently; error = fail the prompt with a message.",
                ),
            },
            "hidden": {**HIDDEN_ID, "dynprompt": "DYNPROMPT"},
        }

    @staticmethod
    def _config(loop, threshold, mode, on_fail, unique_id, dynprompt) -> Config:
        if not isinstance(loop, LoopSpec):
            raise QGError(f"loop must come from a Retry Start node, got {type(loop).__name__}")
        # only this node's own level of the graph: never the nodes other loops expanded into
        parent = dynprompt.get_parent_node_id(unique_id)
        level = [n for n in dynprompt.all_node_ids() if dynprompt.get_parent_node_id(n) == parent]
        body = find_body(dynprompt.get_node, level, loop.start, unique_id, _is_output, dynprompt.get_display_node_id)
        return Config(
            loop,
            float(threshold),
            check_choice("mode", mode, MODES),
            check_choice("on_fail", on_fail, ON_FAIL),
            dynprompt.get_display_node_id(unique_id),
            body,
            str(unique_id),
            str(dynprompt.get_real_node_id(unique_id)),
        )

    def check_lazy_status(self, loop, threshold, mode, candidate=None, score=None, **inputs):
        """The candidate and score of attempt 1, unless a Gate in the body can block them: then attempt 1 runs
        in the expansion too, behind a step that asks the Gates first."""
        if candidate is not None and score is not None:  # asked for and evaluated: execute() comes next
            return []
        try:
            config = self._config(
                loop, threshold, mode, inputs.get("on_fail", "return_best"), inputs["unique_id"], inputs["dynprompt"]
            )
        except QGError:  # execute() reports it
            return []
        if config.body.gates:
            return []
        RUNNING.start(State(config))
        return ["candidate", "score"]

    def execute(
        self, loop, threshold, mode, candidate=None, score=None, on_fail="return_best", unique_id=None, dynprompt=None
    ):
        node = dynprompt.get_display_node_id(unique_id)
        with self.errors_named(node):
            config = self._config(loop, threshold, mode, on_fail, unique_id, dynprompt)
            if config.body.gates:
                result = _advance(State(config), 1, loop.max_attempts)
            else:
                state = State(config).record(candidate, score)
                _report(state)
                result = _advance(state, 2, loop.max_attempts)
        if isinstance(result, dict):
            result["result"] = result["result"][: len(END_TYPES)]
            return result
        return result[: len(END_TYPES)]


class RetryBlock(QGNode):
    TITLE = "Retry Block"
    CATEGORY = INTERNAL
    DESCRIPTION = (
        "Internal to Retry End, which creates it while the loop runs; not meant to be placed by hand. Runs "
        "attempts first..last of a loop unless the loop is already done."
    )
    RETURN_TYPES = (*END_TYPES, STATE)
    RETURN_NAMES = (*END_NAMES, "state")
    OUTPUT_TOOLTIPS = (*END_TOOLTIPS, "The loop state after these attempts (internal).")

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "state": (STATE, {"tooltip": "The loop state before these attempts (internal)."}),
                "first": integer(2, 1, MAX_ATTEMPTS, "The first attempt of this block (1-based)."),
                "last": integer(2, 1, MAX_ATTEMPTS, "The last attempt of this block (inclusive)."),
            },
            "hidden": HIDDEN_ID,
        }

    def execute(self, state, first, last, unique_id=None):
        with RetryEnd.errors_named(_loop_state(type(self), state, unique_id).config.node):
            if first != state.attempts + 1 and not state.done:
                raise QGError(f"internal: block {first}..{last} after {state.attempts} attempts")
            return _advance(state, first, last)


class RetryStep(QGNode):
    TITLE = "Retry Step"
    CATEGORY = INTERNAL
    DESCRIPTION = (
        "Internal to Retry End, which creates it while the loop runs; not meant to be placed by hand. Records "
        "one attempt's candidate and score and decides whether the loop goes on; once the loop is done it "
        "passes the result on without running its attempt."
    )
    RETURN_TYPES = (*END_TYPES, STATE)
    RETURN_NAMES = (*END_NAMES, "state")
    OUTPUT_TOOLTIPS = (*END_TOOLTIPS, "The loop state after this attempt (internal).")

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "state": (STATE, {"tooltip": "The loop state before this attempt (internal)."}),
                "candidate": (ANY, {"lazy": True, "tooltip": "This attempt's candidate (runs only if needed)."}),
                "score": (
                    "FLOAT",
                    {
                        "lazy": True,
                        "forceInput": True,
                        "default": 0.0,
                        "min": -1e9,
                        "max": 1e9,
                        "step": 0.01,
                        "tooltip": "This attempt's score.",
                    },
                ),
            },
            "optional": {
                "open": (
                    "BOOLEAN",
                    {
                        "lazy": True,
                        "forceInput": True,
                        "tooltip": "Whether every blocking Gate of this attempt's body is open; false = the "
                        "attempt is blocked (a failed attempt) and its candidate never runs.",
                    },
                ),
            },
            "hidden": HIDDEN_ID,
        }

    def check_lazy_status(self, state, candidate=None, score=None, unique_id=None, **gate):
        """Nothing once the loop is done; with Gates in the body first whether they are all open, and the
        candidate and score only then (a closed Gate would block them, and this node with them)."""
        if not isinstance(state, State) or state.done:
            return []
        if "open" in gate:
            if gate["open"] is None:
                return ["open"]
            if not as_bool(gate["open"], "open"):
                return []
        RUNNING.start(state)
        return ["candidate", "score"]

    def execute(self, state, candidate=None, score=None, unique_id=None, open=True):
        with RetryEnd.errors_named(_loop_state(type(self), state, unique_id).config.node):
            if not state.done:  # else the loop ended before this attempt: pass the result on
                state = state.record(candidate, score) if as_bool(open, "open") else state.record_blocked()
                _report(state)
            return outputs(state, _blocker())
