"""Quality scoring nodes (category ``quality_gate/score``): a scorer loader, aesthetic, prompt adherence,
technical score, combination, batch ranking and zero-shot classification.

Thin adapters over ``core.score``, ``core.technical`` and ``core.ranking``. This module owns what touches
ComfyUI: the ``models/open_clip`` and ``models/aesthetic`` folders, the encoder's ``ModelPatcher`` (loaded with
``load_models_gpu`` only while scoring, so ComfyUI can evict it before sampling), the interrupt check between
chunks, and a cache that keeps each loaded scorer across runs until its files change or ``POST /free`` asks
to unload models or free memory.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import threading
import time
from collections import OrderedDict
from pathlib import Path

import torch

from . import host
from .common import HIDDEN_ID, QGNode, combo, integer, number, socket
from .core.errors import QGError
from .core.graph import signatures
from .core.ranking import ORDERS, REDUCTIONS, combine_scores, rank_indices, reduce_scores
from .core.score import (
    CROPS,
    DTYPES,
    OPENAI_MEAN,
    OPENAI_STD,
    PRECISIONS,
    Scorer,
    Scores,
    architectures,
    as_text,
    build_encoder,
    file_signature,
    load_head,
    normalise,
    parse_labels,
    require_open_clip,
)
from .core.technical import technical_scores

CATEGORY = "quality_gate/score"
LOG = logging.getLogger("quality_gate")
WEIGHT_EXTENSIONS = {".safetensors", ".pt", ".pth", ".bin", ".ckpt"}
JSON = {".json"}
# model folders and what they list: weight files, and for clip_scorers the config.json of each model folder
HF_FOLDER = "clip_scorers"  # Hugging Face model folders (nodes/judges.py)
FOLDERS = {"open_clip": WEIGHT_EXTENSIONS, "aesthetic": WEIGHT_EXTENSIONS, HF_FOLDER: JSON}
NONE = "none"
SCORER = "QG_SCORER"
SCORES = "QG_SCORES"


def register_folders() -> None:
    """Add ``models/open_clip``, ``models/aesthetic`` and ``models/clip_scorers`` to ComfyUI's folders, keeping
    any paths that ``extra_model_paths.yaml`` already gave them; list weight files only (not sidecar ``.json``),
    and in ``clip_scorers`` the ``config.json`` that marks each model folder."""
    for name, extensions in FOLDERS.items():
        host.register_model_folder(name, extensions)


def _files(folder: str) -> list[str]:
    """The weight files of a model folder; none outside ComfyUI (the registry tests read INPUT_TYPES)."""
    return host.filenames(folder)


def model_path(folder: str, name: str) -> str:
    path = host.full_path(folder, name)
    if path is None:
        folders = ", ".join(host.folder_list(folder))
        raise QGError(f"{name!r} is not in models/{folder} (looked in: {folders})")
    return path


class _Holder(torch.nn.Module):
    """ModelPatcher sets ``.device`` on the module it manages; keep that off the open_clip model."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model


def _dtype(precision: str, device) -> torch.dtype:
    if precision != "auto":
        return DTYPES[precision]
    return torch.float16 if host.prefers_fp16(device) else torch.float32


class Managed:
    """A scorer model under ComfyUI's model management: in the precision ComfyUI picks for its device (or
    the one asked), wrapped in a ``ModelPatcher`` that ``activate`` loads with ``load_models_gpu`` for the
    time of a scoring call, so ComfyUI can evict it before sampling."""

    def __init__(self, model: torch.nn.Module, precision: str):
        self.device = host.torch_device()
        self.dtype = _dtype(precision, self.device)
        self.model = model.to(self.dtype)
        self.patcher = host.model_patcher(_Holder(self.model), self.device, host.offload_device())

    def activate(self) -> torch.device:
        host.load_models([self.patcher])
        return self.patcher.load_device

    def pixels(self, pixels: torch.Tensor, mean, std) -> torch.Tensor:
        """Crops (0..1) normalised on the model's device, in its precision."""
        return normalise(pixels.to(self.patcher.load_device), mean, std).to(self.dtype)

    def tokens(self, tokenizer, texts: list[str]) -> torch.Tensor:
        return tokenizer(texts).to(self.patcher.load_device)

    def log_loaded(self, model_id: str, source: str, started: float) -> None:
        LOG.info(
            "Quality Gate: loaded encoder %s from %s (%s, %s) in %.1f s",
            model_id,
            source,
            self.dtype,
            self.device,
            time.perf_counter() - started,
        )


