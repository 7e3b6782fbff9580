"""Plain logic of the lazy logic nodes: comparisons, emptiness, boolean operators, slot scanning.

Nothing here imports ComfyUI, so all of it is testable on its own. Bad input raises ``QGError`` with a
message that names the input and what was expected.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, NamedTuple

import numpy as np
import regex
import torch

from .errors import QGError

COMPARISONS = (
    "equal",
    "not_equal",
    "less_than",
    "less_equal",
    "greater_than",
    "greater_equal",
    "between",
    "contains",
    "not_contains",
    "starts_with",
    "ends_with",
    "matches_regex",
    "is_empty",
    "is_not_empty",
)
ALIASES = {
    "==": "equal",
    "!=": "not_equal",
    "<": "less_than",
    "<=": "less_equal",
    ">": "greater_than",
    ">=": "greater_equal",
}
SYMBOLS = {name: symbol for symbol, name in ALIASES.items()}
UNARY = frozenset({"is_empty", "is_not_empty"})
ORDERINGS = {
    "less_than": lambda x, y: x < y,
    "less_equal": lambda x, y: x <= y,
    "greater_than": lambda x, y: x > y,
    "greater_equal": lambda x, y: x >= y,
}
BOOL_OPS = ("and", "or", "xor", "nand", "nor", "not")
SELECT_MODES = ("index", "first_non_empty")
MAX_SLOTS = 16
PREVIEW_CHARS = 40
CONTAINERS = (list, tuple, dict, set, frozenset)


class Absent:
    """The value of an optional input that is not connected (ComfyUI leaves it out of the call, while a
    connected lazy input that has not run yet arrives as None)."""

    def __repr__(self) -> str:
        return "<not connected>"


ABSENT = Absent()


def slot_name(index: int) -> str:
    return f"input_{index}"


# ---------------------------------------------------------------------------------------------------
# Describing values in messages


def type_name(value: Any) -> str:
    """The type of a value as a ComfyUI user reads it (INT, FLOAT, STRING, TENSOR, ...)."""
    if value is None:
        return "NONE"
    if isinstance(value, bool):
        return "BOOLEAN"
    if isinstance(value, numbers.Integral):
        return "INT"
    if isinstance(value, numbers.Real):
        return "FLOAT"
    if isinstance(value, str):
        return "STRING"
    if isinstance(value, torch.Tensor):
        return "TENSOR"
    if isinstance(value, CONTAINERS):
        return type(value).__name__.upper()
    return type(value).__name__


def describe(value: Any) -> str:
    """A short, bounded description of a value: its type and a preview (``INT 5``, ``STRING 'cat'``,
    ``TENSOR [1, 64, 64, 3]``)."""
    kind = type_name(value)
    if value is None:
        return kind
    if isinstance(value, torch.Tensor):
        if value.numel() == 1:
            return f"{kind} {list(value.shape)} = {value.item()!r}"
        return f"{kind} {list(value.shape)}"
    if isinstance(value, CONTAINERS):
        return f"{kind} ({len(value)} items)"
    text = repr(value)
    if len(text) > PREVIEW_CHARS:
        text = text[: PREVIEW_CHARS - 3] + "..."
    return f"{kind} {text}"


# ---------------------------------------------------------------------------------------------------
# Emptiness and numbers


def is_empty(value: Any) -> bool:
    """None, the empty string, empty containers and tensors with no elements are empty. Numbers are never
    empty (0 and False are values), and neither is a string of spaces."""
    if value is None:
        return True
    if isinstance(value, str):
        return value == ""
    if isinstance(value, torch.Tensor):
        return value.numel() == 0
    if isinstance(value, CONTAINERS):
        return len(value) == 0
    if isinstance(value, np.ndarray):
        return value.size == 0
    return False


def as_number(value: Any) -> int | float | None:
    """The numeric value of a bool, int, float (numpy scalars too) or one-element tensor, else None."""
    if isinstance(value, numbers.Integral):  # bool included
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.item()
    return None


def parse_number(text: str) -> int | float | None:
    """A numeric string as a number (``"7"``, ``" 2.5 "``, ``"1e3"``, ``"nan"``), else None."""
    stripped = text.strip()
    try:
        return int(stripped)
    except ValueError:
        pass
    try:
        return float(stripped)
    except ValueError:
        return None


def is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


# ---------------------------------------------------------------------------------------------------
# Comparison


def canonical_comparison(name: Any) -> str:
    """The comparison's canonical name; the aliases ``== != < <= > >=`` are accepted."""
    if isinstance(name, str):
        key = name.strip()
        if key in COMPARISONS:
            return key
        if key in ALIASES:
            return ALIASES[key]
    accepted = ", ".join(COMPARISONS + tuple(ALIASES))
    raise QGError(f"comparison {name!r} is not known; expected one of: {accepted}")


