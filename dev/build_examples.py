"""Writes every example workflow twice from one description: the UI (LiteGraph 0.4) file the template browser opens,
``example_workflows/<name>.json``, and its API-format twin, ``example_workflows/api/<name>.json`` (a plain API prompt
``{node id: {class_type, inputs}}``, as third-party clients and linters expect). An example with a title is also one
of the pack's run-by-name templates, ``templates/<name>.json``: ``{"title", "description", "workflow"}``.

Each example below is a list of nodes (id, type, title, group, widget values by name, links by input name).
``SPECS`` lists, per node type, its inputs in ``/object_info`` order and its outputs; the tests check it against the
live server, so the UI ``widgets_values`` order is the one the frontend builds (an INT widget with
``control_after_generate``, marked ``+``, is followed by its control value, "fixed" here).

    .venv/bin/python dev/build_examples.py          # write the files
    .venv/bin/python dev/build_examples.py --check  # exit 1 when a committed file differs from this output

Plain Python, no ComfyUI import. The tests (tests/test_example_workflows.py) also compare the committed files
with ``build()``.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES_DIR = "example_workflows"
TEMPLATES_DIR = "templates"
WIDGET_TYPES = ("INT", "FLOAT", "STRING", "BOOLEAN", "COMBO")
CONTROL = "fixed"  # the value of the frontend's "control after generate" widget in every example

# Inputs "name:TYPE" in /object_info order (required, then optional). A widget type (INT FLOAT STRING BOOLEAN
# COMBO) is a widget; "+" marks control_after_generate; "!" marks forceInput (a socket, no widget). Outputs after "->".
SPECS = {
    "CheckpointLoaderSimple": "ckpt_name:COMBO -> MODEL:MODEL CLIP:CLIP VAE:VAE",
    "CLIPTextEncode": "text:STRING clip:CLIP -> CONDITIONING:CONDITIONING",
    "EmptyLatentImage": "width:INT height:INT batch_size:INT -> LATENT:LATENT",
    "KSampler": "model:MODEL seed:INT+ steps:INT cfg:FLOAT sampler_name:COMBO scheduler:COMBO "
    "positive:CONDITIONING negative:CONDITIONING latent_image:LATENT denoise:FLOAT -> LATENT:LATENT",
    "KSamplerAdvanced": "model:MODEL add_noise:COMBO noise_seed:INT+ steps:INT cfg:FLOAT sampler_name:COMBO "
    "scheduler:COMBO positive:CONDITIONING negative:CONDITIONING latent_image:LATENT start_at_step:INT "
    "end_at_step:INT return_with_leftover_noise:COMBO -> LATENT:LATENT",
    "VAEDecode": "samples:LATENT vae:VAE -> IMAGE:IMAGE",
    "VAEEncode": "pixels:IMAGE vae:VAE -> LATENT:LATENT",
    "ImageScale": "image:IMAGE upscale_method:COMBO width:INT height:INT crop:COMBO -> IMAGE:IMAGE",
    "ImageScaleBy": "image:IMAGE upscale_method:COMBO scale_by:FLOAT -> IMAGE:IMAGE",
    "ImageBlur": "image:IMAGE blur_radius:INT sigma:FLOAT -> IMAGE:IMAGE",
    "ImageBatch": "image1:IMAGE image2:IMAGE -> IMAGE:IMAGE",
    "ImageCompositeMasked": "destination:IMAGE source:IMAGE x:INT y:INT resize_source:BOOLEAN mask:MASK -> IMAGE:IMAGE",
    "EmptyImage": "width:INT height:INT batch_size:INT color:INT -> IMAGE:IMAGE",
    "SaveImage": "images:IMAGE filename_prefix:STRING ->",
    "PreviewImage": "images:IMAGE ->",
    "PreviewAny": "source:* ->",
    "PrimitiveStringMultiline": "value:STRING -> STRING:STRING",
    "PrimitiveString": "value:STRING -> STRING:STRING",
    "PrimitiveFloat": "value:FLOAT -> FLOAT:FLOAT",
    "QG_Compare": "a:* comparison:COMBO b:* c:* tolerance:FLOAT case_sensitive:BOOLEAN -> result:BOOLEAN "
    "explanation:STRING",
    "QG_Switch": "condition:BOOLEAN on_true:* on_false:* -> value:*",
    "QG_Select": "mode:COMBO index:INT " + " ".join(f"input_{i}:*" for i in range(1, 17)) + " -> value:* index:INT",
    "QG_Gate": "value:* open:BOOLEAN on_closed:COMBO -> value:*",
    "QG_ScorerLoader": "encoder:COMBO architecture:COMBO head:COMBO precision:COMBO clip_vision:CLIP_VISION "
    "-> scorer:QG_SCORER",
    "QG_AestheticScore": "image:IMAGE scorer:QG_SCORER crop:COMBO reduce:COMBO -> score:FLOAT scores:QG_SCORES "
    "report:STRING",
    "QG_TechnicalScore": "image:IMAGE reduce:COMBO -> score:FLOAT scores:QG_SCORES report:STRING",
    "QG_PromptAdherence": "image:IMAGE scorer:QG_SCORER prompt:STRING reduce:COMBO -> score:FLOAT "
    "scores:QG_SCORES report:STRING",
    "QG_PreferenceScore": "image:IMAGE scorer:QG_SCORER prompt:STRING reduce:COMBO values:COMBO -> score:FLOAT "
    "scores:QG_SCORES report:STRING",
    "QG_CombineScores": "scores_a:QG_SCORES weight_a:FLOAT scores_b:QG_SCORES weight_b:FLOAT scores_c:QG_SCORES "
    "weight_c:FLOAT reduce:COMBO -> score:FLOAT scores:QG_SCORES",
    "QG_SaveImageWithScores": "images:IMAGE filename_prefix:STRING scores_a:QG_SCORES scores_b:QG_SCORES "
    "scores_c:QG_SCORES loop_history:STRING! ->",
    "QG_RankBatch": "image:IMAGE scores:QG_SCORES top_k:INT min_score:FLOAT min_keep:INT order:COMBO -> "
    "image:IMAGE scores:QG_SCORES indices:STRING count:INT",
    "QG_ZeroShotClassify": "scorer:QG_SCORER labels:STRING text:STRING image:IMAGE -> label:STRING index:INT "
    "confidence:FLOAT report:STRING",
    "QG_RetryStart": "seed:INT+ max_attempts:INT seed_step:INT -> loop:QG_LOOP seed:INT attempt:INT",
    "QG_RetryEnd": "loop:QG_LOOP candidate:* score:FLOAT! threshold:FLOAT mode:COMBO on_fail:COMBO -> best:* "
    "best_score:FLOAT best_seed:INT attempts:INT passed:BOOLEAN history:STRING",
    "QG_ParamText": "name:STRING value:STRING description:STRING required:BOOLEAN -> value:STRING",
    "QG_ParamInt": "name:STRING value:INT min:INT max:INT step:INT description:STRING required:BOOLEAN -> value:INT",
    "QG_ParamFloat": "name:STRING value:FLOAT min:FLOAT max:FLOAT step:FLOAT description:STRING required:BOOLEAN "
    "-> value:FLOAT",
    "QG_ParamBool": "name:STRING value:BOOLEAN description:STRING required:BOOLEAN -> value:BOOLEAN",
    "QG_ParamChoice": "name:STRING value:STRING choices:STRING description:STRING required:BOOLEAN -> value:*",
    "QG_ParamSeed": "name:STRING value:INT policy:COMBO description:STRING required:BOOLEAN -> seed:INT",
}

# The seed's groups (model loading, prompts, generation, post-processing) plus one for the pack's own nodes.
GROUPS = {
    "Model loading": "#4a148c",
    "Parameters": "#3f789e",
    "Prompts": "#01579b",
    "Generation": "#ef6c00",
    "Quality gate": "#8a6d00",
    "Post-processing": "#1b5e20",
}


@dataclass(frozen=True)
class Slot:
    name: str
    type: str
    widget: bool
    control: bool = False


def spec(class_type: str) -> tuple[list[Slot], list[tuple[str, str]]]:
    """(inputs, outputs) of a node type, from ``SPECS``."""
    inputs_text, outputs_text = SPECS[class_type].split("->")
    inputs = []
    for item in inputs_text.split():
        name, kind = item.split(":")
        control, force = kind.endswith("+"), kind.endswith("!")
        kind = kind.rstrip("+!")
        inputs.append(Slot(name, kind, kind in WIDGET_TYPES and not force, control))
    outputs = [tuple(item.split(":")) for item in outputs_text.split()]
    return inputs, outputs


@dataclass
class Node:
    id: int
    type: str
    title: str
    group: str
    widgets: dict = field(default_factory=dict)  # every widget's value by name
    links: dict = field(default_factory=dict)  # input name -> (source node id, output slot)


@dataclass
class Example:
    name: str
    nodes: list
    title: str = ""  # set: also a pack template, templates/<name>.json {"title", "description", "workflow"}
    description: str = ""


# --- the examples -------------------------------------------------------------------------------------------

SD15 = "v1-5-pruned-emaonly.safetensors"
ENCODER = "open_clip_model.safetensors"
HPS = "HPS_v2.1_compressed.pt"  # HPSv2.1's published checkpoint (open_clip ViT-H-14 in {"state_dict"})
HEAD = "sac+logos+ava1-l14-linearMSE.pth"
NEGATIVE = "blurry, low quality, ugly, deformed, watermark"


def checkpoint(id_, name=SD15, title="Checkpoint"):
    return Node(id_, "CheckpointLoaderSimple", title, "Model loading", {"ckpt_name": name})


def encode(id_, text, clip, title, group="Prompts"):
    return Node(id_, "CLIPTextEncode", title, group, {"text": text}, {"clip": clip})


def latent(id_, size=512, title="Empty latent", batch=1):
    return Node(id_, "EmptyLatentImage", title, "Generation", {"width": size, "height": size, "batch_size": batch})


def ksampler(id_, title, model, positive, negative, latent_image, steps=20, denoise=1.0, links=None):
    """A KSampler; ``links`` wires widget inputs too (e.g. ``{"seed": (4, 1)}``)."""
    widgets = {
        "seed": 42,
        "steps": steps,
        "cfg": 7.0,
        "sampler_name": "euler",
        "scheduler": "karras",
        "denoise": denoise,
    }
    wires = {"model": model, "positive": positive, "negative": negative, "latent_image": latent_image}
    return Node(id_, "KSampler", title, "Generation", widgets, {**wires, **(links or {})})


def decode(id_, samples, vae, title="Decode", group="Generation"):
    return Node(id_, "VAEDecode", title, group, {}, {"samples": samples, "vae": vae})


def save(id_, images, prefix, title="Save"):
    return Node(id_, "SaveImage", title, "Post-processing", {"filename_prefix": prefix}, {"images": images})


def show(id_, source, title):
    return Node(id_, "PreviewAny", title, "Post-processing", {}, {"source": source})


def technical(id_, image, title="Technical score", reduce="max", group="Quality gate"):
    return Node(id_, "QG_TechnicalScore", title, group, {"reduce": reduce}, {"image": image})


def scorer(id_, head=HEAD, title="Scorer (open_clip ViT-L/14)", encoder=ENCODER):
    widgets = {"encoder": encoder, "architecture": "auto", "head": head, "precision": "auto"}
    return Node(id_, "QG_ScorerLoader", title, "Model loading", widgets)


def hires_fix_quality_gate() -> Example:
    """The seed's two-pass hi-res fix, with the expensive second pass behind a gate on the draft's score."""
    return Example(
        "hires_fix_quality_gate",
        [
            checkpoint(1),
            encode(2, "a lighthouse on a rocky coast at sunset, sharp focus, detailed", (1, 1), "Positive prompt"),
            encode(3, NEGATIVE, (1, 1), "Negative prompt"),
            latent(4, 512, "Draft latent (512 px)"),
            ksampler(5, "Pass 1: draft", (1, 0), (2, 0), (3, 0), (4, 0), steps=20),
            decode(6, (5, 0), (1, 2), "Decode draft"),
            technical(7, (6, 0), "Score the draft"),
            Node(8, "PrimitiveFloat", "Minimum draft score", "Quality gate", {"value": 5.0}),
            Node(
                9,
                "QG_Compare",
                "Draft good enough?",
                "Quality gate",
                {"comparison": "greater_equal", "tolerance": 0.0, "case_sensitive": True},
                {"a": (7, 0), "b": (8, 0)},
            ),
            Node(
                10,
                "QG_Gate",
                "Hi-res pass only for good drafts",
                "Quality gate",
                {"open": True, "on_closed": "block"},
                {"value": (6, 0), "open": (9, 0)},
            ),
            Node(
                11,
                "ImageScale",
                "Upscale 2x (lanczos)",
                "Generation",
                {"upscale_method": "lanczos", "width": 1024, "height": 1024, "crop": "center"},
                {"image": (10, 0)},
            ),
            Node(12, "VAEEncode", "Encode upscaled", "Generation", {}, {"pixels": (11, 0), "vae": (1, 2)}),
            ksampler(13, "Pass 2: refine (denoise 0.45)", (1, 0), (2, 0), (3, 0), (12, 0), steps=15, denoise=0.45),
            decode(14, (13, 0), (1, 2), "Decode final", "Post-processing"),
            save(15, (14, 0), "hires_fix", "Save hi-res"),
            Node(16, "PreviewImage", "Draft", "Post-processing", {}, {"images": (6, 0)}),
            show(17, (9, 1), "Why (gate decision)"),
        ],
    )


def retry_until_quality() -> Example:
    """KSampler and decode inside a retry loop scored by the weights-free technical score."""
    return Example(
        "retry_until_quality",
        [
            checkpoint(1),
            encode(2, "a lighthouse on a rocky coast at sunset, sharp focus, detailed", (1, 1), "Positive prompt"),
            encode(3, "blurry, low quality, overexposed", (1, 1), "Negative prompt"),
            Node(4, "QG_RetryStart", "Retry start", "Quality gate", {"seed": 42, "max_attempts": 4, "seed_step": 1}),
            latent(5, 512, "Latent"),
            ksampler(6, "Sample (one attempt)", (1, 0), (2, 0), (3, 0), (5, 0), links={"seed": (4, 1)}),
            decode(7, (6, 0), (1, 2)),
            technical(8, (7, 0)),
            Node(
                9,
                "QG_RetryEnd",
                "Retry until quality",
                "Quality gate",
                {"threshold": 6.0, "mode": "until_threshold", "on_fail": "return_best"},
                {"loop": (4, 0), "candidate": (7, 0), "score": (8, 0)},
            ),
            save(10, (9, 0), "retry_until_quality", "Save best"),
            show(11, (9, 5), "Scores of every attempt"),
        ],
    )


def sdxl_refiner_best_of_n() -> Example:
    """The seed's SDXL base + refiner split (20 of 25 steps on the base), run for N seeds, the most aesthetic kept."""
    prompt = "cinematic photo of a dragon perched on a mountain peak, storm clouds, lightning, epic fantasy"
    negative = "cartoon, anime, low quality, blurry, watermark"

    def sampler(id_, title, model, positive, negative, latent_image, base):
        widgets = {
            "add_noise": "enable" if base else "disable",
            "noise_seed": 42,
            "steps": 25,
            "cfg": 7.5,
            "sampler_name": "euler",
            "scheduler": "karras",
            "start_at_step": 0 if base else 20,
            "end_at_step": 20 if base else 25,
            "return_with_leftover_noise": "enable" if base else "disable",
        }
        wires = {"model": model, "positive": positive, "negative": negative, "latent_image": latent_image}
        if base:
            wires["noise_seed"] = (7, 1)
        return Node(id_, "KSamplerAdvanced", title, "Generation", widgets, wires)

    return Example(
        "sdxl_refiner_best_of_n",
        [
            checkpoint(1, "sd_xl_base_1.0.safetensors", "SDXL base"),
            checkpoint(2, "sd_xl_refiner_1.0.safetensors", "SDXL refiner"),
            scorer(3),
            encode(4, prompt, (1, 1), "Positive (base)"),
            encode(5, negative, (1, 1), "Negative (base)"),
            encode(6, prompt, (2, 1), "Positive (refiner)"),
            encode(15, negative, (2, 1), "Negative (refiner)"),
            Node(
                7, "QG_RetryStart", "Best of N seeds", "Quality gate", {"seed": 42, "max_attempts": 4, "seed_step": 1}
            ),
            latent(8, 1024, "Latent (1024 px)"),
            sampler(9, "Base: steps 0-20", (1, 0), (4, 0), (5, 0), (8, 0), base=True),
            sampler(10, "Refiner: steps 20-25", (2, 0), (6, 0), (15, 0), (9, 0), base=False),
            decode(11, (10, 0), (1, 2)),
            Node(
                12,
                "QG_AestheticScore",
                "Aesthetic score",
                "Quality gate",
                {"crop": "center", "reduce": "max"},
                {"image": (11, 0), "scorer": (3, 0)},
            ),
            Node(
                13,
                "QG_RetryEnd",
                "Keep the best of N",
                "Quality gate",
                {"threshold": 6.0, "mode": "best_of_n", "on_fail": "return_best"},
                {"loop": (7, 0), "candidate": (11, 0), "score": (12, 0)},
            ),
            save(14, (13, 0), "sdxl_best_of_n", "Save best"),
            show(16, (13, 5), "Scores of every seed"),
        ],
    )