def _open_clip_scorer(encoder_path: str, architecture: str, precision: str) -> Scorer:
    started = time.perf_counter()
    model, model_id, preprocess, embed_dim = build_encoder(encoder_path, architecture)
    managed = Managed(model, precision)
    mean = tuple(preprocess.get("mean") or OPENAI_MEAN)
    std = tuple(preprocess.get("std") or OPENAI_STD)
    size = model.visual.image_size
    size = size[0] if isinstance(size, (tuple, list)) else int(size)
    from open_clip.tokenizer import SimpleTokenizer

    tokenizer = SimpleTokenizer(context_length=getattr(model, "context_length", 77) or 77)
    managed.log_loaded(model_id, Path(encoder_path).name, started)
    return Scorer(
        model_id=model_id,
        image_size=size,
        embed_dim=embed_dim,
        encode_images=lambda pixels: model.encode_image(managed.pixels(pixels, mean, std)),
        encode_texts=lambda texts: model.encode_text(managed.tokens(tokenizer, texts)),
        activate=managed.activate,
        family="open_clip",
        logit_scale=float(model.logit_scale.float().exp()),
    )


def _clip_vision_scorer(clip_vision, head) -> Scorer:
    """A scorer on ComfyUI's own CLIP vision model (``CLIPVisionLoader``): image embeddings only."""
    if not all(hasattr(clip_vision, a) for a in ("patcher", "model", "encode_image", "image_size", "load_device")):
        raise QGError(
            f"clip_vision must be a CLIP_VISION model from CLIPVisionLoader, got {type(clip_vision).__name__}"
        )

    def activate() -> torch.device:
        host.load_models([clip_vision.patcher])
        return clip_vision.load_device

    def encode_images(pixels: torch.Tensor) -> torch.Tensor:
        # Our crops are already square at the model's size, so its own preprocessing only normalises them.
        return clip_vision.encode_image(pixels.movedim(1, -1), crop=True)["image_embeds"]

    projection = clip_vision.model.visual_projection
    return Scorer(
        model_id=f"ComfyUI CLIP vision ({clip_vision.image_size} px)",
        family="clip_vision",
        image_size=int(clip_vision.image_size),
        embed_dim=int(projection.out_features),
        encode_images=encode_images,
        head=head,
        activate=activate,
    )


class ScorerCache:
    """Loaded encoders and heads by (files, options), reused across runs; a file that changed on disk is loaded
    again. The least recently used entries beyond ``size`` are dropped, so switching between many encoders does
    not keep them all in memory. ``POST /free`` expires the whole cache (``expire``, from the request's thread);
    the entries are dropped on ComfyUI's prompt worker thread (``release_expired``, or the next ``get``)."""

    def __init__(self, size: int = 4):
        self._entries: OrderedDict[tuple, tuple[tuple, object]] = OrderedDict()
        self._lock = threading.Lock()
        self._expired = False
        self.size = size

    def get(self, key: tuple, signature: tuple, build):
        with self._lock:
            if self._expired:
                self._release()
            entry = self._entries.get(key)
            if entry is None or entry[0] != signature:
                entry = (signature, build())
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
            return entry[1]

    def expire(self) -> None:
        """Drop every entry at the next ``get`` or ``release_expired``: safe from any thread, it drops nothing
        itself."""
        self._expired = True

    def release_expired(self) -> int:
        """On the thread that runs prompts: forget every entry if ``expire`` asked and no ``get`` did it since
        (a scorer loaded after the ``/free`` stays): how many there were. A scorer a running node holds stays
        alive through that reference and is simply not kept."""
        with self._lock:
            return self._release() if self._expired else 0

    def _release(self) -> int:
        count = len(self._entries)
        self._entries.clear()
        self._expired = False
        if count:
            # free the dropped models here and now, so none of them leaves ComfyUI's list of loaded models
            # later, while ComfyUI walks it
            gc.collect()
            LOG.info("Quality Gate: POST /free released %d cached scorer file(s)", count)
        return count


