"""Sweeps: the axes of a sweep (value lists or integer ranges, e.g. seeds) and their combinations."""

from __future__ import annotations

import itertools
import math
from typing import Any

from .errors import Errors, TemplateError, fail

MAX_SWEEP = 1000


def sweep_values(key: str, spec: Any) -> list:
    """A sweep axis: a non-empty list of values, or a range ``{"start", "count", "step"?}`` (integers, e.g. seeds)."""
    if isinstance(spec, list) and spec:
        return spec
    if isinstance(spec, dict):
        start, count, step = spec.get("start"), spec.get("count"), spec.get("step", 1)
        unknown = set(spec) - {"start", "count", "step"}
        ints = all(isinstance(v, int) and not isinstance(v, bool) for v in (start, count, step))
        if unknown or not ints or count < 1:
            raise fail(key, 'a range is {"start": int, "count": int >= 1, "step": int (default 1)}')
        if count > MAX_SWEEP:
            raise fail(key, f"a sweep is capped at {MAX_SWEEP} items; this range has {count}")
        return [start + i * step for i in range(count)]
    raise fail(key, 'sweep values must be a non-empty list or a range {"start": int, "count": int, "step": int}')


def expand_sweep(base: Any, sweep: Any, mode: str = "product") -> list[dict]:
    """Every combination (``product``) or the items side by side (``zip``) of the sweep axes over ``base``."""
    if base is None:
        base = {}
    if not isinstance(base, dict):
        raise fail("params", "params must be a JSON object {name: value}")
    if not isinstance(sweep, dict) or not sweep:
        raise fail("sweep", "sweep must be a non-empty object {parameter: [values] or range}")
    if mode not in ("product", "zip"):
        raise fail("mode", f"mode must be 'product' or 'zip', got {mode!r}")
    errors: Errors = {}
    axes = {}
    for key, spec in sweep.items():
        try:
            axes[key] = sweep_values(key, spec)
        except TemplateError as e:
            errors.update(e.errors)
    if errors:
        raise TemplateError(errors)
    lengths = {key: len(values) for key, values in axes.items()}
    if mode == "zip" and len(set(lengths.values())) > 1:
        raise fail("sweep", f"zip needs axes of equal length, got {lengths}")
    total = next(iter(lengths.values())) if mode == "zip" else math.prod(lengths.values())
    if total > MAX_SWEEP:
        raise fail("sweep", f"a sweep is capped at {MAX_SWEEP} items; this one has {total} ({lengths})")
    combos = zip(*axes.values(), strict=True) if mode == "zip" else itertools.product(*axes.values())
    return [{**base, **dict(zip(axes, combo, strict=True))} for combo in combos]