def best_of_n_saved_with_scores() -> Example:
    """Best of N seeds by a weighted mix of the human-preference score (HPSv2.1) and the technical score; the
    kept image is saved with each judge's score, the mix, its seed and attempt in the PNG. PickScore (HF Scorer
    Loader) drops in for HPSv2.1 with the weight 0.25 instead of 20 (its scale is logit_scale x cosine)."""
    prompt = "a red fox in a snowy forest, morning light, detailed fur"

    def judges(first, image, group, title):
        preference = Node(
            first,
            "QG_PreferenceScore",
            f"{title}: human preference (HPSv2.1)",
            group,
            {"prompt": "", "reduce": "max", "values": "score"},
            {"image": image, "scorer": (3, 0), "prompt": (1, 0)},
        )
        return [preference, technical(first + 1, image, f"{title}: technical", group=group)]

    return Example(
        "best_of_n_saved_with_scores",
        [
            Node(1, "PrimitiveStringMultiline", "Prompt", "Prompts", {"value": prompt}),
            checkpoint(2),
            scorer(3, "none", "Scorer (HPSv2.1: open_clip ViT-H-14, no head)", HPS),
            Node(4, "CLIPTextEncode", "Positive prompt", "Prompts", {"text": ""}, {"clip": (2, 1), "text": (1, 0)}),
            encode(5, NEGATIVE, (2, 1), "Negative prompt"),
            Node(
                6, "QG_RetryStart", "Best of N seeds", "Quality gate", {"seed": 42, "max_attempts": 4, "seed_step": 1}
            ),
            latent(7, 512, "Latent"),
            ksampler(8, "Sample (one attempt)", (2, 0), (4, 0), (5, 0), (7, 0), links={"seed": (6, 1)}),
            decode(9, (8, 0), (2, 2)),
            *judges(10, (9, 0), "Quality gate", "Judge"),
            Node(
                12,
                "QG_CombineScores",
                "Weighted mix (20 x HPS preference + 1 x technical)",
                "Quality gate",
                {"weight_a": 20.0, "weight_b": 1.0, "weight_c": 0.0, "reduce": "max"},
                {"scores_a": (10, 1), "scores_b": (11, 1)},
            ),
            Node(
                13,
                "QG_RetryEnd",
                "Keep the best of N",
                "Quality gate",
                {"threshold": 0.55, "mode": "best_of_n", "on_fail": "return_best"},
                {"loop": (6, 0), "candidate": (9, 0), "score": (12, 0)},
            ),
            *judges(14, (13, 0), "Post-processing", "Kept image"),
            Node(
                16,
                "QG_SaveImageWithScores",
                "Save with scores in the PNG",
                "Post-processing",
                {"filename_prefix": "best_of_n_scored"},
                {"images": (13, 0), "scores_a": (14, 1), "scores_b": (15, 1), "loop_history": (13, 5)},
            ),
            show(17, (13, 5), "Mixed score of every seed"),
        ],
    )


