"""Lazy logic nodes: Compare, Switch, Select, BoolOp, Gate (category ``quality_gate/logic``).

Thin adapters over ``core.logic``. Laziness: ComfyUI calls ``check_lazy_status`` first; it names the lazy
inputs still needed, and only those upstream branches run.
"""

from __future__ import annotations

from contextlib import suppress

from . import host
from .common import ANY, HIDDEN_ID, QGNode, boolean, combo, integer, number, socket
from .core.errors import QGError
from .core.logic import (
    ABSENT,
    BOOL_OPS,
    COMPARISONS,
    MAX_SLOTS,
    SELECT_MODES,
    as_bool,
    bool_op,
    check_bool_op,
    check_comparison,
    check_index,
    compare,
    connected_slots,
    decided_by_a,
    describe,
    first_non_empty_request,
    first_non_empty_scan,
    pending,
    require_slot,
    slot_name,
)

CATEGORY = "quality_gate/logic"


class Compare(QGNode):
    TITLE = "Compare"
    CATEGORY = CATEGORY
    DESCRIPTION = (
        "Compares a with b (and c for between) and outputs a BOOLEAN plus a sentence explaining it. Numbers "
        "compare numerically (bools, ints, floats, one-element tensors, and numeric strings against numbers); "
        "strings compare as strings; contains also looks in lists, tuples and dict keys. NaN makes every "
        "comparison false except not_equal. Values that cannot be compared are an error, never a silent false."
    )
    RETURN_TYPES = ("BOOLEAN", "STRING")
    RETURN_NAMES = ("result", "explanation")
    OUTPUT_TOOLTIPS = (
        "True when the comparison holds.",
        'The comparison in words with the values seen, e.g. "INT 7 >= INT 5: true".',
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "a": socket(ANY, "The value to test (any type)."),
                "comparison": combo(
                    COMPARISONS,
                    "greater_equal",
                    "How a is tested. between is inclusive (b <= a <= c); matches_regex searches a for the "
                    'pattern b anywhere (anchor with ^ and $); is_empty is true for None, "", empty lists, '
                    "dicts and tensors (0 is not empty). API callers may also write == != < <= > >=.",
                ),
            },
            "optional": {
                "b": socket(
                    ANY,
                    "The value a is compared with; the lower bound for between, the pattern for "
                    "matches_regex. Not needed by is_empty / is_not_empty.",
                ),
                "c": socket(ANY, "The upper bound for between (inclusive). Used by between only."),
                "tolerance": number(
                    0.0,
                    0.0,
                    1e12,
                    "Numeric equal / not_equal only: values within this absolute distance count as equal. "
                    "0 = exact.",
                    step=0.001,
                ),
                "case_sensitive": boolean(
                    True,
                    "String comparisons, contains, starts/ends_with and regex: on = 'Cat' differs from 'cat'; "
                    "off = case is ignored.",
                ),
            },
            "hidden": HIDDEN_ID,
        }

    @classmethod
    def VALIDATE_INPUTS(cls, comparison, b=ABSENT, c=ABSENT):
        if comparison is None:  # linked: checked when it runs
            return True
        return cls.validation(lambda: check_comparison(comparison, b, c))

    def execute(self, a, comparison, b=ABSENT, c=ABSENT, tolerance=0.0, case_sensitive=True, unique_id=None):
        with self.errors_named(unique_id):
            return compare(a, comparison, b, c, tolerance, case_sensitive)


def _branch(condition) -> str:
    return "on_true" if as_bool(condition, "condition") else "on_false"


def _require_branch(condition, connected: set) -> str:
    chosen = _branch(condition)
    if chosen not in connected:
        raise QGError(f"condition is {chosen == 'on_true'}, which chooses {chosen}, but {chosen} is not connected")
    return chosen