def required_operands(comparison: str) -> tuple[str, ...]:
    """The optional inputs a comparison needs besides ``a``."""
    if comparison in UNARY:
        return ()
    if comparison == "between":
        return ("b", "c")
    return ("b",)


def check_comparison(comparison: Any, b: Any = ABSENT, c: Any = ABSENT) -> str:
    """What can be checked before running: a known comparison, the operands it needs, a valid pattern.
    Returns the canonical name. (At /prompt time linked operands arrive as None: present, not checked.)"""
    name = canonical_comparison(comparison)
    for operand, value in (("b", b), ("c", c)):
        if operand in required_operands(name) and value is ABSENT:
            raise QGError(f"comparison {name!r} needs input {operand}, which is not connected")
    if name == "matches_regex" and isinstance(b, str):
        check_regex(b)
    return name


REGEX_TIMEOUT = 1.0  # seconds one match may take; a pattern that backtracks catastrophically would hang the worker


def check_regex(pattern: Any, case_sensitive: bool = True) -> regex.Pattern:
    """Compile with the ``regex`` module (Python's ``re`` syntax; a requirement of transformers, so already in
    ComfyUI's environment), whose matches take a timeout, which ``re`` has not."""
    if not isinstance(pattern, str):
        raise QGError(f"matches_regex needs b to be a STRING pattern, got {describe(pattern)}")
    try:
        return regex.compile(pattern, regex.VERSION0 | (0 if case_sensitive else regex.IGNORECASE))
    except regex.error as e:
        raise QGError(f"b {pattern!r} is not a valid regular expression: {e}") from None


def regex_search(pattern: regex.Pattern, text: str) -> bool:
    try:
        return pattern.search(text, timeout=REGEX_TIMEOUT) is not None
    except TimeoutError:
        raise QGError(
            f"matching b {pattern.pattern!r} against a ({len(text)} characters) took longer than {REGEX_TIMEOUT:g} s: "
            "the pattern backtracks too much (nested repeats such as (a+)+); simplify it"
        ) from None


class _Operands(NamedTuple):
    """Two values brought to a common kind for comparison: ``number`` or ``string``."""

    kind: str
    left: Any
    right: Any


def _fold(text: str, case_sensitive: bool) -> str:
    return text if case_sensitive else text.casefold()


def _operands(comparison: str, left: Any, right: Any, names: tuple[str, str], case_sensitive: bool):
    """Numbers with numbers (numeric strings against numbers too), strings with strings."""
    ln, rn = as_number(left), as_number(right)
    if (ln is None) != (rn is None) and isinstance(right if rn is None else left, str):
        parsed = parse_number(right if rn is None else left)
        if parsed is None:
            raise QGError(
                f"{comparison} cannot compare {names[0]} ({describe(left)}) with {names[1]} "
                f"({describe(right)}): the string is not a number"
            )
        ln, rn = (ln, parsed) if rn is None else (parsed, rn)
    if ln is not None and rn is not None:
        return _Operands("number", ln, rn)
    if isinstance(left, str) and isinstance(right, str):
        return _Operands("string", _fold(left, case_sensitive), _fold(right, case_sensitive))
    raise QGError(
        f"{comparison} cannot compare {names[0]} ({describe(left)}) with {names[1]} ({describe(right)}): "
        "expected two numbers (numeric strings count against numbers) or two strings"
    )


def _equal(a: Any, b: Any, tolerance: float, case_sensitive: bool) -> bool:
    """Equality for every pair of types that can be compared; raises QGError for the rest."""
    if a is None or b is None:
        return a is None and b is None
    a_tensor, b_tensor = isinstance(a, torch.Tensor), isinstance(b, torch.Tensor)
    if a_tensor and b_tensor and (a.numel() != 1 or b.numel() != 1):
        return a.shape == b.shape and bool(torch.equal(a, b))
    if isinstance(a, CONTAINERS) or isinstance(b, CONTAINERS):
        if type(a) is not type(b):
            raise QGError(
                f"equal cannot compare a ({describe(a)}) with b ({describe(b)}): containers compare only with "
                "containers of the same kind"
            )
        if isinstance(a, dict):
            return a.keys() == b.keys() and all(_loose_equal(a[k], b[k], case_sensitive) for k in a)
        if isinstance(a, (list, tuple)):
            return len(a) == len(b) and all(_loose_equal(x, y, case_sensitive) for x, y in zip(a, b, strict=True))
        return a == b  # sets: hashable items only
    ops = _operands("equal", a, b, ("a", "b"), case_sensitive)
    if ops.kind == "number":
        if is_nan(ops.left) or is_nan(ops.right):
            return False
        if ops.left == ops.right:
            return True
        try:
            return abs(ops.left - ops.right) <= tolerance
        except OverflowError:  # an INT beyond float range against a FLOAT: the difference is infinite
            return tolerance == math.inf
    return ops.left == ops.right