CACHE = ScorerCache()


def _reduce(values: list[float], how: str) -> float:
    return float(reduce_scores(values, how))


NAN_INF = "nan_inf"
FLAG_TEXT = {NAN_INF: "NaN/Inf pixels", "black": "black", "white": "white", "blank": "blank"}


def score_output(scores: Scores, reduce: str, flags=(), **extra):
    """The (score, scores, report) outputs plus the per-image scores as node UI text (canvas and /history).
    ``flags``: (image index, flag) pairs, in the report as ``flags: [{"image", "flag"}]`` and on the image's
    line of text."""
    score = _reduce(scores.values, reduce)
    report = scores.report(reduce, score, flags=[{"image": i, "flag": f} for i, f in flags], **extra)
    notes = {}
    for i, flag in flags:
        notes.setdefault(i, []).append(FLAG_TEXT.get(flag, flag))
    text = [f"{scores.metric} {reduce} {score:.3f}"] + [
        f"#{i} {v:.3f}" + (f" ({', '.join(notes[i])})" if i in notes else "") for i, v in enumerate(scores.values)
    ]
    return {"ui": {"text": text, "qg_scores": [report]}, "result": (score, scores, json.dumps(report))}


def nan_inf(flagged: list[int]) -> list[tuple[int, str]]:
    return [(i, NAN_INF) for i in flagged]


def reduce_input():
    return combo(
        REDUCTIONS,
        "max",
        "How the batch's per-image scores become the single score output: max (the best image), mean, min "
        "(the worst image) or first (image 0). The scores output keeps every image's score.",
    )


def image_input():
    return socket("IMAGE", "The images to score (every image of the batch is scored).")


SCORE_OUTPUTS = ("FLOAT", SCORES, "STRING")
SCORE_NAMES = ("score", "scores", "report")


def score_tooltips(what: str) -> tuple:
    return (
        f"The batch's {what}, reduced to one number by reduce.",
        "Every image's score in batch order (feeds Combine Scores and Rank Batch).",
        "JSON: metric, model, reduce, score and the per-image scores.",
    )


def cached_head(head: str):
    """The aesthetic head file chosen in a loader (``none``: no head), loaded once per file version."""
    if head == NONE:
        return None
    path = model_path("aesthetic", head)
    return CACHE.get(("head", path), file_signature(path), lambda: load_head(path))


def head_input():
    return combo(
        [NONE, *_files("aesthetic")],
        NONE,
        "Aesthetic head in models/aesthetic, e.g. sac+logos+ava1-l14-linearMSE.pth (LAION v2, about 1..10, for "
        "OpenAI ViT-L/14) or aesthetic_predictor_v2_5.pth (for SigLIP so400m). none = no aesthetic score "
        "(the other judges still work).",
    )


def precision_input():
    return combo(
        PRECISIONS,
        "auto",
        "Encoder weights precision. auto = fp16 where ComfyUI's device supports it, else fp32 (always fp32 on "
        "the CPU). The head always runs in fp32.",
    )


