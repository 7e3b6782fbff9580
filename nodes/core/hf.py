"""Scorer models in Hugging Face folders (``models/clip_scorers/<name>/config.json``): PickScore and other CLIP
models (``CLIPModel``: image and text towers), CLIP vision towers with a projection, and SigLIP vision towers
(Aesthetic Predictor v2.5's encoder). Loaded with ``transformers`` from the folder only (``local_files_only``,
safetensors only: never a download, never a pickle).

Nothing here imports ComfyUI; ``nodes/judges.py`` puts the model under ComfyUI's model management.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from .errors import QGError
from .score import LOGIT_SCALE, OPENAI_MEAN, OPENAI_STD, describe_bad_start, read_json_object, require_open_clip

SIGLIP_MEAN = SIGLIP_STD = (0.5, 0.5, 0.5)
TOKENIZER_FILES = ("tokenizer.json", "vocab.json")
CLIP_VOCAB = 49408  # OpenAI CLIP's BPE, which open_clip's tokenizer holds too
# model_type in config.json: (family, the transformers class, the family's own crop)
KINDS = {
    "clip": ("hf_clip", "CLIPModel", "center"),
    "clip_vision_model": ("hf_clip", "CLIPVisionModelWithProjection", "center"),
    "siglip": ("siglip", "SiglipVisionModel", "squash"),
    "siglip_vision_model": ("siglip", "SiglipVisionModel", "squash"),
}


def model_type(folder: Path) -> str:
    """The folder's ``config.json`` ``model_type``, checked against the kinds this pack can score with."""
    config = read_json_object(folder / "config.json", "the model folder's config")
    kind = config.get("model_type")
    if kind not in KINDS:
        raise QGError(
            f"{folder.name}/config.json has model_type {kind!r}; supported: {', '.join(KINDS)} (PickScore and "
            "other CLIP models, SigLIP for Aesthetic Predictor v2.5)"
        )
    return kind


def _check_weights(folder: Path) -> None:
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        pickles = [p.name for p in folder.glob("*.bin")]
        also = f" (found {', '.join(pickles)}: pickles are not loaded; convert them to safetensors)" if pickles else ""
        raise QGError(f"{folder.name} has no model.safetensors{also}")
    for path in files:
        with path.open("rb") as f:
            bad = describe_bad_start(f.read(256))
        if bad:
            raise QGError(f"{folder.name}/{path.name} is {bad}, not model weights")


@dataclass
class HFModel:
    """A loaded folder: the module (CPU, fp32, eval) and how to use it."""

    model: torch.nn.Module
    family: str
    kind: str
    image_size: int
    embed_dim: int
    mean: tuple
    std: tuple
    crop: str
    logit_scale: float
    tokenizer: object = None  # texts -> [N, L] token ids; None for a vision-only model

    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        """Embeddings of normalised pixels, as each model's ``get_image_features`` / pooled output gives them."""
        if self.family == "siglip":
            return self.model(pixel_values=pixels).pooler_output
        vision = self.model.vision_model(pixel_values=pixels).pooler_output
        return self.model.visual_projection(vision)

    def encode_texts(self, ids: torch.Tensor) -> torch.Tensor:
        return self.model.text_projection(self.model.text_model(input_ids=ids).pooler_output)


def _tokenizer(folder: Path, config, context: int):
    """The folder's own tokenizer files when it has them, else open_clip's CLIP tokenizer (the same BPE as
    OpenAI's and LAION's CLIP: PickScore's folder ships no tokenizer of its own). Token ids padded to
    ``context``: the text tower pools at the first end-of-text token, so the padding id does not matter."""
    if any((folder / name).is_file() for name in TOKENIZER_FILES):
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        return lambda texts: tok(texts, padding="max_length", truncation=True, max_length=context, return_tensors="pt")[
            "input_ids"
        ]
    if config.text_config.vocab_size != CLIP_VOCAB:
        raise QGError(
            f"{folder.name} has no tokenizer files ({' or '.join(TOKENIZER_FILES)}) and its vocabulary "
            f"({config.text_config.vocab_size}) is not CLIP's: copy the tokenizer files next to config.json"
        )
    from open_clip.tokenizer import SimpleTokenizer

    require_open_clip()
    return SimpleTokenizer(context_length=context)


def load_hf(folder: str | Path) -> HFModel:
    """Load a scorer folder with ``transformers`` (CPU, fp32, eval). Errors name the folder and the file."""
    folder = Path(folder)
    kind = model_type(folder)
    family, class_name, crop = KINDS[kind]
    _check_weights(folder)
    try:
        import transformers
    except ImportError as e:
        raise QGError(f"Hugging Face scorer folders need the transformers package ({e})") from e
    cls = getattr(transformers, class_name)
    from safetensors import SafetensorError

    try:
        model = cls.from_pretrained(str(folder), local_files_only=True, use_safetensors=True)
    except (OSError, ValueError, RuntimeError, KeyError, SafetensorError) as e:
        raise QGError(f"{folder.name} could not be loaded as {class_name}: {str(e)[:600]}") from e
    model = model.eval().requires_grad_(False)
    config = model.config
    vision = getattr(config, "vision_config", config)
    processor = folder / "preprocessor_config.json"
    pre = read_json_object(processor, "the image processor config") if processor.is_file() else {}
    mean, std = (SIGLIP_MEAN, SIGLIP_STD) if family == "siglip" else (OPENAI_MEAN, OPENAI_STD)
    embed_dim = config.projection_dim if family == "hf_clip" else vision.hidden_size
    tokenizer, scale = None, LOGIT_SCALE
    if class_name == "CLIPModel":  # the one kind with a text tower
        tokenizer = _tokenizer(folder, config, config.text_config.max_position_embeddings)
        scale = float(model.logit_scale.exp())
    return HFModel(
        model=model,
        family=family,
        kind=f"{kind} ({class_name})",
        image_size=int(vision.image_size),
        embed_dim=int(embed_dim),
        mean=tuple(pre.get("image_mean") or mean),
        std=tuple(pre.get("image_std") or std),
        crop=crop,
        logit_scale=scale,
        tokenizer=tokenizer,
    )