def _loose_equal(item: Any, target: Any, case_sensitive: bool) -> bool:
    """Membership equality: items of another kind simply do not match."""
    try:
        return _equal(item, target, 0.0, case_sensitive)
    except QGError:
        return False


def _text_operand(comparison: str, name: str, value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return str(value)
    raise QGError(f"{comparison} needs {name} to be a STRING, got {describe(value)}")


def _contains(a: Any, b: Any, case_sensitive: bool) -> bool:
    if isinstance(a, str):
        return _fold(_text_operand("contains", "b", b), case_sensitive) in _fold(a, case_sensitive)
    if isinstance(a, CONTAINERS):
        return any(_loose_equal(item, b, case_sensitive) for item in a)
    raise QGError(f"contains needs a to be a STRING, LIST, TUPLE or DICT (keys), got {describe(a)}")


def check_tolerance(tolerance: Any) -> int | float:
    """A tolerance is a number >= 0 (not a BOOLEAN, a string or NaN)."""
    number = None if isinstance(tolerance, bool) else as_number(tolerance)
    if number is None or not number >= 0:
        raise QGError(f"tolerance must be a number >= 0, got {describe(tolerance)}")
    return number


def compare(
    a: Any,
    comparison: str,
    b: Any = ABSENT,
    c: Any = ABSENT,
    tolerance: float = 0.0,
    case_sensitive: bool = True,
) -> tuple[bool, str]:
    """Evaluate ``a <comparison> b`` and return ``(result, explanation)``.

    NaN makes every comparison false except not_equal. ``between`` is inclusive: ``b <= a <= c``.
    """
    comparison = check_comparison(comparison, b, c)
    tolerance = check_tolerance(tolerance)
    case_note = "" if case_sensitive else " (ignoring case)"

    if comparison in UNARY:
        empty = is_empty(a)
        result = empty if comparison == "is_empty" else not empty
        return result, f"{describe(a)} {comparison.replace('_', ' ')}: {_word(result)}"

    if comparison in ("equal", "not_equal"):
        equal = _equal(a, b, tolerance, case_sensitive)
        result = equal if comparison == "equal" else not equal
        note = f" (tolerance {tolerance:g})" if tolerance and as_number(a) is not None else case_note
        return result, f"{describe(a)} {SYMBOLS[comparison]} {describe(b)}{note}: {_word(result)}"

    if comparison in ORDERINGS:
        ops = _operands(comparison, a, b, ("a", "b"), case_sensitive)
        nan = ops.kind == "number" and (is_nan(ops.left) or is_nan(ops.right))
        result = False if nan else ORDERINGS[comparison](ops.left, ops.right)
        note = " (NaN compares false)" if nan else case_note
        return result, f"{describe(a)} {SYMBOLS[comparison]} {describe(b)}{note}: {_word(result)}"

    if comparison == "between":
        low = _operands(comparison, a, b, ("a", "b"), case_sensitive)
        high = _operands(comparison, a, c, ("a", "c"), case_sensitive)
        bounds = _operands(comparison, b, c, ("b", "c"), case_sensitive)
        values = (low.left, low.right, high.right)
        nan = low.kind == "number" and any(is_nan(v) for v in values)
        if not nan and bounds.left > bounds.right:
            raise QGError(
                f"between needs b <= c (b is the lower bound, c the upper), got b ({describe(b)}) > "
                f"c ({describe(c)})"
            )
        result = not nan and low.right <= low.left <= high.right
        note = " (NaN compares false)" if nan else case_note
        return result, f"{describe(b)} <= {describe(a)} <= {describe(c)}{note}: {_word(result)}"

    if comparison in ("contains", "not_contains"):
        found = _contains(a, b, case_sensitive)
        result = found if comparison == "contains" else not found
        return result, f"{describe(a)} {comparison.replace('_', ' ')} {describe(b)}{case_note}: {_word(result)}"

    if comparison in ("starts_with", "ends_with"):
        text = _fold(_text_operand(comparison, "a", a), case_sensitive)
        affix = _fold(_text_operand(comparison, "b", b), case_sensitive)
        result = text.startswith(affix) if comparison == "starts_with" else text.endswith(affix)
        return result, f"{describe(a)} {comparison.replace('_', ' ')} {describe(b)}{case_note}: {_word(result)}"

    # matches_regex
    pattern = check_regex(b, case_sensitive)
    text = _text_operand(comparison, "a", a)
    result = regex_search(pattern, text)
    return result, f"{describe(a)} matches regex {describe(b)}{case_note}: {_word(result)}"


def _word(result: bool) -> str:
    return "true" if result else "false"


# ---------------------------------------------------------------------------------------------------
# Boolean operators


def check_bool_op(op: Any) -> str:
    if op not in BOOL_OPS:
        raise QGError(f"op {op!r} is not known; expected one of: {', '.join(BOOL_OPS)}")
    return op


def as_bool(value: Any, name: str) -> bool:
    """A condition's truth: BOOLEAN values, and INTs (0 is false) as integer math nodes give them. Anything
    else (the string "false", a float, None) is an error rather than Python's truthiness."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    number = as_number(value)
    if isinstance(number, int):
        return number != 0
    raise QGError(f"{name} must be a BOOLEAN (or an INT, 0 = false), got {describe(value)}")


def decided_by_a(op: str, a: Any) -> bool | None:
    """The result when ``a`` alone decides it (short-circuit), else None: then ``b`` must run."""
    op = check_bool_op(op)
    a = as_bool(a, "a")
    if op == "not":
        return not a
    if op in ("and", "nand") and not a:
        return op == "nand"
    if op in ("or", "nor") and a:
        return op == "or"
    return None


def bool_op(op: str, a: Any, b: Any = ABSENT) -> bool:
    decided = decided_by_a(op, a)
    if decided is not None:
        return decided
    a = as_bool(a, "a")
    if b is ABSENT:
        raise QGError(f"op {op!r} with a = {a} needs input b, which is not connected")
    b = as_bool(b, "b")
    return {"and": a and b, "or": a or b, "xor": a != b, "nand": not (a and b), "nor": not (a or b)}[op]


# ---------------------------------------------------------------------------------------------------
# Choosing among lazy inputs


def pending(name: str, inputs: dict[str, Any]) -> list[str]:
    """``[name]`` when that input is connected but has not run yet (ComfyUI passes None), else []."""
    return [name] if name in inputs and inputs[name] is None else []


def check_index(index: Any) -> int:
    if isinstance(index, bool) or not isinstance(index, numbers.Integral) or not 1 <= index <= MAX_SLOTS:
        raise QGError(f"index must be an INT from 1 to {MAX_SLOTS}, got {describe(index)}")
    return int(index)


def connected_slots(inputs: dict[str, Any]) -> list[int]:
    """The numbers of the connected ``input_N`` slots, in order."""
    return [i for i in range(1, MAX_SLOTS + 1) if slot_name(i) in inputs]


def require_slot(index: int, inputs: dict[str, Any]) -> str:
    name = slot_name(index)
    if name not in inputs:
        connected = ", ".join(slot_name(i) for i in connected_slots(inputs)) or "none"
        raise QGError(f"index {index} chooses {name}, which is not connected (connected: {connected})")
    return name


def first_non_empty_request(inputs: dict[str, Any]) -> list[str]:
    """The next input to run in first_non_empty mode: the first connected one that has not produced a
    non-empty value, or nothing once one has. Only one input is requested at a time."""
    for i in connected_slots(inputs):
        value = inputs[slot_name(i)]
        if value is None:
            return [slot_name(i)]
        if not is_empty(value):
            return []
    return []


def first_non_empty_scan(inputs: dict[str, Any]) -> tuple[int | None, list[int]]:
    """After ``first_non_empty_request`` asked for nothing more: ``(slot, [])`` for the first non-empty
    input, or ``(None, later)`` where ``later`` are the connected slots after one that ran and produced
    None (ComfyUI cannot tell that None from "not run yet", so those still have to be tried)."""
    slots = connected_slots(inputs)
    for position, i in enumerate(slots):
        value = inputs[slot_name(i)]
        if value is None:
            return None, slots[position + 1 :]
        if not is_empty(value):
            return i, []
    return None, []