class ScorerLoader(QGNode):
    TITLE = "Scorer Loader"
    CATEGORY = CATEGORY
    DESCRIPTION = (
        "Loads an open_clip image/text encoder from models/open_clip and, optionally, an aesthetic head from "
        "models/aesthetic (LAION v2 linear or ReLU, LAION v1, simulacra; detected from the file). Loaded once and "
        "reused across runs until a file changes; the encoder is managed by ComfyUI (moved onto its device only "
        "while scoring, evicted like any model), and nothing is downloaded. Connect clip_vision to score with "
        "ComfyUI's own CLIP vision ViT-L/14 (CLIPVisionLoader) instead of an open_clip file (image scores only)."
    )
    RETURN_TYPES = (SCORER,)
    RETURN_NAMES = ("scorer",)
    OUTPUT_TOOLTIPS = ("The scorer for Aesthetic Score, Prompt Adherence and Zero-Shot Classify.",)

    @classmethod
    def INPUT_TYPES(cls):
        encoders = _files("open_clip")
        return {
            "required": {
                "encoder": combo(
                    [*encoders, NONE],
                    encoders[0] if encoders else NONE,
                    "open_clip weights in models/open_clip (.safetensors preferred). For the LAION heads: OpenAI "
                    "CLIP ViT-L/14 (open_clip_model.safetensors of timm/vit_large_patch14_clip_224.openai). none = "
                    "use the clip_vision input instead.",
                ),
                "architecture": combo(
                    architectures(),
                    "auto",
                    "The open_clip model the weights belong to. auto = the open_clip config next to the weights "
                    "(<weights name>.json) if there is one, else the built-in model whose shapes the weights have "
                    "(ViT-H-14 for HPSv2), else ViT-L-14-quickgelu (OpenAI ViT-L/14, which the LAION heads expect; "
                    "plain ViT-L-14 uses another activation and gives other scores).",
                ),
                "head": head_input(),
                "precision": precision_input(),
            },
            "optional": {
                "clip_vision": socket(
                    "CLIP_VISION",
                    "Optional: ComfyUI's CLIP vision model (CLIPVisionLoader, OpenAI ViT-L/14 for the LAION "
                    "heads). When connected it encodes the images instead of the encoder file.",
                ),
            },
            "hidden": HIDDEN_ID,
        }

    @classmethod
    def IS_CHANGED(cls, encoder, head, clip_vision=None, **kwargs):
        """Load again when a chosen file changed on disk."""
        found = [host.full_path(f, n) for f, n in (("open_clip", encoder), ("aesthetic", head))]
        if found[0]:
            found.append(str(Path(found[0]).with_suffix(".json")))
        return [file_signature(p) if p and os.path.isfile(p) else None for p in found]

    def execute(self, encoder, architecture, head, precision, clip_vision=None, unique_id=None):
        with self.errors_named(unique_id):
            head_obj = cached_head(head)
            if clip_vision is not None:
                return (_clip_vision_scorer(clip_vision, head_obj),)
            if encoder == NONE:
                raise QGError("encoder is none and clip_vision is not connected: choose an encoder file")
            encoder_path = model_path("open_clip", encoder)
            sidecar = Path(encoder_path).with_suffix(".json")
            signature = (file_signature(encoder_path), file_signature(sidecar) if sidecar.is_file() else None)
            key = ("open_clip", encoder_path, architecture, precision)
            base = CACHE.get(key, signature, lambda: _open_clip_scorer(encoder_path, architecture, precision))
            return (base.with_head(head_obj),)


class AestheticScore(QGNode):
    TITLE = "Aesthetic Score"
    CATEGORY = CATEGORY
    DESCRIPTION = (
        "Scores every image of the batch with the scorer's aesthetic head on its L2-normalised CLIP embedding "
        "(LAION v2: roughly 1..10, 6+ is the top half-percent of web images; v1 runs 1-2 points hotter; "
        "Aesthetic Predictor v2.5 on SigLIP: 1..10, 5.5+ is great). Judges of one batch on one scorer share a "
        "single encode. "
        "Images are preprocessed as tensors on the scorer's device, a few at a time so memory stays bounded. "
        "An image with NaN or infinite pixels (a broken VAE decode) is not scored: its score is NaN, which never "
        "passes a threshold or wins a Retry End, and the report's flags name it (nan_inf). Shows the per-image "
        "scores on the node."
    )
    RETURN_TYPES = SCORE_OUTPUTS
    RETURN_NAMES = SCORE_NAMES
    OUTPUT_TOOLTIPS = score_tooltips("aesthetic score")

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "image": image_input(),
                "scorer": socket(SCORER, "From Scorer Loader or HF Scorer Loader, with an aesthetic head."),
            },
            "optional": {
                "crop": combo(
                    CROPS,
                    "auto",
                    "How an image becomes the encoder's square input. auto = the model's own preprocessing "
                    "(center for CLIP, squash for SigLIP/v2.5); center = shortest side to the model's size and "
                    "the center square (what LAION's heads were trained with); pad = the whole image, padded; "
                    "multi = the mean score of three squares along the long side (tall and wide images); squash "
                    "= the whole image resized to the square.",
                ),
                "reduce": reduce_input(),
            },
            "hidden": HIDDEN_ID,
        }

    def execute(self, image, scorer, crop="auto", reduce="max", unique_id=None):
        with self.errors_named(unique_id):
            values, flagged = scorer.aesthetic(image, crop, check=host.interrupt_check)
            used = scorer.crop if crop == "auto" else crop
            return score_output(Scores(values, "aesthetic", scorer.label), reduce, nan_inf(flagged), crop=used)