def model_by_subject() -> Example:
    """Zero-shot classify the prompt, then load only the checkpoint made for that subject (lazy Select)."""
    labels = "a photograph of a real person, animal or place\nan anime or cartoon illustration"

    def pick(id_, title, slot):
        return Node(
            id_,
            "QG_Select",
            f"{title} for the subject",
            "Model loading",
            {"mode": "index", "index": 1},
            {"index": (5, 1), "input_1": (2, slot), "input_2": (3, slot)},
        )

    return Example(
        "model_by_subject",
        [
            Node(
                1,
                "PrimitiveStringMultiline",
                "Prompt",
                "Prompts",
                {"value": "portrait of an old fisherman, 85mm photo"},
            ),
            checkpoint(2, "realistic_sd15.safetensors", "Photo checkpoint (label 1)"),
            checkpoint(3, "anime_sd15.safetensors", "Anime checkpoint (label 2)"),
            scorer(4, "none", "Scorer (open_clip, no head needed)"),
            Node(
                5,
                "QG_ZeroShotClassify",
                "Which subject?",
                "Quality gate",
                {"labels": labels, "text": ""},
                {"scorer": (4, 0), "text": (1, 0)},
            ),
            pick(6, "Model", 0),
            pick(7, "CLIP", 1),
            pick(8, "VAE", 2),
            Node(9, "CLIPTextEncode", "Positive prompt", "Prompts", {"text": ""}, {"clip": (7, 0), "text": (1, 0)}),
            encode(10, NEGATIVE, (7, 0), "Negative prompt"),
            latent(11, 512),
            ksampler(12, "Sample", (6, 0), (9, 0), (10, 0), (11, 0)),
            decode(13, (12, 0), (8, 0), "Decode", "Post-processing"),
            save(14, (13, 0), "model_by_subject"),
            show(15, (5, 3), "Classification"),
        ],
    )


