"""Unit tests of the plain logic under the logic nodes (no ComfyUI)."""

import math
import time

import numpy as np
import pytest
import torch
from quality_gate.nodes.core.errors import QGError
from quality_gate.nodes.core.logic import (
    ABSENT,
    as_bool,
    bool_op,
    canonical_comparison,
    compare,
    decided_by_a,
    describe,
    first_non_empty_request,
    first_non_empty_scan,
    is_empty,
    require_slot,
)

NAN = float("nan")

CASES = [
    # numbers, bools, tensors, numeric strings against numbers
    (5, "greater_equal", 3, True),
    (3, ">=", 3, True),
    (2, ">=", 3, False),
    (2, "<", 3, True),
    (3, "<=", 3, True),
    (4, ">", 3.5, True),
    (3, "==", 3.0, True),
    (3, "!=", 3.0, False),
    (True, "==", 1, True),
    (False, "<", 1, True),
    (torch.tensor([7.0]), ">", 6, True),
    (torch.tensor(2.5), "==", 2.5, True),
    (np.float32(1.5), "<", 2, True),
    ("7", ">=", 5, True),
    (5, "<", " 10 ", True),
    ("2.5e1", "==", 25, True),
    (2**64 + 1, ">", 2**64, True),
    # strings as strings (lexicographic), case
    ("10", "<", "9", True),
    ("apple", "<", "banana", True),
    ("Cat", "equal", "cat", False),
    # NaN: every comparison false but not_equal
    (NAN, "equal", NAN, False),
    (NAN, "not_equal", NAN, True),
    (NAN, "not_equal", 1, True),
    (NAN, ">=", 1, False),
    (NAN, "<", 1, False),
    (1, "<=", NAN, False),
    ("nan", "==", 1, False),
    (torch.tensor(float("nan")), "!=", 0, True),
    # None and containers
    (None, "equal", None, True),
    (None, "equal", 0, False),
    (None, "not_equal", "x", True),
    ([1, 2], "equal", [1, 2], True),
    ({"a": 1}, "not_equal", {"a": 2}, True),
    (torch.zeros(2, 2), "equal", torch.zeros(2, 2), True),
    ({"samples": torch.zeros(1, 4, 8, 8)}, "equal", {"samples": torch.zeros(1, 4, 8, 8)}, True),
    ([torch.zeros(2), "x"], "not_equal", [torch.ones(2), "x"], True),
    ([1, "a"], "equal", [1.0, "a"], True),
    ([1, 2], "equal", [1, 2, 3], False),
    (torch.zeros(2, 2), "equal", torch.zeros(2, 3), False),
    # contains: strings, lists, tuples, dict keys
    ("a black cat", "contains", "cat", True),
    ("a black cat", "not_contains", "dog", True),
    ("seed 42", "contains", 42, True),
    (["cat", "dog"], "contains", "dog", True),
    (("x", 3), "contains", 3.0, True),
    ([1, 2], "contains", "2", True),
    ({"cat": 1}, "contains", "cat", True),
    ({"cat": 1}, "contains", 1, False),
    ([], "contains", "x", False),
    # starts / ends
    ("portrait of a cat", "starts_with", "portrait", True),
    ("portrait of a cat", "ends_with", "cat", True),
    ("portrait", "ends_with", "x", False),
    # regex (search)
    ("sdxl_base_1.0.safetensors", "matches_regex", r"sdxl.*\.safetensors$", True),
    ("sd15.ckpt", "matches_regex", r"^sdxl", False),
    (1024, "matches_regex", r"^\d{4}$", True),
    # emptiness
    (None, "is_empty", ABSENT, True),
    ("", "is_empty", ABSENT, True),
    ([], "is_empty", ABSENT, True),
    ({}, "is_empty", ABSENT, True),
    (torch.zeros(0, 64, 64, 3), "is_empty", ABSENT, True),
    (0, "is_empty", ABSENT, False),
    (False, "is_empty", ABSENT, False),
    (" ", "is_empty", ABSENT, False),
    (torch.zeros(1), "is_not_empty", ABSENT, True),
    ([0], "is_not_empty", ABSENT, True),
]


@pytest.mark.parametrize("a, comparison, b, expected", CASES)
def test_compare(a, comparison, b, expected):
    result, explanation = compare(a, comparison, b)
    assert result is expected, explanation
    assert explanation.endswith("true" if expected else "false")


@pytest.mark.parametrize(
    "a, b, c, expected",
    [
        (5, 1, 10, True),
        (1, 1, 10, True),
        (10, 1, 10, True),
        (0, 1, 10, False),
        (11, 1, 10, False),
        (2.5, "1", 3, True),
        ("b", "a", "c", True),
        ("d", "a", "c", False),
        (NAN, 0, 10, False),
    ],
)
def test_between_is_inclusive(a, b, c, expected):
    assert compare(a, "between", b, c)[0] is expected