class PromptAdherence(QGNode):
    TITLE = "Prompt Adherence"
    CATEGORY = CATEGORY
    DESCRIPTION = (
        "CLIP score of every image against the prompt: 100 * max(cosine, 0) between the image and text "
        "embeddings (typically 15..35 for a matching prompt with OpenAI CLIP; compare within one prompt). Text "
        "embeddings are cached per prompt. An image with NaN or infinite pixels scores NaN (never passes) and is "
        "named in the report's flags (nan_inf)."
    )
    RETURN_TYPES = SCORE_OUTPUTS
    RETURN_NAMES = SCORE_NAMES
    OUTPUT_TOOLTIPS = score_tooltips("CLIP score")

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "image": image_input(),
                "scorer": socket(SCORER, "From Scorer Loader, with an open_clip encoder (it has the text tower)."),
                "prompt": ("STRING", {"multiline": True, "default": "", "tooltip": "The text the images should show."}),
            },
            "optional": {"reduce": reduce_input()},
            "hidden": HIDDEN_ID,
        }

    def execute(self, image, scorer, prompt, reduce="max", unique_id=None):
        with self.errors_named(unique_id):
            if not as_text(prompt, "prompt").strip():
                raise QGError("prompt is empty: write the text the images should match")
            values, flagged = scorer.clip_scores(image, prompt, check=host.interrupt_check)
            return score_output(Scores(values, "clip_score", scorer.model_id), reduce, nan_inf(flagged), prompt=prompt)


class TechnicalScore(QGNode):
    TITLE = "Technical Score"
    CATEGORY = CATEGORY
    DESCRIPTION = (
        "A weights-free 0..10 technical score of every image: sharpness (Laplacian variance at a fixed working "
        "size), exposure and clipping, colourfulness and noise. NaN/Inf, black, white and blank frames are "
        "flagged and score 0. Says nothing about aesthetics or content; fast, works offline with no model."
    )
    RETURN_TYPES = SCORE_OUTPUTS
    RETURN_NAMES = SCORE_NAMES
    OUTPUT_TOOLTIPS = score_tooltips("technical score (0..10)")

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {"image": image_input()},
            "optional": {"reduce": reduce_input()},
            "hidden": HIDDEN_ID,
        }

    def execute(self, image, reduce="max", unique_id=None):
        with self.errors_named(unique_id):
            values, details = technical_scores(image)
            flags = [(i, flag) for i, d in enumerate(details) for flag in d["flags"]]
            scores = Scores([float(v) for v in values], "technical", "technical")
            return score_output(scores, reduce, flags, details=details)


class CombineScores(QGNode):
    TITLE = "Combine Scores"
    CATEGORY = CATEGORY
    DESCRIPTION = (
        "Weighted per-image combination of up to three score lists (e.g. 0.7 aesthetic + 0.3 technical): the "
        "weighted sum divided by the sum of the weights, image by image. The batch sizes must match."
    )
    RETURN_TYPES = ("FLOAT", SCORES)
    RETURN_NAMES = ("score", "scores")
    OUTPUT_TOOLTIPS = score_tooltips("combined score")[:2]

    @classmethod
    def INPUT_TYPES(cls):
        def weight(default):
            return number(default, 0.0, 1000.0, "Weight of this score list (0 = ignored).")

        return {
            "required": {"scores_a": socket(SCORES, "Per-image scores (any score node)."), "weight_a": weight(1.0)},
            "optional": {
                "scores_b": socket(SCORES, "Per-image scores of the same batch."),
                "weight_b": weight(1.0),
                "scores_c": socket(SCORES, "Per-image scores of the same batch."),
                "weight_c": weight(1.0),
                "reduce": reduce_input(),
            },
            "hidden": HIDDEN_ID,
        }

    def execute(self, scores_a, weight_a, scores_b=None, weight_b=1.0, scores_c=None, weight_c=1.0, **kwargs):
        unique_id = kwargs.get("unique_id")
        with self.errors_named(unique_id):
            parts = [(s, w) for s, w in ((scores_a, weight_a), (scores_b, weight_b), (scores_c, weight_c)) if s]
            values = combine_scores([s.values for s, _ in parts], [w for _, w in parts])
            metric = " + ".join(f"{w:g}*{s.metric}" for s, w in parts)
            scores = Scores(values, metric, "; ".join(s.model for s, _ in parts))
            return (_reduce(values, kwargs.get("reduce", "max")), scores)


