"""Plain batch-ranking logic under the scoring nodes: rank, combine and reduce per-image scores.

- ``rank_indices``: a stable sort of the batch by score (ties keep batch order; NaN always last), then the
  ``min_score`` filter, then the ``top_k`` cut, but never fewer than ``min(min_keep, batch size)`` images.
- ``combine_scores``: per-image weighted mean of several score lists.
- ``reduce_scores``: one number out of a list (max, mean, min, first), NaN-aware.
"""

from __future__ import annotations

import math

from .errors import QGError

ORDERS = ("descending", "ascending")
REDUCTIONS = ("max", "mean", "min", "first")


def rank_indices(
    scores: list[float],
    top_k: int = 0,
    min_score: float | None = None,
    min_keep: int = 1,
    order: str = "descending",
) -> list[int]:
    """0-based batch indices of the kept images, best first (``descending``) or worst first (``ascending``).

    Images below ``min_score`` (and NaN scores) are dropped in either order; ``top_k`` (0 = all, more than
    the batch = all) cuts the rest; when fewer than ``min(min_keep, batch size)`` remain, the first images in
    the sorted order are kept anyway, even below ``min_score``."""
    if len(scores) == 0:
        raise QGError("scores: expected at least one score, got an empty batch")
    if order not in ORDERS:
        raise QGError(f"order: expected one of {', '.join(ORDERS)}, got {order!r}")
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 0:
        raise QGError(f"top_k: expected an integer of at least 0 (0 = all), got {top_k!r}")
    if isinstance(min_keep, bool) or not isinstance(min_keep, int) or min_keep < 0:
        raise QGError(f"min_keep: expected an integer of at least 0, got {min_keep!r}")
    values = [float(s) for s in scores]
    if min_score is not None and math.isnan(float(min_score)):
        raise QGError("min_score: expected a number or None, got NaN")

    def key(i: int) -> tuple[int, float]:
        v = values[i]
        if math.isnan(v):
            return (1, 0.0)  # NaN last in both orders
        return (0, -v if order == "descending" else v)

    ranked = sorted(range(len(values)), key=key)  # sorted() is stable: ties keep batch order
    kept = [i for i in ranked if min_score is None or (not math.isnan(values[i]) and values[i] >= min_score)]
    if top_k:
        kept = kept[:top_k]
    floor = min(min_keep, len(values))
    if len(kept) < floor:
        kept = ranked[:floor]  # the best ones in the requested order, even below min_score
    return kept


def combine_scores(lists: list[list[float]], weights: list[float]) -> list[float]:
    """Per image, ``sum(weight · score) / sum(weights)``. Weights must be finite and >= 0, not all zero;
    every list must have the same batch size."""
    if len(lists) == 0:
        raise QGError("scores: expected at least one list of scores, got none")
    if len(lists) != len(weights):
        raise QGError(f"weights: expected one weight per scores input ({len(lists)}), got {len(weights)}")
    for n, w in enumerate(weights):
        if not math.isfinite(float(w)) or float(w) < 0:
            raise QGError(f"weight {n + 1}: expected a finite number >= 0, got {w!r}")
    total = float(sum(float(w) for w in weights))
    if total <= 0:
        raise QGError("weights: expected at least one weight above 0, got all zero")
    sizes = [len(scores) for scores in lists]
    if len(set(sizes)) != 1:
        raise QGError(f"scores: expected the same batch size for every scores input, got sizes {sizes}")
    return [
        sum(float(w) * float(scores[i]) for w, scores in zip(weights, lists, strict=True) if float(w) > 0) / total
        for i in range(sizes[0])
    ]


def reduce_scores(values: list[float], how: str) -> float:
    """One float out of per-image scores: ``max``/``min``/``mean`` ignore NaN unless every value is NaN
    (then NaN); ``first`` is the first value as it is."""
    if how not in REDUCTIONS:
        raise QGError(f"reduce: expected one of {', '.join(REDUCTIONS)}, got {how!r}")
    if len(values) == 0:
        raise QGError("scores: expected at least one score to reduce, got an empty list")
    floats = [float(v) for v in values]
    if how == "first":
        return floats[0]
    finite = [v for v in floats if not math.isnan(v)]
    if not finite:
        return math.nan
    if how == "max":
        return max(finite)
    if how == "min":
        return min(finite)
    return math.fsum(finite) / len(finite)


def json_number(value: float) -> float | None:
    """A score as JSON allows it: NaN and infinities become null (browsers cannot parse ``NaN``)."""
    return None if math.isnan(value) or math.isinf(value) else value
