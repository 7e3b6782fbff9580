"""Small random-weight open_clip models and aesthetic heads for the scoring tests, built by the tests themselves
(no downloads), plus an independent reference computation with open_clip's own preprocessing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import open_clip
import torch
from open_clip.model import CLIP
from PIL import Image
from safetensors.torch import save_file

LAION = Path(__file__).resolve().parent / "fixtures" / "laion"  # vendored real data, see its README.md
V2_HEAD = "sac+logos+ava1-l14-linearMSE.pth"
V1_HEAD = "sa_0_4_vit_l_14_linear.pth"
PHOTOS = ("cat_aesthetic.png", "cat_normal.png")


def tiny_config(embed_dim: int = 768, image_size: int = 224) -> dict:
    """An open_clip CLIP config small enough to build in a second, with the embedding width the real heads use."""
    return {
        "embed_dim": embed_dim,
        "quick_gelu": True,
        "vision_cfg": {"image_size": image_size, "layers": 2, "width": 128, "patch_size": 16, "head_width": 64},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 128, "heads": 2, "layers": 2},
    }


def build_clip(config: dict, seed: int = 0) -> CLIP:
    torch.manual_seed(seed)
    return CLIP(**config).eval()


def save_clip(folder: Path, name: str, config: dict, seed: int = 0) -> tuple[Path, CLIP]:
    """``<name>.safetensors`` with the sidecar ``<name>.json`` config next to it, as users put them."""
    folder.mkdir(parents=True, exist_ok=True)
    model = build_clip(config, seed)
    path = folder / f"{name}.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    (folder / f"{name}.json").write_text(json.dumps(config))
    return path, model


def pil_image(path: Path) -> Image.Image:
    return Image.open(path).convert("RGB")


def reference_embeddings(model: CLIP, images: list[Image.Image]) -> torch.Tensor:
    """open_clip's reference path: its own PIL transform, encode_image, L2 normalisation."""
    size = model.visual.image_size
    transform = open_clip.image_transform(size[0] if isinstance(size, tuple) else size, is_train=False)
    with torch.no_grad():
        batch = torch.stack([transform(img) for img in images])
        return torch.nn.functional.normalize(model.encode_image(batch), dim=-1)


def reference_text(model: CLIP, texts: list[str]) -> torch.Tensor:
    tokenizer = open_clip.tokenizer.SimpleTokenizer()
    with torch.no_grad():
        return torch.nn.functional.normalize(model.encode_text(tokenizer(texts)), dim=-1)


def reference_head(path: Path, embeddings: torch.Tensor) -> list[float]:
    """Apply a head file layer by layer, as its original module does (no folding): LAION v2 linear layers
    (dropout is off at eval, no activations), or a bare v1 ``weight``/``bias``."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    x = embeddings.double()
    if "weight" in state:
        return (x @ state["weight"].double().T + state["bias"].double())[:, 0].tolist()
    for i in sorted({int(k.split(".")[1]) for k in state}):
        x = x @ state[f"layers.{i}.weight"].double().T + state[f"layers.{i}.bias"].double()
    return x[:, 0].tolist()


def image_tensor(img: Image.Image) -> torch.Tensor:
    """A ComfyUI IMAGE batch of one, as LoadImage makes it."""
    return torch.from_numpy(np.asarray(img).astype(np.float32) / 255.0)[None]


def save_v1_head(path: Path, weight: torch.Tensor, bias: float = 0.0) -> Path:
    """A LAION v1-format head (bare ``weight`` [1, D] and ``bias`` [1])."""
    torch.save({"weight": weight.reshape(1, -1).float(), "bias": torch.tensor([bias])}, path)
    return path


# ---------------------------------------------------------------- the newer judges' models, in their published layouts


def tiny_h14_config() -> dict:
    """An open_clip config in ViT-H-14's style (GELU, not quickgelu; 14 px patches; text width above vision's
    projection) at a size that builds in a second: HPSv2's fine-tune in miniature."""
    return {
        "embed_dim": 64,
        "vision_cfg": {"image_size": 224, "layers": 2, "width": 96, "head_width": 48, "patch_size": 14},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 80, "heads": 2, "layers": 2},
    }


