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