class RankBatch(QGNode):
    TITLE = "Rank Batch"
    CATEGORY = CATEGORY
    DESCRIPTION = (
        "Sorts a batch by its scores and keeps the best: top_k images, those at or above min_score, but never "
        "fewer than min_keep (the best ones, even below min_score), so a gate never ends in an empty batch. "
        "Ties keep batch order."
    )
    RETURN_TYPES = ("IMAGE", SCORES, "STRING", "INT")
    RETURN_NAMES = ("image", "scores", "indices", "count")
    OUTPUT_TOOLTIPS = (
        "The kept images, best first (or worst first with order ascending).",
        "Their scores in the same order.",
        "The kept images' positions in the input batch (0-based), comma-separated, e.g. 2,0.",
        "How many images were kept.",
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "image": socket("IMAGE", "The batch to rank."),
                "scores": socket(SCORES, "One score per image of that batch."),
            },
            "optional": {
                "top_k": integer(0, 0, 4096, "Keep at most this many images. 0 = all that pass min_score."),
                "min_score": number(
                    -1e9, -1e9, 1e9, "Drop images scoring below this (-1e9 = no minimum). NaN never passes.", 0.01
                ),
                "min_keep": integer(1, 1, 4096, "Always keep at least this many (the best), whatever min_score."),
                "order": combo(ORDERS, "descending", "descending = best first."),
            },
            "hidden": HIDDEN_ID,
        }

    def execute(self, image, scores, top_k=0, min_score=-1e9, min_keep=1, order="descending", unique_id=None):
        with self.errors_named(unique_id):
            if image.shape[0] != len(scores.values):
                raise QGError(f"image has {image.shape[0]} images but scores has {len(scores.values)} scores")
            keep = rank_indices(scores.values, top_k, min_score, min_keep, order)
            kept = Scores([scores.values[i] for i in keep], scores.metric, scores.model)
            picked = image[torch.tensor(keep, dtype=torch.long)]
            return (picked, kept, ",".join(map(str, keep)), len(keep))


