"""More judges (category ``quality_gate/score``): a loader for scorer models in Hugging Face folders (PickScore,
SigLIP for Aesthetic Predictor v2.5), the human-preference score (HPSv2 on open_clip, PickScore) and CLIP-IQA.

Thin adapters over ``core.hf`` and ``core.score``; model management, folders and the scorer cache are the ones
of ``nodes/score.py``, so every judge of a batch on one scorer shares one encode and ``POST /free`` releases
these models too.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path, PurePosixPath

from . import host
from .common import HIDDEN_ID, QGNode, combo, socket
from .core.errors import QGError
from .core.hf import load_hf
from .core.ranking import json_number
from .core.score import Scorer, Scores, as_text, file_signature, parse_pairs
from .score import (
    CACHE,
    CATEGORY,
    HF_FOLDER,
    NONE,
    SCORE_NAMES,
    SCORE_OUTPUTS,
    SCORER,
    SHOWS_SCORES,
    Managed,
    cached_head,
    head_input,
    image_input,
    nan_inf,
    precision_input,
    reduce_input,
    score_output,
    score_tooltips,
)

CONFIG = "config.json"
PREFERENCE_VALUES = ("score", "batch_softmax")
DEFAULT_PAIRS = "Good photo. | Bad photo."


def scorer_folders() -> list[str]:
    """The folders under ``models/clip_scorers`` (extra_model_paths too) that hold a ``config.json``."""
    names = (PurePosixPath(name.replace("\\", "/")) for name in host.filenames(HF_FOLDER))
    return sorted({str(name.parent) for name in names if name.name == CONFIG and str(name.parent) != "."})


def _folder(name: str) -> Path:
    found = host.full_path(HF_FOLDER, f"{name}/{CONFIG}")
    if found is None:
        looked = ", ".join(host.folder_list(HF_FOLDER))
        raise QGError(f"{name!r} is not a folder with a config.json in models/{HF_FOLDER} (looked in: {looked})")
    return Path(found).parent


def _signature(folder: Path) -> tuple:
    """The folder's config, processor and weight files as they are on disk: a change loads it again."""
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in (".json", ".safetensors", ".txt"))
    return tuple(file_signature(p) for p in files)


def _hf_scorer(folder: Path, precision: str) -> Scorer:
    started = time.perf_counter()
    hf = load_hf(folder)
    managed = Managed(hf.model, precision)
    model_id = f"{folder.name} ({hf.kind})"
    managed.log_loaded(model_id, str(folder), started)
    encode_texts = None
    if hf.tokenizer is not None:

        def encode_texts(texts):
            return hf.encode_texts(managed.tokens(hf.tokenizer, texts))

    return Scorer(
        model_id=model_id,
        image_size=hf.image_size,
        embed_dim=hf.embed_dim,
        encode_images=lambda pixels: hf.encode_images(managed.pixels(pixels, hf.mean, hf.std)),
        encode_texts=encode_texts,
        activate=managed.activate,
        family=hf.family,
        logit_scale=hf.logit_scale,
        crop=hf.crop,
    )


class HFScorerLoader(QGNode):
    TITLE = "HF Scorer Loader"
    CATEGORY = CATEGORY
    DESCRIPTION = (
        "Loads a scorer model kept as a Hugging Face folder in models/clip_scorers (config.json, "
        "model.safetensors and the processor/tokenizer files): PickScore or any CLIP (image and text: Preference "
        "Score, Prompt Adherence, CLIP-IQA, Zero-Shot Classify), or a SigLIP vision tower (so400m-patch14-384) "
        "with the Aesthetic Predictor v2.5 head for Aesthetic Score. Read from the folder only (never a download, "
        "safetensors only), managed by ComfyUI like any model, kept across runs until a file changes or POST "
        "/free releases it."
    )
    RETURN_TYPES = (SCORER,)
    RETURN_NAMES = ("scorer",)
    OUTPUT_TOOLTIPS = ("The scorer for Preference Score, CLIP-IQA, Aesthetic Score and the other judges.",)

    @classmethod
    def INPUT_TYPES(cls):
        folders = scorer_folders()
        return {
            "required": {
                "model": combo(
                    folders or [NONE],
                    folders[0] if folders else NONE,
                    "A folder in models/clip_scorers holding config.json, e.g. PickScore_v1 (CLIP ViT-H/14) or "
                    "siglip-so400m-patch14-384 (for Aesthetic Predictor v2.5).",
                ),
                "head": head_input(),
                "precision": precision_input(),
            },
            "hidden": HIDDEN_ID,
        }

    @classmethod
    def IS_CHANGED(cls, model, head, **kwargs):
        """Load again when a file of the folder or the head changed on disk."""
        found = host.full_path(HF_FOLDER, f"{model}/{CONFIG}")
        head_path = host.full_path("aesthetic", head) if head != NONE else None
        folder = _signature(Path(found).parent) if found else None
        return [folder, file_signature(head_path) if head_path and os.path.isfile(head_path) else None]

    def execute(self, model, head, precision, unique_id=None):
        with self.errors_named(unique_id):
            if model == NONE:
                raise QGError(f"no model folder: put a Hugging Face folder with config.json in models/{HF_FOLDER}")
            head_obj = cached_head(head)
            folder = _folder(model)
            key = ("hf", str(folder), precision)
            base = CACHE.get(key, _signature(folder), lambda: _hf_scorer(folder, precision))
            return (base.with_head(head_obj),)