def template_batch_txt2img() -> Example:
    """Text to image with named parameters, for batch runs and sweeps through the pack's routes and client."""

    def param(id_, type_, title, **widgets):
        base = {"name": widgets.pop("name"), "value": widgets.pop("value"), **widgets}
        base.setdefault("description", "")
        base["required"] = False
        return Node(id_, type_, title, "Parameters", base)

    return Example(
        "template_batch_txt2img",
        [
            param(
                1,
                "QG_ParamText",
                "prompt",
                name="prompt",
                value="a red fox in a snowy forest, morning light",
                description="What to draw.",
            ),
            param(2, "QG_ParamText", "negative", name="negative", value=NEGATIVE, description="What to avoid."),
            param(
                3,
                "QG_ParamSeed",
                "seed",
                name="seed",
                value=42,
                policy="random",
                description="Noise seed. Sweep it for variations; random when not given.",
            ),
            param(
                4, "QG_ParamInt", "steps", name="steps", value=20, min=1, max=100, step=1, description="Sampling steps."
            ),
            param(
                5,
                "QG_ParamInt",
                "size",
                name="size",
                value=512,
                min=64,
                max=2048,
                step=64,
                description="Width and height in pixels (a multiple of 8).",
            ),
            param(
                6,
                "QG_ParamFloat",
                "cfg",
                name="cfg",
                value=7.0,
                min=1.0,
                max=20.0,
                step=0.5,
                description="Classifier-free guidance scale.",
            ),
            checkpoint(7),
            Node(8, "CLIPTextEncode", "Positive prompt", "Prompts", {"text": ""}, {"clip": (7, 1), "text": (1, 0)}),
            Node(9, "CLIPTextEncode", "Negative prompt", "Prompts", {"text": ""}, {"clip": (7, 1), "text": (2, 0)}),
            Node(
                10,
                "EmptyLatentImage",
                "Latent",
                "Generation",
                {"width": 512, "height": 512, "batch_size": 1},
                {"width": (5, 0), "height": (5, 0)},
            ),
            ksampler(
                11, "Sample", (7, 0), (8, 0), (9, 0), (10, 0), links={"seed": (3, 0), "steps": (4, 0), "cfg": (6, 0)}
            ),
            decode(12, (11, 0), (7, 2), "Decode", "Post-processing"),
            technical(13, (12, 0), "Technical score", group="Post-processing"),
            save(14, (12, 0), "qg_batch", "image"),
            show(15, (13, 2), "score"),
        ],
        title="Text to image (batch)",
        description="Text to image on an SD 1.5 checkpoint with named parameters prompt, negative, seed, steps, "
        "size and cfg, scored by the technical score: run it by name or sweep seeds and prompts.",
    )