class Switch(QGNode):
    TITLE = "Switch"
    CATEGORY = CATEGORY
    DESCRIPTION = (
        "Passes on_true when condition is true, else on_false. Lazy: only the chosen branch runs; the other "
        "one is never executed. Choosing a branch that is not connected is an error naming it, never a "
        "silent None."
    )
    RETURN_TYPES = (ANY,)
    RETURN_NAMES = ("value",)
    OUTPUT_TOOLTIPS = ("The value of the chosen branch.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "condition": boolean(
                    True,
                    "Which branch to pass: true = on_true, false = on_false.",
                    label_on="on_true",
                    label_off="on_false",
                ),
            },
            "optional": {
                "on_true": socket(ANY, "Passed when condition is true. Runs only then.", lazy=True),
                "on_false": socket(ANY, "Passed when condition is false. Runs only then.", lazy=True),
            },
            "hidden": HIDDEN_ID,
        }

    @classmethod
    def VALIDATE_INPUTS(cls, condition, on_true=ABSENT, on_false=ABSENT):
        def check():
            connected = {name for name, v in (("on_true", on_true), ("on_false", on_false)) if v is not ABSENT}
            if not connected:
                raise QGError("connect on_true or on_false (or both)")
            if condition is not None:  # a constant: the choice is known now
                _require_branch(condition, connected)

        return cls.validation(check)

    def check_lazy_status(self, condition, **inputs):
        with suppress(QGError):  # a bad condition: request nothing, execute() reports it
            return pending(_branch(condition), inputs)
        return []

    def execute(self, condition, unique_id=None, **inputs):
        with self.errors_named(unique_id):
            return (inputs[_require_branch(condition, set(inputs))],)


class Select(QGNode):
    TITLE = "Select"
    CATEGORY = CATEGORY
    DESCRIPTION = (
        f"Picks one of up to {MAX_SLOTS} inputs. index mode: only input_<index> runs. first_non_empty mode: "
        'inputs run one at a time in order until one gives a non-empty value (None, "", empty lists and '
        "empty tensors are empty). Choosing an unconnected slot, an index out of range, or finding every "
        "input empty is an error naming the slot."
    )
    RETURN_TYPES = (ANY, "INT")
    RETURN_NAMES = ("value", "index")
    OUTPUT_TOOLTIPS = ("The chosen input's value.", "The number of the chosen input (1-based).")

    @classmethod
    def INPUT_TYPES(cls):
        slots = {
            slot_name(i): socket(ANY, f"Candidate {i}. Runs only when chosen (lazy).", lazy=True)
            for i in range(1, MAX_SLOTS + 1)
        }
        return {
            "required": {
                "mode": combo(
                    SELECT_MODES,
                    "index",
                    "index: pass input_<index>. first_non_empty: try the connected inputs in order and pass "
                    "the first non-empty one.",
                ),
                "index": integer(
                    1,
                    1,
                    MAX_SLOTS,
                    f"index mode: which input to pass, 1 to {MAX_SLOTS} (1 = input_1). Ignored by "
                    "first_non_empty. Feeds from QG_ZeroShotClassify's 1-based index.",
                ),
            },
            "optional": slots,
            "hidden": {**HIDDEN_ID, "dynprompt": "DYNPROMPT"},
        }

    def check_lazy_status(self, mode, index, **inputs):
        if mode == "first_non_empty":
            return first_non_empty_request(inputs)
        if index is None or slot_name(index) not in inputs:
            return []  # execute() reports it
        return pending(slot_name(index), inputs)

    def execute(self, mode, index, unique_id=None, dynprompt=None, **inputs):
        with self.errors_named(unique_id):
            if mode == "index":
                chosen = check_index(index)
                return (inputs[require_slot(chosen, inputs)], chosen)
            if mode != "first_non_empty":
                raise QGError(f"mode {mode!r} is not known; expected one of: {', '.join(SELECT_MODES)}")
            chosen, later = first_non_empty_scan(inputs)
            if chosen is not None:
                return (inputs[slot_name(chosen)], chosen)
            if later:
                return self._select_from(later, unique_id, dynprompt)
            seen = ", ".join(f"{slot_name(i)} ({describe(inputs[slot_name(i)])})" for i in connected_slots(inputs))
            raise QGError(f"first_non_empty found every connected input empty: {seen or 'none connected'}")

    def _select_from(self, slots, unique_id, dynprompt):
        """An input ran and gave None, which ComfyUI also uses for "not run yet"; hand the later slots to a
        fresh Select by node expansion (at most MAX_SLOTS deep), keeping their slot numbers."""
        links = dynprompt.get_node(unique_id)["inputs"]
        graph = host.graph_builder()
        rest = graph.node(
            type(self).NODE_ID, mode="first_non_empty", index=1, **{slot_name(i): links[slot_name(i)] for i in slots}
        )
        return {"result": (rest.out(0), rest.out(1)), "expand": graph.finalize()}