def save_hps(folder: Path, name: str, seed: int = 0) -> tuple[Path, CLIP]:
    """``<name>.pt`` holding ``{"state_dict": ...}`` (with the ``module.`` prefix of a DDP-trained checkpoint)
    as HPSv2's releases do, with its open_clip config as the sidecar ``<name>.json``."""
    folder.mkdir(parents=True, exist_ok=True)
    config = tiny_h14_config()
    model = build_clip(config, seed)
    path = folder / f"{name}.pt"
    torch.save({"state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}}, path)
    (folder / f"{name}.json").write_text(json.dumps(config))
    return path, model


def hf_clip_config(projection_dim: int = 48):
    from transformers import CLIPConfig

    layers = {"intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 2, "hidden_size": 64}
    return CLIPConfig(
        text_config={**layers, "vocab_size": 49408, "max_position_embeddings": 77},
        vision_config={**layers, "image_size": 224, "patch_size": 32},
        projection_dim=projection_dim,
        logit_scale_init_value=4.6052,  # exp = 100, PickScore's trained value
    )


def save_hf_clip(folder: Path, seed: int = 0):
    """A PickScore-shaped folder (``CLIPModel.save_pretrained``: config.json and model.safetensors; like
    PickScore_v1 it has no tokenizer files)."""
    from transformers import CLIPModel

    torch.manual_seed(seed)
    model = CLIPModel(hf_clip_config()).eval()
    model.save_pretrained(str(folder))
    return model


def save_siglip(folder: Path, seed: int = 0, image_size: int = 384):
    """A SigLIP vision tower in so400m-patch14-384's layout (14 px patches at 384 px), small."""
    from transformers import SiglipVisionConfig, SiglipVisionModel

    torch.manual_seed(seed)
    config = SiglipVisionConfig(
        hidden_size=48,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=image_size,
        patch_size=14,
    )
    model = SiglipVisionModel(config).eval()
    model.save_pretrained(str(folder))
    return model


def save_v2_5_head(path: Path, width: int, seed: int = 0) -> Path:
    """Aesthetic Predictor v2.5's head layout: ``scoring_head`` = Linear, Dropout, ... five Linears ending in 1."""
    torch.manual_seed(seed)
    sizes = (width, 1024, 128, 64, 16, 1)
    state = {}
    for n, (a, b) in enumerate(zip(sizes, sizes[1:], strict=False)):
        layer = torch.nn.Linear(a, b)
        state[f"scoring_head.{2 * n}.weight"] = layer.weight.detach() * 3
        state[f"scoring_head.{2 * n}.bias"] = layer.bias.detach()
    torch.save(state, path)
    return path


def _features(output) -> torch.Tensor:
    """``get_*_features`` return a tensor in transformers 4 and an output whose pooler_output is it in 5."""
    return output if isinstance(output, torch.Tensor) else output.pooler_output


def reference_pickscore(model, images: list[Image.Image], prompt: str) -> tuple[list[float], list[float]]:
    """PickScore's published computation: the CLIP processor (resize, center crop, normalise), the model's
    image and text features, L2-normalised, ``logit_scale.exp() * text @ image.T``; and its softmax over the
    images. Tokens from CLIP's BPE (open_clip's copy, the folder has no tokenizer files)."""
    from transformers import CLIPImageProcessor

    with torch.no_grad():
        pixels = CLIPImageProcessor()(images=images, return_tensors="pt")["pixel_values"]
        image = torch.nn.functional.normalize(_features(model.get_image_features(pixel_values=pixels)), dim=-1)
        ids = open_clip.tokenizer.SimpleTokenizer()([prompt])
        text = torch.nn.functional.normalize(_features(model.get_text_features(input_ids=ids)), dim=-1)
        scores = model.logit_scale.exp() * (text @ image.T)[0]
        return scores.tolist(), scores.softmax(dim=-1).tolist()


def reference_hps(model: CLIP, images: list[Image.Image], prompt: str) -> list[float]:
    """HPSv2's published computation: open_clip's eval transform, the diagonal of normalised image features
    times normalised prompt features (one prompt for every image)."""
    image = reference_embeddings(model, images)
    text = reference_text(model, [prompt])
    return (image @ text.T)[:, 0].tolist()


def reference_clip_iqa(image: torch.Tensor, text: torch.Tensor) -> list[float]:
    """CLIP-IQA from normalised embeddings: ``text`` rows are (positive, negative) per pair; per pair the
    softmax of 100 * cosine, the positive's probability, averaged over pairs."""
    logits = 100 * image.double() @ text.double().T  # [N, 2P]
    probs = logits.view(image.shape[0], -1, 2).softmax(dim=-1)[..., 0]
    return probs.mean(dim=-1).tolist()


def reference_v2_5(model, head: Path, images: list[Image.Image]) -> list[float]:
    """Aesthetic Predictor v2.5's published computation: SigLIP's processor (squash to the model size,
    normalise by 0.5), the pooled output, L2-normalised, through the head's Linear layers (dropout off)."""
    from transformers import SiglipImageProcessor

    size = model.config.image_size
    with torch.no_grad():
        processor = SiglipImageProcessor(size={"height": size, "width": size})
        pixels = processor(images=images, return_tensors="pt")["pixel_values"]
        x = torch.nn.functional.normalize(model(pixel_values=pixels).pooler_output, dim=-1).double()
        state = torch.load(head, map_location="cpu", weights_only=True)
        for i in sorted({int(k.split(".")[1]) for k in state}):
            x = x @ state[f"scoring_head.{i}.weight"].double().T + state[f"scoring_head.{i}.bias"].double()
        return x[:, 0].tolist()
