"""Rank Batch's ``indices`` applied to companion batches (Apply Ranking): the same order and filter on an
IMAGE, a MASK (a single mask stands for every image) or a LATENT (its samples, noise mask and noise positions),
so a ranked image keeps its latent for a second pass and its mask for inpainting. Nothing here imports ComfyUI.
"""

from __future__ import annotations

import torch

from .errors import QGError


def parse_indices(text) -> list[int]:
    """Rank Batch's ``indices`` output (0-based positions in the ranked batch, comma-separated, e.g. ``2,0``)
    as a list; spaces are allowed, anything but non-negative integers is an error."""
    if not isinstance(text, str) or not text.strip():
        raise QGError(f"indices: expected Rank Batch's indices, e.g. '2,0', got {text!r}")
    try:
        indices = [int(part) for part in text.split(",")]
    except ValueError:
        raise QGError(f"indices: expected comma-separated batch positions like '2,0', got {text[:60]!r}") from None
    if any(i < 0 for i in indices):
        raise QGError(f"indices: expected positions of at least 0, got {text[:60]!r}")
    return indices


def take(batch: torch.Tensor, indices: list[int], name: str, broadcast: bool = False) -> torch.Tensor:
    """``batch[indices]`` along the first (batch) dimension. ``broadcast``: a batch of 1 stands for every image
    (a single mask for the whole batch) and is repeated ``len(indices)`` times. An index past the batch is an
    error that names the input."""
    if not isinstance(batch, torch.Tensor) or batch.ndim == 0:
        raise QGError(f"{name}: expected a batch tensor, got {type(batch).__name__}")
    size = batch.shape[0]
    if broadcast and size == 1:
        return batch[torch.zeros(len(indices), dtype=torch.long)]
    past = [i for i in indices if i >= size]
    if past:
        raise QGError(
            f"{name}: has {size} item(s) but indices asks for position {past[0]} (indices {_text(indices)}): "
            "connect the batch that was ranked, or one of the same size"
        )
    return batch[torch.tensor(indices, dtype=torch.long)]


def _text(indices: list[int]) -> str:
    text = ",".join(map(str, indices))
    return text if len(text) <= 60 else text[:57] + "..."


def take_latent(latent: dict, indices: list[int], name: str = "latent") -> dict:
    """A LATENT dict in ranked order: ``samples`` taken by ``indices``; ``noise_mask`` likewise (one of batch 1
    applies to every sample and is kept); ``batch_index`` (the samples' noise positions) taken too, or, when
    absent, set to ``indices``, as core's Latent From Batch does, so a second sampling pass gives each kept
    latent the noise it had in the full batch. Other keys are copied unchanged."""
    if not isinstance(latent, dict) or not isinstance(latent.get("samples"), torch.Tensor):
        raise QGError(f"{name}: expected a LATENT (a dict with a samples tensor), got {type(latent).__name__}")
    result = dict(latent)
    result["samples"] = take(latent["samples"], indices, f"{name} samples")
    mask = latent.get("noise_mask")
    if isinstance(mask, torch.Tensor) and mask.ndim > 0 and mask.shape[0] > 1:
        result["noise_mask"] = take(mask, indices, f"{name} noise_mask")
    positions = latent.get("batch_index")
    if positions is None:
        result["batch_index"] = list(indices)
    else:
        if not isinstance(positions, (list, tuple)) or len(positions) != latent["samples"].shape[0]:
            raise QGError(f"{name}: batch_index should list one position per sample, got {positions!r}"[:200])
        result["batch_index"] = [positions[i] for i in indices]
    return result


def take_mask(mask: torch.Tensor, indices: list[int], name: str = "mask") -> torch.Tensor:
    """A MASK batch ``[B, H, W]`` in ranked order; a single mask (batch 1, or a bare ``[H, W]``) applies to every
    image and is repeated, so the output always has one mask per kept image."""
    if isinstance(mask, torch.Tensor) and mask.ndim == 2:
        mask = mask.unsqueeze(0)
    if not isinstance(mask, torch.Tensor) or mask.ndim != 3:
        shape = list(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise QGError(f"{name}: expected a MASK [batch, height, width], got {shape}")
    return take(mask, indices, name, broadcast=True)