def test_tolerance_applies_to_numeric_equal_only():
    assert compare(0.1 + 0.2, "equal", 0.3)[0] is False
    assert compare(0.1 + 0.2, "equal", 0.3, tolerance=1e-9)[0] is True
    assert compare(1.0, "not_equal", 1.05, tolerance=0.1)[0] is False
    assert compare(1.0, "less_than", 1.05, tolerance=0.1)[0] is True
    assert "tolerance" in compare(1.0, "equal", 1.05, tolerance=0.1)[1]


def test_case_insensitive():
    for comparison, a, b in [
        ("equal", "Cat", "cAT"),
        ("contains", "A Black CAT", "cat"),
        ("starts_with", "Portrait", "portrait"),
        ("ends_with", "X.PNG", ".png"),
        ("matches_regex", "SDXL", "^sdxl$"),
        ("contains", ["Dog"], "dog"),
    ]:
        assert compare(a, comparison, b, case_sensitive=False)[0] is True, comparison
        assert compare(a, comparison, b, case_sensitive=True)[0] is False, comparison
    assert compare("a", "<", "B", case_sensitive=False)[0] is True
    assert "ignoring case" in compare("a", "equal", "A", case_sensitive=False)[1]


def test_explanation_names_values():
    assert compare(7, ">=", 5)[1] == "INT 7 >= INT 5: true"
    assert compare("7", ">=", 5)[1] == "STRING '7' >= INT 5: true"
    assert "NaN" in compare(NAN, ">", 1)[1]
    assert compare(3, "between", 1, 5)[1] == "INT 1 <= INT 3 <= INT 5: true"
    assert describe(torch.zeros(1, 64, 64, 3)) == "TENSOR [1, 64, 64, 3]"
    assert len(describe("x" * 1000)) < 60


def test_aliases_and_names():
    for alias, name in [
        ("==", "equal"),
        ("!=", "not_equal"),
        ("<", "less_than"),
        ("<=", "less_equal"),
        (">", "greater_than"),
        (">=", "greater_equal"),
        ("between", "between"),
    ]:
        assert canonical_comparison(alias) == name
    with pytest.raises(QGError, match="'=>' is not known; expected one of: equal"):
        canonical_comparison("=>")


@pytest.mark.parametrize(
    "a, comparison, b, c, message",
    [
        (
            "abc",
            ">",
            3,
            ABSENT,
            r"greater_than cannot compare a \(STRING 'abc'\) with b \(INT 3\): the string is not a number",
        ),
        ([1], "<", 3, ABSENT, r"less_than cannot compare a \(LIST \(1 items\)\) with b \(INT 3\)"),
        (torch.zeros(2), ">=", torch.zeros(2), ABSENT, r"greater_equal cannot compare a \(TENSOR \[2\]\)"),
        ("x", "equal", [1], ABSENT, r"equal cannot compare a \(STRING 'x'\) with b \(LIST"),
        (3, "equal", "three", ABSENT, r"equal cannot compare a \(INT 3\) with b \(STRING 'three'\)"),
        (5, ">=", ABSENT, ABSENT, "comparison 'greater_equal' needs input b, which is not connected"),
        (5, "between", 1, ABSENT, "comparison 'between' needs input c, which is not connected"),
        (5, "between", 10, 1, r"between needs b <= c .* got b \(INT 10\) > c \(INT 1\)"),
        ("x", "matches_regex", "([", ABSENT, r"b '\(\[' is not a valid regular expression"),
        ("x", "matches_regex", 5, ABSENT, r"matches_regex needs b to be a STRING pattern, got INT 5"),
        (5.5, "matches_regex", "5", ABSENT, r"matches_regex needs a to be a STRING, got FLOAT 5.5"),
        (5, "contains", "5", ABSENT, r"contains needs a to be a STRING, LIST, TUPLE or DICT \(keys\), got INT 5"),
        ("abc", "starts_with", None, ABSENT, r"starts_with needs b to be a STRING, got NONE"),
        (None, "<", 1, ABSENT, r"less_than cannot compare a \(NONE\) with b \(INT 1\)"),
        (1, "bigger", 2, ABSENT, "comparison 'bigger' is not known"),
    ],
)
def test_compare_errors(a, comparison, b, c, message):
    with pytest.raises(QGError, match=message):
        compare(a, comparison, b, c)


def test_negative_tolerance_is_an_error():
    with pytest.raises(QGError, match="tolerance must be a number >= 0"):
        compare(1, "equal", 1, tolerance=-1)
    with pytest.raises(QGError, match="tolerance"):
        compare(1, "equal", 1, tolerance=math.nan)