def technical_score_no_weights() -> Example:
    """Runs anywhere: three candidates made by core nodes (sharp, blurred, blank), scored and ranked."""
    return Example(
        "technical_score_no_weights",
        [
            Node(
                1,
                "EmptyImage",
                "Background (teal)",
                "Generation",
                {"width": 512, "height": 512, "batch_size": 1, "color": 1582651},
            ),
            Node(
                2,
                "EmptyImage",
                "Square (orange)",
                "Generation",
                {"width": 192, "height": 192, "batch_size": 1, "color": 15902298},
            ),
            Node(
                3,
                "ImageCompositeMasked",
                "Sharp: square on background",
                "Generation",
                {"x": 160, "y": 160, "resize_source": False},
                {"destination": (1, 0), "source": (2, 0)},
            ),
            Node(4, "ImageBlur", "Blurred copy", "Generation", {"blur_radius": 31, "sigma": 10.0}, {"image": (3, 0)}),
            Node(5, "ImageBatch", "Sharp + blurred", "Generation", {}, {"image1": (3, 0), "image2": (4, 0)}),
            Node(6, "ImageBatch", "+ blank background", "Generation", {}, {"image1": (5, 0), "image2": (1, 0)}),
            technical(7, (6, 0), "Technical score (no weights)", reduce="max"),
            Node(
                8,
                "QG_RankBatch",
                "Keep the best",
                "Quality gate",
                {"top_k": 1, "min_score": 0.0, "min_keep": 1, "order": "descending"},
                {"image": (6, 0), "scores": (7, 1)},
            ),
            save(9, (8, 0), "technical_best", "Save best"),
            show(10, (7, 2), "Scores of every candidate"),
            show(11, (8, 2), "Kept (batch indices)"),
        ],
    )