class BoolOp(QGNode):
    TITLE = "Boolean Op"
    CATEGORY = CATEGORY
    DESCRIPTION = (
        "Boolean and, or, xor, nand, nor and not. Short-circuits: b runs only when a does not decide the "
        "result (and/nand with a false, or/nor with a true, and not, never run b)."
    )
    RETURN_TYPES = ("BOOLEAN",)
    RETURN_NAMES = ("result",)
    OUTPUT_TOOLTIPS = ("The result of the operator.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "op": combo(BOOL_OPS, "and", "The operator. not uses a only."),
                "a": boolean(True, "First operand; always evaluated."),
            },
            "optional": {
                "b": (
                    "BOOLEAN",
                    {
                        "default": True,
                        "lazy": True,
                        "tooltip": "Second operand; runs only when a does not decide. Unused by not.",
                    },
                ),
            },
            "hidden": HIDDEN_ID,
        }

    @classmethod
    def VALIDATE_INPUTS(cls, op, b=ABSENT):
        def check():
            check_bool_op(op)
            if op != "not" and b is ABSENT:
                raise QGError(f"op {op!r} needs input b; connect it or give it a value")

        return cls.validation(check)

    def check_lazy_status(self, op, a, **inputs):
        with suppress(QGError):  # a bad op or a: request nothing, execute() reports it
            return pending("b", inputs) if decided_by_a(op, a) is None else []
        return []

    def execute(self, op, a, b=ABSENT, unique_id=None):
        with self.errors_named(unique_id):
            return (bool_op(op, a, b),)


class Gate(QGNode):
    TITLE = "Gate"
    CATEGORY = CATEGORY
    DESCRIPTION = (
        "Passes value when open. When closed, value never runs, and on_closed decides: block skips "
        "everything downstream silently (the prompt still succeeds, nothing is saved), error fails the "
        "prompt with a message."
    )
    RETURN_TYPES = (ANY,)
    RETURN_NAMES = ("value",)
    OUTPUT_TOOLTIPS = ("value, when the gate is open.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "value": socket(ANY, "Passed through when open. Runs only when open (lazy).", lazy=True),
                "open": boolean(
                    True, "true = pass value on; false = closed (see on_closed).", label_on="open", label_off="closed"
                ),
            },
            "optional": {
                "on_closed": combo(
                    ("block", "error"),
                    "block",
                    "When closed: block = skip every node downstream without an error (the prompt still "
                    "succeeds); error = fail the prompt with a message.",
                ),
            },
            "hidden": HIDDEN_ID,
        }

    def check_lazy_status(self, open, **inputs):
        with suppress(QGError):  # a bad open: request nothing, execute() reports it
            return pending("value", inputs) if as_bool(open, "open") else []
        return []

    def execute(self, value, open, on_closed="block", unique_id=None):
        with self.errors_named(unique_id):
            if as_bool(open, "open"):
                return (value,)
            if on_closed == "error":
                raise QGError("the gate is closed (open is false) and on_closed is 'error'")
        return (host.blocker(),)
