"""Plain logic of Save Image with Scores: the ``quality_gate`` PNG text chunk and the PNG files themselves.

Each saved image gets, next to ComfyUI's own ``prompt`` and ``workflow`` text chunks, a ``quality_gate`` text
chunk holding one JSON object (the same object is in the node's ``/history`` UI, under ``quality_gate``, one per
image in the order of ``images``)::

    {"version": 1, "image": 0,
     "scores": [{"input": "scores_a", "metric": "technical", "model": "technical", "value": 6.25}, ...],
     "loop": {"attempt": 2, "seed": 43, "score": 6.25, "attempts": 4}}

- ``image``: the image's position in the saved batch (0-based).
- ``scores``: one entry per connected scores input, in input order (a, b, c): the score node's metric and model
  id, and this image's value (NaN and infinities as ``null``, as in the score nodes' reports).
- ``loop`` (only with ``loop_history``): the attempt Retry End kept (its best: highest score, ties to the earlier
  attempt, an attempt blocked by a Gate never), its seed and score, and how many attempts ran. Retry End's
  history writes NaN and infinite scores as ``null``; such an attempt counts as having no score here.

Nothing here imports ComfyUI: the node (``nodes/scored.py``) asks ComfyUI for the file names and the
``--disable-metadata`` flag.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from .errors import QGError
from .ranking import json_number
from .score import Scores

CHUNK = "quality_gate"
VERSION = 1
HISTORY_FORMAT = "the history output of Retry End, a JSON list like [{attempt, seed, score}, ...]"


def best_attempt(history: str) -> dict:
    """``{"attempt", "seed", "score", "attempts"}`` of the attempt a Retry End ``history`` says was kept, by
    the loop's own rule (highest score; ties keep the earlier attempt; no score is worse than any; blocked
    attempts never). ``attempt``/``seed``/``score`` are None when every attempt was blocked."""
    try:
        items = json.loads(history)
    except (TypeError, ValueError) as e:
        raise QGError(f"loop_history: expected {HISTORY_FORMAT}, got {str(history)[:60]!r} ({e})") from e
    if not isinstance(items, list) or not items or not all(isinstance(i, dict) for i in items):
        raise QGError(f"loop_history: expected {HISTORY_FORMAT}, got {str(history)[:60]!r}")
    best = None
    for item in items:
        attempt, seed, score = item.get("attempt"), item.get("seed"), item.get("score")
        if not isinstance(attempt, int) or not isinstance(seed, int) or not (score is None or _number(score)):
            raise QGError(f"loop_history: every item needs an integer attempt and seed and a number score, got {item}")
        if item.get("blocked"):
            continue
        if best is None or (score is not None and (best["score"] is None or score > best["score"])):
            best = {"attempt": attempt, "seed": seed, "score": None if score is None else float(score)}
    return {**(best or {"attempt": None, "seed": None, "score": None}), "attempts": len(items)}


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def image_metadata(batch_size: int, scores: dict, loop: dict | None = None) -> list[dict]:
    """The ``quality_gate`` object of every image of a batch of ``batch_size``. ``scores``: input name ->
    ``Scores`` (connected inputs only, in order); each must hold one value per image."""
    for name, value in scores.items():
        if not isinstance(value, Scores):
            raise QGError(f"{name}: expected QG_SCORES from a score node, got {type(value).__name__}")
        if len(value.values) != batch_size:
            raise QGError(
                f"{name}: expected one score per image ({batch_size} images), got {len(value.values)} scores "
                "(score the same batch you save, or rank both with Rank Batch)"
            )
    result = []
    for i in range(batch_size):
        entry = {
            "version": VERSION,
            "image": i,
            "scores": [
                {"input": name, "metric": s.metric, "model": s.model, "value": json_number(float(s.values[i]))}
                for name, s in scores.items()
            ],
        }
        if loop is not None:
            entry["loop"] = dict(loop)
        result.append(entry)
    return result


def text_chunks(prompt, extra_pnginfo, quality_gate: dict | None) -> dict:
    """PNG text chunks in the order ComfyUI's SaveImage writes them (``prompt``, then each ``extra_pnginfo``
    key, e.g. ``workflow``), then ``quality_gate``; every value JSON."""
    chunks = {}
    if prompt is not None:
        chunks["prompt"] = json.dumps(prompt)
    for key, value in (extra_pnginfo or {}).items():
        chunks[key] = json.dumps(value)
    if quality_gate is not None:
        chunks[CHUNK] = json.dumps(quality_gate, allow_nan=False)
    return chunks


def check_images(images) -> None:
    """An IMAGE batch that can be saved: ``[batch >= 1, height >= 1, width >= 1, 1, 3 or 4 channels]``."""
    if (
        not isinstance(images, torch.Tensor)
        or images.ndim != 4
        or 0 in images.shape
        or images.shape[-1] not in (1, 3, 4)
    ):
        got = list(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise QGError(
            f"images: expected an IMAGE batch [batch, height, width, channels] with 1, 3 or 4 channels, got {got}"
        )


def to_pil(image: torch.Tensor) -> Image.Image:
    """One IMAGE ``[H, W, C]`` (0..1) as 8-bit pixels, as SaveImage converts it (NaN as 0)."""
    pixels = np.clip(255.0 * torch.nan_to_num(image.detach().float().cpu(), nan=0.0).numpy(), 0, 255).astype(np.uint8)
    return Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels)


def save_png(path: str | Path, image: torch.Tensor, chunks: dict | None, compress_level: int = 4) -> None:
    """Write ``image`` as a PNG with ``chunks`` as text chunks (None: no text chunks at all)."""
    info = None
    if chunks is not None:
        info = PngInfo()
        for key, value in chunks.items():
            info.add_text(key, value)
    to_pil(image).save(str(path), pnginfo=info, compress_level=compress_level)