def logic_switch_gate() -> Example:
    """No weights: Compare + lazy Switch pick a palette, a Gate saves only when a prompt was given."""
    return Example(
        "logic_switch_gate",
        [
            Node(1, "PrimitiveStringMultiline", "Prompt", "Prompts", {"value": "a red fox in the snow at night"}),
            Node(11, "PrimitiveString", "Word to look for", "Prompts", {"value": "night"}),
            Node(
                2,
                "QG_Compare",
                "Night scene?",
                "Quality gate",
                {"comparison": "contains", "tolerance": 0.0, "case_sensitive": False},
                {"a": (1, 0), "b": (11, 0)},
            ),
            Node(
                3,
                "EmptyImage",
                "Night palette (cheap branch)",
                "Generation",
                {"width": 512, "height": 512, "batch_size": 1, "color": 1582651},
            ),
            Node(
                4,
                "EmptyImage",
                "Day palette",
                "Generation",
                {"width": 2048, "height": 2048, "batch_size": 1, "color": 15902298},
            ),
            Node(
                5,
                "ImageBlur",
                "Soften day palette (expensive branch)",
                "Generation",
                {"blur_radius": 24, "sigma": 8.0},
                {"image": (4, 0)},
            ),
            Node(
                6,
                "QG_Switch",
                "Night or day",
                "Quality gate",
                {"condition": True},
                {"condition": (2, 0), "on_true": (3, 0), "on_false": (5, 0)},
            ),
            Node(
                7,
                "QG_Compare",
                "Prompt given?",
                "Quality gate",
                {"comparison": "is_not_empty", "tolerance": 0.0, "case_sensitive": True},
                {"a": (1, 0)},
            ),
            Node(
                8,
                "QG_Gate",
                "Save only with a prompt",
                "Quality gate",
                {"open": True, "on_closed": "block"},
                {"value": (6, 0), "open": (7, 0)},
            ),
            save(9, (8, 0), "quality_gate/logic_demo"),
            show(10, (2, 1), "Why"),
        ],
    )