@pytest.mark.parametrize("tolerance", ["[1, 2]", "0.5", [1], {"a": 1}, True])
def test_a_tolerance_that_is_not_a_number_is_an_error(tolerance):
    """Found by tests/test_fuzz.py: a STRING linked into tolerance raised a raw TypeError ('>=' not supported)."""
    with pytest.raises(QGError, match="tolerance must be a number >= 0"):
        compare(1, "equal", 1, tolerance=tolerance)


def test_equal_on_an_int_too_large_for_a_float():
    """Found by tests/test_fuzz.py: the difference of a huge INT (from JSON) and a FLOAT overflowed."""
    assert compare(10**400, "equal", 1.5)[0] is False
    assert compare(10**400, "not_equal", math.inf)[0] is True
    assert compare(10**400, "equal", 10**400 + 1, tolerance=2)[0] is True
    assert compare(1.5, "equal", 10**400, tolerance=math.inf)[0] is True


def test_a_regex_that_backtracks_too_much_is_stopped_with_a_message():
    """``(a|aa)+$`` on 60 a's and a b would search for hours with ``re`` (and hang ComfyUI's worker); the ``regex``
    module stops it at the timeout (it already answers ``(a+)+$``-style patterns at once)."""
    started = time.monotonic()
    message = r"matching b '\(a\|aa\)\+\$' against a \(61 characters\) took longer than 1 s: the pattern backtracks"
    with pytest.raises(QGError, match=message):
        compare("a" * 60 + "b", "matches_regex", "(a|aa)+$")
    assert time.monotonic() - started < 30  # a bound on the hang, not a timing of the code
    assert compare("a" * 60, "matches_regex", "(a|aa)+$")[0] is True  # the same pattern where it matches at once
    assert compare("a" * 40 + "b", "matches_regex", "(a+)+$")[0] is False


def test_is_empty():
    assert is_empty(None) and is_empty("") and is_empty(()) and is_empty(set()) and is_empty(np.zeros((0, 3)))
    assert not is_empty(0) and not is_empty(0.0) and not is_empty(np.zeros(2)) and not is_empty({"samples": 1})


TRUTH = {
    "and": lambda a, b: a and b,
    "or": lambda a, b: a or b,
    "xor": lambda a, b: a != b,
    "nand": lambda a, b: not (a and b),
    "nor": lambda a, b: not (a or b),
}


@pytest.mark.parametrize("op", list(TRUTH))
def test_bool_ops_truth_table(op):
    for a in (False, True):
        for b in (False, True):
            assert bool_op(op, a, b) is TRUTH[op](a, b), (op, a, b)
    assert bool_op("not", True) is False and bool_op("not", False) is True


def test_short_circuit_decisions():
    assert decided_by_a("and", False) is False and decided_by_a("and", True) is None
    assert decided_by_a("or", True) is True and decided_by_a("or", False) is None
    assert decided_by_a("nand", False) is True and decided_by_a("nor", True) is False
    assert decided_by_a("xor", True) is None and decided_by_a("xor", False) is None
    assert decided_by_a("not", True) is False
    assert bool_op("and", False) is False  # b not needed, so its absence is fine
    with pytest.raises(QGError, match="op 'or' with a = False needs input b"):
        bool_op("or", False)
    with pytest.raises(QGError, match="op 'maybe' is not known"):
        bool_op("maybe", True, True)


def test_first_non_empty_requests_one_input_at_a_time():
    assert first_non_empty_request({"input_2": None, "input_5": None}) == ["input_2"]
    assert first_non_empty_request({"input_2": "", "input_5": None}) == ["input_5"]
    assert first_non_empty_request({"input_2": "x", "input_5": None}) == []
    assert first_non_empty_request({"input_2": [], "input_5": ""}) == []
    assert first_non_empty_scan({"input_2": "", "input_5": "x", "input_7": None}) == (5, [])
    assert first_non_empty_scan({"input_1": "", "input_3": None, "input_4": None, "input_9": None}) == (None, [4, 9])
    assert first_non_empty_scan({"input_1": ""}) == (None, [])


def test_require_slot_names_the_slot():
    with pytest.raises(
        QGError, match=r"index 3 chooses input_3, which is not connected \(connected: input_1, input_2\)"
    ):
        require_slot(3, {"input_1": 1, "input_2": 2})


def test_conditions_are_booleans_or_ints_never_truthy_strings():
    for value, expected in [
        (True, True),
        (False, False),
        (0, False),
        (2, True),
        (np.bool_(True), True),
        (torch.tensor(False), False),
        (torch.tensor([1]), True),
    ]:
        assert as_bool(value, "condition") is expected, value
    for value, shown in [("false", "STRING 'false'"), (None, "NONE"), (1.0, "FLOAT 1.0"), ([True], "LIST")]:
        with pytest.raises(QGError, match=f"condition must be a BOOLEAN \\(or an INT, 0 = false\\), got {shown}"):
            as_bool(value, "condition")
    with pytest.raises(QGError, match="b must be a BOOLEAN"):
        bool_op("and", True, "yes")