def _batch_softmax(values: list[float], temperature: float) -> list[float]:
    """Softmax of ``values * temperature`` over the batch (NaN scores left out, and NaN themselves)."""
    finite = [v * temperature for v in values if math.isfinite(v)]
    top = max(finite, default=0.0)
    total = sum(math.exp(v - top) for v in finite)
    return [math.exp(v * temperature - top) / total if math.isfinite(v) else math.nan for v in values]


class PreferenceScore(QGNode):
    TITLE = "Preference Score"
    CATEGORY = CATEGORY
    DESCRIPTION = (
        "Human-preference score of every image for the prompt, as the published scorers compute it. HPSv2 / "
        "HPSv2.1 (the open_clip ViT-H-14 .pt in models/open_clip, through Scorer Loader): the cosine of the "
        "image and prompt embeddings, about 0.2..0.35. PickScore (HF Scorer Loader): the model's logit_scale "
        "(about 100) times that cosine, about 18..24. Compare within one prompt; the report also has the "
        "softmax over the batch, PickScore's way to choose among candidates. NaN/Inf images score NaN."
    )
    RETURN_TYPES = SCORE_OUTPUTS
    RETURN_NAMES = SCORE_NAMES
    OUTPUT_TOOLTIPS = score_tooltips("preference score")

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "image": image_input(),
                "scorer": socket(
                    SCORER, "HPSv2 from Scorer Loader (open_clip) or PickScore from HF Scorer Loader (with text)."
                ),
                "prompt": (
                    "STRING",
                    {"multiline": True, "default": "", "tooltip": "The prompt the images were made for."},
                ),
            },
            "optional": {
                "reduce": reduce_input(),
                "values": combo(
                    PREFERENCE_VALUES,
                    "score",
                    "score = each image's preference score; batch_softmax = its probability of being preferred "
                    "among this batch (sums to 1; a batch of one is always 1, so gate loops on score).",
                ),
            },
            "hidden": HIDDEN_ID,
        }

    def execute(self, image, scorer, prompt, reduce="max", values="score", unique_id=None):
        with self.errors_named(unique_id):
            if not as_text(prompt, "prompt").strip():
                raise QGError("prompt is empty: write the prompt the images were generated from")
            if values not in PREFERENCE_VALUES:
                raise QGError(f"values must be one of {', '.join(PREFERENCE_VALUES)}, got {values!r}")
            scores, flagged = scorer.preference(image, prompt, check=host.interrupt_check)
            probabilities = _batch_softmax(scores, scorer.logit_scale / scorer.preference_scale)
            chosen = scores if values == "score" else probabilities
            formula = "logit_scale*cosine" if scorer.preference_scale != 1.0 else "cosine"
            return score_output(
                Scores(chosen, "preference" if values == "score" else "preference_softmax", scorer.model_id),
                reduce,
                nan_inf(flagged),
                prompt=prompt,
                formula=formula,
                logit_scale=round(scorer.logit_scale, 6),
                preference=[json_number(v) for v in scores],
                batch_softmax=[json_number(p) for p in probabilities],
            )


class ClipIQA(QGNode):
    TITLE = "CLIP-IQA"
    CATEGORY = CATEGORY
    DESCRIPTION = (
        "A 0..1 image-quality score with no weights beyond a CLIP encoder (CLIP-IQA): per antonym prompt pair the "
        "softmax of 100 x cosine over (positive, negative), the positive's share, averaged over the pairs. Text "
        "embeddings are cached; the image embedding is shared with the other judges of the batch on the same "
        "scorer. NaN/Inf images score NaN."
    )
    RETURN_TYPES = SCORE_OUTPUTS
    RETURN_NAMES = SCORE_NAMES
    OUTPUT_TOOLTIPS = score_tooltips("CLIP-IQA score (0..1)")

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "image": image_input(),
                "scorer": socket(SCORER, "Any scorer with a text tower (open_clip or a Hugging Face CLIP)."),
            },
            "optional": {
                "pairs": (
                    "STRING",
                    {
                        "multiline": True,
                        "default": DEFAULT_PAIRS,
                        "tooltip": "Antonym pairs, one per line as 'positive | negative', e.g. 'Sharp photo. | "
                        "Blurry photo.' The score is the mean over the lines.",
                    },
                ),
                "reduce": reduce_input(),
            },
            "hidden": HIDDEN_ID,
        }

    def execute(self, image, scorer, pairs=DEFAULT_PAIRS, reduce="max", unique_id=None):
        with self.errors_named(unique_id):
            parsed = parse_pairs(pairs)
            values, flagged = scorer.clip_iqa(image, parsed, check=host.interrupt_check)
            return score_output(
                Scores(values, "clip_iqa", scorer.model_id),
                reduce,
                nan_inf(flagged),
                pairs=[list(pair) for pair in parsed],
            )


SHOWS_SCORES.extend((PreferenceScore, ClipIQA))