def template_solid_image() -> Example:
    """A model-free template: every parameter type but the seed."""

    def param(id_, type_, title, group="Parameters", **widgets):
        return Node(id_, type_, title, group, {**widgets, "required": False})

    return Example(
        "template_solid_image",
        [
            param(
                1,
                "QG_ParamInt",
                "Width",
                name="width",
                value=64,
                min=16,
                max=512,
                step=8,
                description="Image width in pixels.",
            ),
            param(
                2,
                "QG_ParamInt",
                "Height",
                name="height",
                value=64,
                min=16,
                max=512,
                step=8,
                description="Image height in pixels.",
            ),
            param(
                3,
                "QG_ParamInt",
                "Colour",
                name="color",
                value=1582651,
                min=0,
                max=16777215,
                step=1,
                description="Fill colour as 0xRRGGBB.",
            ),
            Node(
                4,
                "EmptyImage",
                "Canvas",
                "Generation",
                {"width": 512, "height": 512, "batch_size": 1, "color": 0},
                {"width": (1, 0), "height": (2, 0), "color": (3, 0)},
            ),
            param(
                5,
                "QG_ParamFloat",
                "Scale",
                name="scale",
                value=1.0,
                min=0.25,
                max=4.0,
                step=0.25,
                description="Resize factor.",
            ),
            param(
                6,
                "QG_ParamChoice",
                "Method",
                name="method",
                value="bilinear",
                choices="nearest-exact\nbilinear\narea\nbicubic\nlanczos",
                description="Resampling method.",
            ),
            Node(
                7,
                "ImageScaleBy",
                "Resize",
                "Post-processing",
                {"upscale_method": "bilinear", "scale_by": 1.0},
                {"image": (4, 0), "upscale_method": (6, 0), "scale_by": (5, 0)},
            ),
            param(
                8,
                "QG_ParamBool",
                "Save?",
                name="save",
                value=True,
                description="false = skip saving (the run still succeeds).",
            ),
            Node(
                9,
                "QG_Gate",
                "Save gate",
                "Post-processing",
                {"open": True, "on_closed": "block"},
                {"value": (7, 0), "open": (8, 0)},
            ),
            param(
                10,
                "QG_ParamText",
                "Prefix",
                name="prefix",
                value="qg_template",
                description="File name prefix of the saved image.",
            ),
            Node(
                11,
                "SaveImage",
                "image",
                "Post-processing",
                {"filename_prefix": "ComfyUI"},
                {"images": (9, 0), "filename_prefix": (10, 0)},
            ),
        ],
        title="Solid colour image",
        description="A solid-colour image, resized and saved: a model-free demo of every parameter type but the seed.",
    )


EXAMPLES = (
    hires_fix_quality_gate,
    retry_until_quality,
    sdxl_refiner_best_of_n,
    best_of_n_saved_with_scores,
    model_by_subject,
    template_batch_txt2img,
    technical_score_no_weights,
    logic_switch_gate,
    template_solid_image,
)


# --- writing both formats -------------------------------------------------------------------------------------


def api(example: Example) -> dict:
    """The API-format prompt the frontend's graphToPrompt makes of the UI file: every widget's value, then links.
    (Frontend 1.32.9 also sends ``"preview": ""`` for PreviewAny, its own display widget, which the server ignores;
    1.58.1 does not. The twins hold the node's declared inputs only.)"""
    prompt = {}
    for node in example.nodes:
        inputs, _ = spec(node.type)
        values = {}
        for slot in inputs:
            if slot.name in node.links:
                source, index = node.links[slot.name]
                values[slot.name] = [str(source), index]
            elif slot.widget:
                values[slot.name] = node.widgets[slot.name]
        prompt[str(node.id)] = {"class_type": node.type, "_meta": {"title": node.title}, "inputs": values}
    return prompt


def _check(example: Example) -> None:
    ids = [node.id for node in example.nodes]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{example.name}: duplicate node ids")
    by_id = {node.id: node for node in example.nodes}
    for node in example.nodes:
        inputs, _ = spec(node.type)
        widgets = [slot.name for slot in inputs if slot.widget]
        if sorted(node.widgets) != sorted(widgets):
            raise ValueError(f"{example.name} #{node.id} {node.type}: widgets {sorted(node.widgets)} != {widgets}")
        names = {slot.name for slot in inputs}
        for name, (source, index) in node.links.items():
            if name not in names:
                raise ValueError(f"{example.name} #{node.id}: {node.type} has no input {name}")
            if index >= len(spec(by_id[source].type)[1]):
                raise ValueError(f"{example.name} #{node.id}.{name}: #{source} has no output {index}")
        if node.group not in GROUPS:
            raise ValueError(f"{example.name} #{node.id}: unknown group {node.group}")


def _order(example: Example) -> dict:
    """Execution order index per node id (a topological order, as LiteGraph stores it)."""
    done: dict = {}
    by_id = {node.id: node for node in example.nodes}

    def visit(node):
        if node.id not in done:
            for source, _ in node.links.values():
                visit(by_id[source])
            done[node.id] = len(done)

    for node in example.nodes:
        visit(node)
    return done


def _size(node: Node, slots: int, widgets: list) -> list:
    width = 400 if any(w.type == "STRING" and node.type in MULTILINE for w in widgets) else 320
    height = 30 + 22 * slots + sum(110 if w.type == "STRING" and node.type in MULTILINE else 26 for w in widgets)
    return [width, max(height, 60) + SHOWS_AFTER_RUN.get(node.type, 0)]


COLUMN_HEIGHT = 900  # px of nodes per column inside a group before it wraps
# Room for what a node draws once it has run (an image, text, the pack's score lines and loop chart), so that
# nodes below it are not covered.
SHOWS_AFTER_RUN = {
    "SaveImage": 240,
    "PreviewImage": 240,
    "PreviewAny": 110,
    "QG_RetryEnd": 90,
    "QG_AestheticScore": 60,
    "QG_PromptAdherence": 60,
    "QG_PreferenceScore": 60,
    "QG_TechnicalScore": 60,
    "QG_CombineScores": 60,
    "QG_SaveImageWithScores": 240,
}
MULTILINE = {
    "CLIPTextEncode",
    "PrimitiveStringMultiline",
    "QG_ZeroShotClassify",
    "QG_ParamChoice",
    "QG_PromptAdherence",
    "QG_PreferenceScore",
}