class ZeroShotClassify(QGNode):
    TITLE = "Zero-Shot Classify"
    CATEGORY = CATEGORY
    DESCRIPTION = (
        "Picks the label (one per line) that best matches the image, or the text when no image is connected, "
        "by CLIP similarity. The 1-based index feeds Select (QG) to route by subject, e.g. a checkpoint per "
        "subject. For a batch, the label with the highest mean probability wins; the report has every image. "
        "Images with NaN or infinite pixels are left out of the vote and named in the report's flags (nan_inf); "
        "when every image has them, the node fails."
    )
    RETURN_TYPES = ("STRING", "INT", "FLOAT", "STRING")
    RETURN_NAMES = ("label", "index", "confidence", "report")
    OUTPUT_TOOLTIPS = (
        "The best-matching label.",
        "Its 1-based line number (feeds the index of Select (QG)).",
        "Its probability (softmax of 100 * cosine over the labels), 0..1.",
        "JSON: labels, probabilities, per-image choices and the model.",
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "scorer": socket(SCORER, "From Scorer Loader, with an open_clip encoder (it has the text tower)."),
                "labels": (
                    "STRING",
                    {
                        "multiline": True,
                        "default": "a photo of a person\na photo of an animal\na landscape",
                        "tooltip": "One label per line; the order gives the index (1 = first line).",
                    },
                ),
            },
            "optional": {
                "text": (
                    "STRING",
                    {
                        "multiline": True,
                        "default": "",
                        "tooltip": "Text to classify (used when no image is connected).",
                    },
                ),
                "image": socket("IMAGE", "Images to classify; when connected, text is ignored."),
            },
            "hidden": HIDDEN_ID,
        }

    def execute(self, scorer, labels, text="", image=None, unique_id=None):
        with self.errors_named(unique_id):
            names = parse_labels(labels)
            if image is None and not as_text(text, "text").strip():
                raise QGError("connect an image or write a text to classify")
            query = {"images": image} if image is not None else {"text": text}
            probs, flagged = scorer.classify(names, **query, check=host.interrupt_check)
            kept = [i for i in range(probs.shape[0]) if i not in flagged]
            if not kept:
                raise QGError(f"image: all {len(flagged)} images have NaN or infinite pixels; nothing to classify")
            mean = probs[kept].mean(dim=0)
            best = int(mean.argmax())
            report = {
                "labels": names,
                "probabilities": [round(float(p), 6) for p in mean],
                "per_image": [
                    {"label": None, "index": 0, "flag": NAN_INF}
                    if i in flagged
                    else {"label": names[int(p.argmax())], "index": int(p.argmax()) + 1}
                    for i, p in enumerate(probs)
                ],
                "flags": [{"image": i, "flag": NAN_INF} for i in flagged],
                "model": scorer.model_id,
                "source": "image" if image is not None else "text",
            }
            return {
                "ui": {"text": [f"{names[best]} ({float(mean[best]):.3f})"]},
                "result": (names[best], best + 1, float(mean[best]), json.dumps(report)),
            }


class ScoresShown:
    """The UI (per-image scores) of score nodes that ran, by the digest of their ancestry in the prompt
    (``core.graph.signatures``), so a score node that is a cache hit in a later prompt gets the same scores in
    that prompt's ``/history``: ComfyUI records UI only for the nodes that run (and for cached output nodes,
    only when a websocket client queued the prompt). The last ``size`` digests are kept."""

    def __init__(self, size: int = 1024):
        self._shown: OrderedDict[str, tuple] = OrderedDict()
        self.size = size

    def __call__(self, prompt_id, prompt: dict, outputs: dict, meta: dict, messages: list) -> None:
        kinds = {cls.NODE_ID for cls in SHOWS_SCORES}
        nodes = [n for n, info in prompt.items() if isinstance(info, dict) and info.get("class_type") in kinds]
        if not nodes:
            return
        cached = set()
        for event, data in messages:
            if event == "execution_cached" and isinstance(data, dict):
                cached.update(data.get("nodes") or ())
        try:
            digests = signatures(prompt, nodes)
        except QGError:  # a cycle: ComfyUI did not run the prompt
            return
        for node in nodes:
            key = digests[node]
            if node in outputs:
                self._shown[key] = (outputs[node], meta.get(node))
                self._shown.move_to_end(key)
            elif node in cached and key in self._shown:
                outputs[node], shown_meta = self._shown[key]
                if shown_meta is not None:
                    meta[node] = shown_meta
        while len(self._shown) > self.size:
            self._shown.popitem(last=False)


SCORES_SHOWN = ScoresShown()


def setup() -> None:
    """At pack load inside ComfyUI: register the model folders, release the scorer cache on ``POST /free``, and
    warn once when open_clip is missing (the scoring nodes then fail with that message; the other nodes work).
    Outside ComfyUI (pytest imports the pack root) there are no folders to register."""
    if not host.in_comfyui():
        return
    register_folders()
    host.on_free(CACHE.expire, CACHE.release_expired)
    host.on_prompt_done(SCORES_SHOWN)
    try:
        require_open_clip()
    except QGError as e:
        LOG.warning("Quality Gate: %s", e)


# nodes with per-image UI (nodes/judges.py adds its own)
SHOWS_SCORES = [AestheticScore, PromptAdherence, TechnicalScore, ZeroShotClassify]
