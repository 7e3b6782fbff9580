"""Unit tests of the plain ranking logic (no ComfyUI)."""

import math

import pytest
from quality_gate.nodes.core.errors import QGError
from quality_gate.nodes.core.ranking import combine_scores, rank_indices, reduce_scores

NAN = float("nan")


def test_rank_descending_and_ascending():
    scores = [3.0, 9.0, 1.0, 5.0]
    assert rank_indices(scores) == [1, 3, 0, 2]
    assert rank_indices(scores, order="ascending") == [2, 0, 3, 1]


def test_rank_ties_keep_batch_order():
    assert rank_indices([5.0, 7.0, 5.0, 7.0, 5.0]) == [1, 3, 0, 2, 4]
    assert rank_indices([5.0, 7.0, 5.0, 7.0, 5.0], order="ascending") == [0, 2, 4, 1, 3]


def test_rank_top_k_and_top_k_larger_than_batch():
    assert rank_indices([3.0, 9.0, 1.0, 5.0], top_k=2) == [1, 3]
    assert rank_indices([3.0, 9.0, 1.0], top_k=10) == [1, 0, 2]
    assert rank_indices([3.0, 9.0, 1.0], top_k=0) == [1, 0, 2]


def test_rank_min_score_filters_in_both_orders():
    assert rank_indices([3.0, 9.0, 1.0, 5.0], min_score=4.0) == [1, 3]
    assert rank_indices([3.0, 9.0, 1.0, 5.0], min_score=4.0, order="ascending") == [3, 1]
    assert rank_indices([3.0, 9.0, 1.0, 5.0], min_score=5.0, top_k=1) == [1]


def test_rank_all_below_min_score_keeps_min_keep_best():
    assert rank_indices([3.0, 9.0, 1.0], min_score=10.0) == [1]
    assert rank_indices([3.0, 9.0, 1.0], min_score=10.0, min_keep=2) == [1, 0]
    assert rank_indices([3.0, 9.0, 1.0], min_score=10.0, min_keep=2, order="ascending") == [2, 0]
    assert rank_indices([3.0, 9.0, 1.0], min_score=10.0, min_keep=0) == []


def test_rank_min_keep_beats_top_k_and_is_capped_by_batch():
    assert rank_indices([3.0, 9.0, 1.0], top_k=1, min_keep=2) == [1, 0]
    assert rank_indices([3.0, 9.0], min_score=100.0, min_keep=5) == [1, 0]


def test_rank_nan_sorts_last_and_never_passes_min_score():
    assert rank_indices([NAN, 2.0, 8.0]) == [2, 1, 0]
    assert rank_indices([NAN, 2.0, 8.0], order="ascending") == [1, 2, 0]
    assert rank_indices([NAN, 2.0, 8.0], min_score=-1e9) == [2, 1]
    assert rank_indices([NAN, NAN], min_score=0.0) == [0]


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"scores": []}, "empty batch"),
        ({"scores": [1.0], "order": "best"}, "order"),
        ({"scores": [1.0], "top_k": -1}, "top_k"),
        ({"scores": [1.0], "min_keep": -1}, "min_keep"),
        ({"scores": [1.0], "min_score": NAN}, "min_score"),
    ],
)
def test_rank_errors(kwargs, needle):
    with pytest.raises(QGError, match=needle):
        rank_indices(**kwargs)


def test_combine_weighted_mean():
    assert combine_scores([[10.0, 0.0], [0.0, 4.0]], [3.0, 1.0]) == pytest.approx([7.5, 1.0])
    assert combine_scores([[2.0, 6.0]], [0.5]) == pytest.approx([2.0, 6.0])
    # a zero weight ignores that input entirely (even a NaN in it)
    assert combine_scores([[2.0], [NAN]], [1.0, 0.0]) == pytest.approx([2.0])


@pytest.mark.parametrize(
    ("lists", "weights", "needle"),
    [
        ([[1.0, 2.0], [1.0]], [1.0, 1.0], r"sizes \[2, 1\]"),
        ([[1.0], [2.0]], [0.0, 0.0], "all zero"),
        ([[1.0]], [-1.0], ">= 0"),
        ([[1.0]], [1.0, 1.0], "one weight per"),
        ([], [], "at least one"),
    ],
)
def test_combine_errors(lists, weights, needle):
    with pytest.raises(QGError, match=needle):
        combine_scores(lists, weights)


def test_reduce():
    values = [2.0, NAN, 8.0, 5.0]
    assert reduce_scores(values, "max") == 8.0
    assert reduce_scores(values, "min") == 2.0
    assert reduce_scores(values, "mean") == pytest.approx(5.0)
    assert reduce_scores(values, "first") == 2.0
    assert math.isnan(reduce_scores([NAN, 1.0], "first"))
    for how in ("max", "min", "mean"):
        assert math.isnan(reduce_scores([NAN, NAN], how))


def test_reduce_errors():
    with pytest.raises(QGError, match="empty"):
        reduce_scores([], "max")
    with pytest.raises(QGError, match="max, mean, min, first"):
        reduce_scores([1.0], "median")