def ui(example: Example) -> dict:
    """The LiteGraph 0.4 workflow: nodes laid out in one column per group, links, labelled groups."""
    order = _order(example)
    links, node_inputs, node_outputs = [], {}, {}
    for node in example.nodes:  # inputs: every socket (Select: the connected ones and one free), then wired widgets
        inputs, outputs = spec(node.type)
        sockets = [slot for slot in inputs if not slot.widget]
        if node.type == "QG_Select":
            last = max(int(name.split("_")[1]) for name in node.links if name.startswith("input_"))
            sockets = [s for s in sockets if int(s.name.split("_")[1]) <= last + 1]
        wired = [slot for slot in inputs if slot.widget and slot.name in node.links]
        node_inputs[node.id] = [
            {"name": s.name, "type": s.type, "link": None}
            if not s.widget
            else {"name": s.name, "type": s.type, "widget": {"name": s.name}, "link": None}
            for s in sockets + wired
        ]
        node_outputs[node.id] = [
            {"name": name, "type": kind, "slot_index": i, "links": []} for i, (name, kind) in enumerate(outputs)
        ]
    for node in example.nodes:
        for target_slot, entry in enumerate(node_inputs[node.id]):
            if entry["name"] not in node.links:
                continue
            source, index = node.links[entry["name"]]
            link_id = len(links) + 1
            kind = node_outputs[source][index]["type"]
            links.append([link_id, source, index, node.id, target_slot, kind])
            entry["link"] = link_id
            node_outputs[source][index]["links"].append(link_id)

    nodes, groups, x = [], [], 0
    for group_id, (group, color) in enumerate(
        (g for g in GROUPS.items() if any(n.group == g[0] for n in example.nodes)), 1
    ):
        members = [node for node in example.nodes if node.group == group]
        column_x, y, width, bottom = x, 0, 0, 0
        for node in members:
            inputs, outputs = spec(node.type)
            widgets = [slot for slot in inputs if slot.widget]
            size = _size(node, max(len(node_inputs[node.id]), len(outputs)), widgets)
            if y and y + size[1] > COLUMN_HEIGHT:  # a long group wraps into a second column
                column_x, y = column_x + width + 40, 0
            values = []
            for slot in widgets:
                values.append(node.widgets[slot.name])
                if slot.control:
                    values.append(CONTROL)
            nodes.append(
                {
                    "id": node.id,
                    "type": node.type,
                    "pos": [column_x + 10, y + 75],  # below the group title and the node's own title bar
                    "size": size,
                    "flags": {},
                    "order": order[node.id],
                    "mode": 0,
                    "inputs": node_inputs[node.id],
                    "outputs": [{**o, "links": o["links"] or None} for o in node_outputs[node.id]],
                    "title": node.title,
                    "properties": {"Node name for S&R": node.type},
                    "widgets_values": values,
                }
            )
            y += size[1] + 60
            width = max(width, size[0])
            bottom = max(bottom, y)
        right = column_x + width + 20
        groups.append(
            {
                "id": group_id,
                "title": group,
                "bounding": [x, 0, right - x, bottom + 35],
                "color": color,
                "font_size": 24,
                "flags": {},
            }
        )
        x = right + 40
    nodes.sort(key=lambda n: n["id"])
    return {
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"quality_gate/example_workflows/{example.name}")),
        "revision": 0,
        "last_node_id": max(node.id for node in example.nodes),
        "last_link_id": len(links),
        "nodes": nodes,
        "links": links,
        "groups": groups,
        "config": {},
        "extra": {"ds": {"scale": 0.65, "offset": [120, 220]}},
        "version": 0.4,
    }


def dump(data) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def build() -> dict:
    """Every file this generator writes: {path relative to the pack root: text}."""
    files = {}
    for make in EXAMPLES:
        example = make()
        _check(example)
        prompt = api(example)
        files[f"{EXAMPLES_DIR}/{example.name}.json"] = dump(ui(example))
        files[f"{EXAMPLES_DIR}/api/{example.name}.json"] = dump(prompt)
        if example.title:
            template = {"title": example.title, "description": example.description, "workflow": prompt}
            files[f"{TEMPLATES_DIR}/{example.name}.json"] = dump(template)
    return files


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 when a file differs")
    args = parser.parse_args()
    stale = []
    for relative, text in build().items():
        path = ROOT / relative
        if path.is_file() and path.read_text(encoding="utf-8") == text:
            continue
        stale.append(relative)
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    verb = "differ from the generator" if args.check else "written"
    print(f"{len(stale)} file(s) {verb}" + "".join(f"\n  {p}" for p in stale))
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
