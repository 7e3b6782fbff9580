"""A small random-weight SD1.5 checkpoint, so the example workflows run for real (sampling, VAE decode, upscale)
without downloading any weights. Recipe: design.md §6.

UNet from ComfyUI's own ``UNetModel`` (model_channels 320, one level, one res block, one transformer block,
context_dim 768, 8 heads), a randomly initialised CLIP-L text encoder (``comfy.sd1_clip.SDClipModel``) and the SD
VAE (``AutoencoderKL``, ComfyUI's ``AutoencodingEngine`` with the standard SD ddconfig), saved in fp16 under the
usual prefixes, so the core ``CheckpointLoaderSimple`` detects it as SD15. Built once with a fixed seed and cached
in ``.qg-cache/`` (git-ignored) under a name keyed by ``RECIPE``; bump ``RECIPE`` when the recipe changes.

Imports ComfyUI, so it runs with ComfyUI on ``sys.path``, in the provisioned venv:
``.venv/bin/python dev/random_checkpoint.py`` prints the cached file's path (building it first if needed).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".qg-cache"
RECIPE = "v1"
FILE_NAME = f"qg_random_sd15_{RECIPE}.safetensors"
SEED = 20251125

UNET = {
    "image_size": 32,
    "in_channels": 4,
    "out_channels": 4,
    "model_channels": 320,
    "num_res_blocks": [1],
    "channel_mult": [1],
    "transformer_depth": [1],
    "transformer_depth_output": [1, 1],
    "transformer_depth_middle": 1,
    "context_dim": 768,
    "num_heads": 8,
    "num_head_channels": -1,
    "use_spatial_transformer": True,
    "use_linear_in_transformer": False,
    "legacy": False,
}
VAE_DDCONFIG = {
    "double_z": True,
    "z_channels": 4,
    "resolution": 256,
    "in_channels": 3,
    "out_ch": 3,
    "ch": 128,
    "ch_mult": [1, 2, 4, 4],
    "num_res_blocks": 2,
    "attn_resolutions": [],
    "dropout": 0.0,
}


def _comfy_on_path() -> None:
    sys.path.insert(0, str(ROOT / "dev"))
    from harness import comfy_dir

    path = str(comfy_dir())
    if path not in sys.path:
        sys.path.insert(0, path)


def _init_like_torch(model) -> None:
    """ComfyUI's layers skip weight initialisation (they expect a checkpoint): give every layer torch's own
    default random initialisation instead."""
    import torch

    for module in model.modules():
        for cls in type(module).__mro__:
            if cls.__module__.startswith("torch.nn.modules") and "reset_parameters" in cls.__dict__:
                cls.reset_parameters(module)
                break
    for name, param in model.named_parameters():
        if not torch.isfinite(param).all():
            raise RuntimeError(f"random checkpoint: {name} is not initialised")


def build(path: Path) -> None:
    """Build the checkpoint into ``path`` (written to a temporary name first, then renamed)."""
    _comfy_on_path()
    from comfy.cli_args import args

    args.cpu = True  # before comfy.model_management is imported: it probes for a GPU on import
    import comfy.ops
    import comfy.sd1_clip
    import torch
    from comfy.ldm.models.autoencoder import AutoencoderKL
    from comfy.ldm.modules.diffusionmodules.openaimodel import UNetModel
    from safetensors.torch import save_file

    torch.manual_seed(SEED)
    parts = {
        "model.diffusion_model.": UNetModel(**UNET, operations=comfy.ops.disable_weight_init),
        "cond_stage_model.": comfy.sd1_clip.SDClipModel(device="cpu", dtype=torch.float32),
        "first_stage_model.": AutoencoderKL(embed_dim=4, ddconfig=VAE_DDCONFIG),
    }
    tensors = {}
    for prefix, model in parts.items():
        _init_like_torch(model)
        for key, value in model.state_dict().items():
            tensors[prefix + key] = value.to(torch.float16).contiguous()
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    save_file(tensors, str(partial), metadata={"quality_gate": f"random-weight SD15 test checkpoint {RECIPE}"})
    partial.replace(path)


def checkpoint(log=print) -> Path:
    """The cached checkpoint, built first if it is not there yet (``log`` says so and how long it took)."""
    path = CACHE / FILE_NAME
    if not path.is_file():
        log(f"building the random-weight SD15 checkpoint (first run only) into {path} ...")
        start = time.perf_counter()
        build(path)
        size = path.stat().st_size / 1e6
        log(f"built {path.name} in {time.perf_counter() - start:.1f} s ({size:.0f} MB)")
    return path


def install(model_dir: Path, name: str = FILE_NAME, log=print) -> Path:
    """Link the cached checkpoint into a checkpoints folder under ``name`` (a symlink; replaced if stale)."""
    target = checkpoint(log)
    link = Path(model_dir) / name
    if link.is_symlink() or link.exists():
        if link.resolve() == target.resolve():
            return link
        link.unlink()
    link.symlink_to(target)
    return link


if __name__ == "__main__":
    print(checkpoint())
