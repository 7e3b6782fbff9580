"""Plain logic of the scoring nodes: weight files, aesthetic heads, open_clip encoders, tensor preprocessing
and the scorer that turns a batch of images into embeddings, aesthetic scores, CLIP scores and zero-shot labels.

Nothing here imports ComfyUI: the node adapters (``nodes/score.py``) own model management and folders, and hand
the scorer a ``run`` callable that moves a model onto ComfyUI's device. ``open_clip`` is imported only where an
encoder is built, so the rest of the pack works without it.

Head formats (see ``tests/fixtures/laion/README.md``), detected from key names and shapes:
- LAION v2 linear (``layers.{0,2,4,6,7}``: Linear layers with Dropout between and no activation): folded exactly
  into one affine map at load. Any other activation-free ``layers.N`` chain is folded the same way.
- LAION v2 ReLU (``layers.{0,3,6,9,11}``: ReLU after each of the first four Linears): kept as an MLP.
- LAION v1 (bare ``weight`` [1, D] and ``bias``): a linear map of any width D.
- simulacra (``linear.weight`` / ``linear.bias``): the normalised embedding is multiplied by sqrt(D) first.
- Aesthetic Predictor v2.5 (``scoring_head.{0,2,4,6,8}``, Linear layers with Dropout between, on SigLIP
  so400m's 1152-wide pooled embedding): folded like LAION v2 linear; its scores run 1..10.
Every head takes the L2-normalised image embedding.
"""

from __future__ import annotations

import json
import math
import pickle
import weakref
import zipfile
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
import torch.nn.functional as F

from .errors import QGError
from .ranking import json_number
from .technical import check_image, non_finite, rgb_images

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
DEFAULT_ARCHITECTURE = "ViT-L-14-quickgelu"
CROPS = ("auto", "center", "pad", "multi", "squash")  # auto: the scorer's own preprocessing
PRECISIONS = ("auto", "fp32", "fp16", "bf16")
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
ROUNDER = 1.5 * 2**23  # float32 v + ROUNDER, 0 <= v <= 255: v rounded to a whole number (half to even), held
# in the low byte of the float's bits (floats near 2**23 are one apart)
BAND_BYTES = 3 << 19  # rows converted at a time (1.5 MB of floats): the scratch stays in a core's L2 cache
CHUNK = 16  # images encoded at a time: bounds memory for any batch size (smaller batches cost the CPU ~5 %)
TEXT_CACHE = 256  # prompts whose embeddings a scorer keeps
LOGIT_SCALE = 100.0  # CLIP's trained temperature, used for zero-shot probabilities
RELU_LAYOUT = (0, 3, 6, 9, 11)
V2_5_WIDTH = 1152  # SigLIP so400m's embedding, the one Aesthetic Predictor v2.5's head was trained on
EMBEDDING_CACHE = 4  # image batches whose embeddings a scorer keeps (judges of one batch share one encode)
LFS_MAGIC = b"version https://git-lfs"


# ---------------------------------------------------------------- weight files


def file_signature(path: str | Path) -> tuple:
    """What identifies a file's content cheaply: a change means the file must be loaded again."""
    stat = Path(path).stat()
    return (str(path), stat.st_size, stat.st_mtime_ns)


def describe_bad_start(head: bytes) -> str | None:
    text = head.lstrip()[:64].lower()
    if head.startswith(LFS_MAGIC):
        return "a Git LFS pointer (the repository was cloned without git-lfs; download the real file)"
    if text.startswith((b"<!doctype", b"<html", b"<?xml", b"<head", b"<body")):
        return "an HTML page (a web page was saved instead of the file: use the raw download link)"
    if text.startswith((b"{", b"[")):
        return "JSON text, not weights"
    return None


def load_weights(path: str | Path, what: str) -> dict:
    """A state dict from a ``.safetensors`` file or a torch file loaded with ``weights_only=True`` on the CPU.

    Missing, empty, truncated, HTML and Git-LFS-pointer files raise ``QGError`` naming the file and what was
    expected (``what``, e.g. "an aesthetic head")."""
    path = Path(path)
    if not path.is_file():
        raise QGError(f"{what} file {path} does not exist")
    size = path.stat().st_size
    if size == 0:
        raise QGError(f"{what} file {path.name} is empty (0 bytes); download it again")
    with path.open("rb") as f:
        head = f.read(256)
    bad = describe_bad_start(head)
    if bad:
        raise QGError(f"{what} file {path.name} is {bad}, not {what} weights")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path), device="cpu")
        else:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError, zipfile.BadZipFile) as e:
        hint, detail = "truncated or corrupt (download it again)", f" ({e})"
        if "Weights only load failed" in str(e):  # torch's text goes on to suggest the unsafe way: leave it out
            hint, detail = "like a pickle of Python objects, not plain tensors; refused for safety (weights_only)", ""
        elif "TorchScript" in str(e) or "constants.pkl" in str(e):
            hint = "like a TorchScript archive, which cannot be loaded safely; use the state-dict (.safetensors) file"
        raise QGError(f"{what} file {path.name} ({size} bytes) could not be read: it looks {hint}.{detail}") from e
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise QGError(f"{what} file {path.name} holds no state dict of tensors (found {type(state).__name__})")
    return {k.removeprefix("module."): v for k, v in state.items()}


# ---------------------------------------------------------------- aesthetic heads


@dataclass
class Head:
    """An aesthetic head over L2-normalised embeddings: ``affine`` (weight [D], bias) or an ``mlp``."""

    kind: str
    width: int
    name: str = ""
    weight: torch.Tensor | None = None
    bias: float = 0.0
    scale: float = 1.0
    mlp: torch.nn.Module | None = None

    def __call__(self, embeddings: torch.Tensor) -> torch.Tensor:
        x = embeddings.float().cpu() * self.scale
        if self.mlp is not None:
            return self.mlp(x).reshape(-1)
        return x @ self.weight + self.bias


def _linear_layers(state: dict, prefix: str) -> list[tuple[int, torch.Tensor, torch.Tensor]]:
    indices = sorted(
        {int(k[len(prefix) :].split(".")[0]) for k in state if k.startswith(prefix) and k.endswith(".weight")}
    )
    layers = []
    for i in indices:
        w, b = state.get(f"{prefix}{i}.weight"), state.get(f"{prefix}{i}.bias")
        if w is None or b is None or w.ndim != 2:
            raise QGError(f"layer {prefix}{i} is not a Linear layer (weight [out, in] and bias expected)")
        layers.append((i, w.double(), b.double()))
    for (i, w, _), (j, w2, _) in zip(layers, layers[1:], strict=False):
        if w2.shape[1] != w.shape[0]:
            raise QGError(f"layers {prefix}{i} (out {w.shape[0]}) and {prefix}{j} (in {w2.shape[1]}) do not chain")
    if layers[-1][1].shape[0] != 1:
        raise QGError(f"the last layer {prefix}{layers[-1][0]} has {layers[-1][1].shape[0]} outputs, expected 1")
    return layers


def _fold(layers) -> tuple[torch.Tensor, float]:
    """Compose activation-free Linear layers into one affine map (exact, in float64)."""
    weight, bias = None, None
    for _, w, b in layers:
        weight = w if weight is None else w @ weight
        bias = b if bias is None else w @ bias + b
    return weight[0].float(), float(bias[0])


def _relu_mlp(layers) -> torch.nn.Module:
    modules = []
    for n, (_, w, b) in enumerate(layers):
        linear = torch.nn.Linear(w.shape[1], w.shape[0])
        linear.weight.data, linear.bias.data = w.float(), b.float()
        modules.append(linear)
        if n < len(layers) - 1:
            modules.append(torch.nn.ReLU())
    return torch.nn.Sequential(*modules).eval().requires_grad_(False)


def head_from_state_dict(state: dict, name: str = "") -> Head:
    """Recognise a head format from its keys and shapes (module docstring) and build it."""
    keys = set(state)
    if any(k.startswith("scoring_head.") for k in keys):
        weight, bias = _fold(_linear_layers(state, "scoring_head."))
        kind = "aesthetic_v2_5" if weight.shape[0] == V2_5_WIDTH else "aesthetic_v2_5_layout"
        return Head(kind, weight.shape[0], name, weight=weight, bias=bias)
    if any(k.startswith("layers.") for k in keys):
        layers = _linear_layers(state, "layers.")
        width = layers[0][1].shape[1]
        if tuple(i for i, _, _ in layers) == RELU_LAYOUT:
            return Head("laion_v2_relu", width, name, mlp=_relu_mlp(layers))
        weight, bias = _fold(layers)
        kind = "laion_v2_linear" if len(layers) > 1 else "linear"
        return Head(kind, width, name, weight=weight, bias=bias)
    for prefix, kind in (("", "laion_v1"), ("linear.", "simulacra")):
        w, b = state.get(f"{prefix}weight"), state.get(f"{prefix}bias")
        if w is not None and b is not None and keys == {f"{prefix}weight", f"{prefix}bias"}:
            if w.ndim != 2 or w.shape[0] != 1 or b.numel() != 1:
                raise QGError(f"{kind} head weight has shape {list(w.shape)}, expected [1, width]")
            width = w.shape[1]
            scale = math.sqrt(width) if kind == "simulacra" else 1.0
            return Head(kind, width, name, weight=w[0].float(), bias=float(b.reshape(-1)[0]), scale=scale)
    shown = ", ".join(sorted(keys)[:6])
    raise QGError(
        f"{name or 'the file'} is not an aesthetic head this pack knows: keys {shown}; expected LAION v2 "
        "(layers.N.weight/bias), LAION v1 (weight, bias), simulacra (linear.weight, linear.bias) or Aesthetic "
        "Predictor v2.5 (scoring_head.N.weight/bias)"
    )


def load_head(path: str | Path) -> Head:
    return head_from_state_dict(load_weights(path, "an aesthetic head"), Path(path).name)


# ---------------------------------------------------------------- open_clip encoders


def require_open_clip():
    try:
        import open_clip
    except ImportError as e:
        raise QGError(
            "the scoring nodes need the open_clip package, which is not installed in ComfyUI's Python: run "
            "`pip install open-clip-torch` (or `pip install -r custom_nodes/quality_gate/requirements.txt`) with "
            f"the Python that runs ComfyUI, then restart ComfyUI ({e})"
        ) from e
    return open_clip


def architectures() -> list[str]:
    """The architecture choices: ``auto`` then open_clip's built-in model names (empty without open_clip)."""
    try:
        import open_clip
    except ImportError:
        return ["auto", DEFAULT_ARCHITECTURE]
    return ["auto", *open_clip.list_models()]


def read_json_object(path: Path, what: str) -> dict:
    """A JSON object from a config file; a missing, unreadable or non-object file is a QGError naming ``what``
    and the path."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise QGError(f"{what} {path} is missing") from e
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise QGError(f"{what} {path} is not valid JSON ({e})") from e
    if not isinstance(data, dict):
        raise QGError(f"{what} {path} must be a JSON object")
    return data


def sidecar(weights: Path) -> Path:
    return weights.with_suffix(".json")


def _shape_of(cfg: dict) -> tuple | None:
    """What the weights of an open_clip ViT config look like: (embed dim, vision width, layers, patch, image
    size, text width, layers, context length); None for configs whose towers come from timm or the HF hub."""
    vision, text = cfg.get("vision_cfg", {}), cfg.get("text_cfg", {})
    if vision.get("timm_model_name") or text.get("hf_model_name") or not isinstance(vision.get("layers"), int):
        return None
    size = vision.get("image_size", 224)
    size = size[0] if isinstance(size, (list, tuple)) else size
    return (
        cfg.get("embed_dim"),
        vision.get("width", 768),
        vision["layers"],
        vision.get("patch_size", 16),
        size,
        text.get("width", 512),
        text.get("layers", 12),
        text.get("context_length", 77),
    )


def _shape_in(state: dict) -> tuple | None:
    """The same shape read from an open_clip (or OpenAI) ViT state dict; None when its keys are not that layout."""
    try:
        conv, pos = state["visual.conv1.weight"], state["visual.positional_embedding"]
        proj, tokens = state["visual.proj"], state["positional_embedding"]
    except KeyError:
        return None
    if (conv.ndim, pos.ndim, proj.ndim, tokens.ndim) != (4, 2, 2, 2) or pos.shape[0] < 2:
        return None

    def depth(prefix: str) -> int:
        return len({k[len(prefix) :].split(".")[0] for k in state if k.startswith(prefix)})

    grid = round(math.sqrt(pos.shape[0] - 1))
    return (
        proj.shape[1],
        conv.shape[0],
        depth("visual.transformer.resblocks."),
        conv.shape[-1],
        grid * conv.shape[-1],
        tokens.shape[1],
        depth("transformer.resblocks."),
        tokens.shape[0],
    )


def detect_architecture(state: dict) -> str | None:
    """The open_clip model name whose shapes the weights have (``auto`` without a sidecar): the default
    ``ViT-L-14-quickgelu`` when it fits (OpenAI ViT-L/14, the LAION heads' encoder), else the shortest fitting
    name (``ViT-H-14`` for HPSv2's fine-tune, not its ``-quickgelu`` twin, whose weights look the same); None
    when no built-in config fits."""
    shape = _shape_in(state)
    if shape is None:
        return None
    open_clip = require_open_clip()
    fits = [name for name in open_clip.list_models() if _shape_of(open_clip.get_model_config(name) or {}) == shape]
    if DEFAULT_ARCHITECTURE in fits:
        return DEFAULT_ARCHITECTURE
    return min(fits, key=lambda name: (len(name), name)) if fits else None


def encoder_config(weights: str | Path, architecture: str, state: dict | None = None) -> tuple[str, dict, dict]:
    """(model id, open_clip model config, preprocess config) for an encoder file.

    ``auto`` reads the sidecar ``<weights stem>.json`` (an open_clip model config, or ``{"model_cfg": ...,
    "preprocess_cfg": ...}`` as open_clip's hub configs are); without one it recognises the built-in config
    the weights' shapes fit (``state``, see ``detect_architecture``) and falls back to ``ViT-L-14-quickgelu``,
    the encoder the LAION heads were trained on."""
    weights = Path(weights)
    if architecture == "auto" and sidecar(weights).is_file():
        cfg = read_json_object(sidecar(weights), "the sidecar config")
        preprocess = cfg.get("preprocess_cfg", {})
        cfg = cfg.get("model_cfg", cfg)
        if not {"embed_dim", "vision_cfg"} <= set(cfg):
            raise QGError(
                f"the sidecar config {sidecar(weights).name} is not an open_clip model config "
                "(needs embed_dim and vision_cfg)"
            )
        return f"{weights.stem} ({sidecar(weights).name})", cfg, preprocess
    name = architecture
    if architecture == "auto":
        name = (detect_architecture(state) if state is not None else None) or DEFAULT_ARCHITECTURE
    cfg = require_open_clip().get_model_config(name)
    if cfg is None:
        raise QGError(f"architecture {name!r} is not an open_clip model name (see open_clip.list_models())")
    return name, cfg, {}


def build_encoder(weights: str | Path, architecture: str) -> tuple[torch.nn.Module, str, dict, int]:
    """An open_clip model with the file's weights (CPU, fp32, eval), its id, its preprocess config and its
    embedding width."""
    require_open_clip()
    from open_clip.convert import convert_state_dict
    from open_clip.model import CLIP, CustomTextCLIP

    state = load_weights(weights, "an open_clip encoder")
    model_id, cfg, preprocess = encoder_config(weights, architecture, state)
    cfg = dict(cfg)
    text_cfg = cfg.get("text_cfg", {})
    if text_cfg.get("hf_model_name") or text_cfg.get("hf_tokenizer_name"):
        raise QGError(f"{model_id}: text towers from the Hugging Face hub are not supported (no downloads)")
    model_class = CustomTextCLIP if cfg.pop("custom_text", False) else CLIP
    model = model_class(**cfg)
    state = convert_state_dict(model, state)  # OpenAI and other layouts to open_clip's keys
    if "logit_scale" in state and state["logit_scale"].ndim != model.logit_scale.ndim:
        state["logit_scale"] = state["logit_scale"].reshape(model.logit_scale.shape)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise QGError(
            f"the weights in {Path(weights).name} do not fit architecture {model_id}: pick the matching "
            f"architecture or put an open_clip config next to the file as {sidecar(Path(weights)).name} ({e})"[:1500]
        ) from e
    return model.eval().requires_grad_(False), model_id, preprocess, int(cfg["embed_dim"])


# ---------------------------------------------------------------- preprocessing (tensors, on any device)


def _eight_bit_resized(images: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """[B, H, W, 3] pixels (0..1) saved at 8 bits (as ``PIL.Image.fromarray`` sees them) and resized to
    [B, 3, height, width] 8-bit values by ``_resize``: ``uint8`` on the CPU, where torch resizes 8-bit pixels
    with Pillow's own algorithm several times faster than floats; floats holding whole numbers 0..255 on other
    devices, whose resize kernels take floats only.

    On the CPU one image at a time is converted into one reused 8-bit buffer, channels-last as the input already
    is in memory (the layout the 8-bit kernel is fast on): temporaries the size of a batch of large images cost
    more in page faults than the arithmetic does. ``ROUNDER + 255 x`` (one fused multiply-add) rounds, a clamp
    to ``ROUNDER + [0, 255]`` clips, and the low byte of the float's bits is the 8-bit value: two passes where
    ``mul``, ``clamp``, ``round`` and a float to uint8 conversion take four. They run on bands of ``BAND_BYTES``
    of rows, whose float scratch stays in the core's cache: 4 ms of 34 faster than whole images
    (16 of 1024 px)."""
    if images.device.type != "cpu":
        return _resize(images.mul(255).clamp_(0, 255).round_().movedim(-1, 1), height, width)
    rows = min(images.shape[1], max(1, BAND_BYTES // (images[0, 0].numel() * 4)))  # a small image: one band
    scratch, rounder = torch.empty(rows, *images.shape[2:]), torch.tensor(ROUNDER)
    pixels = torch.empty(images.shape[1:], dtype=torch.uint8)
    out = torch.empty(images.shape[0], height, width, 3, dtype=torch.uint8).movedim(-1, 1)
    for image, dest in zip(images, out, strict=True):
        for band, band_pixels in zip(image.split(rows), pixels.split(rows), strict=True):
            part = scratch[: band.shape[0]]
            torch.add(rounder, band, alpha=255, out=part).clamp_(ROUNDER, ROUNDER + 255)
            band_pixels.copy_(part.view(torch.int32))  # int32 to uint8 keeps the low byte: the rounded value
        dest.copy_(_resize(pixels.movedim(-1, 0)[None], height, width)[0])
    return out


def _resize(pixels: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Bicubic antialiased resize of 8-bit [N, 3, H, W] pixels to 8-bit pixels: PIL's
    ``Image.resize(..., BICUBIC)`` (torch's antialias filter is PIL's bicubic, a = -0.5; its 8-bit kernel is a
    port of Pillow's), what open_clip's reference transform runs. Floats go through the same two passes as PIL,
    width then height, each rounded and clipped to 8 bits."""
    if pixels.shape[-2:] == (height, width):
        return pixels
    if pixels.dtype == torch.uint8:
        return F.interpolate(pixels, size=(height, width), mode="bicubic", antialias=True, align_corners=False)
    for size in ((pixels.shape[-2], width), (height, width)):  # in floats: PIL's passes, each to 8 bits
        pixels = F.interpolate(pixels, size=size, mode="bicubic", antialias=True, align_corners=False)
        pixels = pixels.clamp_(0, 255).round_()
    return pixels


def _shortest_side(h: int, w: int, size: int) -> tuple[int, int]:
    """torchvision's Resize(size): the short side becomes ``size``, the long one is truncated like it does."""
    if h <= w:
        return size, int(size * w / h)
    return int(size * h / w), size


def _center(length: int, size: int) -> int:
    return int(round((length - size) / 2.0))


def crop_images(images: torch.Tensor, size: int, mode: str = "center") -> tuple[torch.Tensor, list[int]]:
    """Square ``size`` crops of a ComfyUI IMAGE batch [B, H, W, C] (0..1), as [N, 3, size, size] pixels
    quantised to 8 bits like a PIL pipeline, and the batch index each crop belongs to.

    - ``center``: shortest side to ``size``, then the center square (open_clip's reference preprocessing).
    - ``pad``: longest side to ``size``, then padded to a square with the normalisation mean (nothing is cut).
    - ``multi``: shortest side to ``size``, then three squares along the long side (start, center, end); a
      near-square image gives one. Scores of an image's crops are averaged.
    - ``squash``: the whole image resized to the square, aspect ratio not kept (SigLIP's own preprocessing).
    - ``auto``: ``center`` here; a ``Scorer`` replaces it with its model's own preprocessing first.
    """
    if mode not in CROPS:
        raise QGError(f"crop must be one of {', '.join(CROPS)}, got {mode!r}")
    images = rgb_images(images)
    b, h, w, _ = images.shape
    if mode == "squash":
        crops, owners = _eight_bit_resized(images, size, size), list(range(b))
    elif mode == "pad":
        scale = size / max(h, w)
        nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
        x = _eight_bit_resized(images, nh, nw)
        canvas = torch.tensor([round(255 * m) for m in OPENAI_MEAN], device=x.device, dtype=x.dtype)
        canvas = canvas.view(1, 3, 1, 1).expand(b, 3, size, size).clone()
        top, left = (size - nh) // 2, (size - nw) // 2
        canvas[:, :, top : top + nh, left : left + nw] = x
        crops, owners = canvas, list(range(b))
    else:
        nh, nw = _shortest_side(h, w, size)
        x = _eight_bit_resized(images, nh, nw)
        if mode == "multi" and max(nh, nw) > size * 1.05:
            long = max(nh, nw)
            starts = (0, _center(long, size), long - size)
            views = [x[:, :, s : s + size, :] if nh > nw else x[:, :, :, s : s + size] for s in starts]
            crops = torch.stack(views, dim=1).reshape(b * 3, 3, size, size)
            owners = [i for i in range(b) for _ in starts]
        else:
            top, left = _center(nh, size), _center(nw, size)
            crops, owners = x[:, :, top : top + size, left : left + size], list(range(b))
    return crops.to(torch.float32, memory_format=torch.contiguous_format).div_(255), owners


def normalise(pixels: torch.Tensor, mean=OPENAI_MEAN, std=OPENAI_STD) -> torch.Tensor:
    mean = torch.tensor(mean, device=pixels.device, dtype=pixels.dtype).view(1, 3, 1, 1)
    std = torch.tensor(std, device=pixels.device, dtype=pixels.dtype).view(1, 3, 1, 1)
    return (pixels - mean).div_(std)


def per_image_mean(values: torch.Tensor, owners: list[int], batch: int) -> torch.Tensor:
    """Average per-crop values into per-image values."""
    index = torch.tensor(owners, device=values.device)
    total = torch.zeros(batch, *values.shape[1:], dtype=values.dtype, device=values.device)
    total.index_add_(0, index, values)
    counts = torch.bincount(index, minlength=batch).to(values.dtype).view(batch, *([1] * (values.ndim - 1)))
    return total / counts


# ---------------------------------------------------------------- the scorer


@dataclass
class Scorer:
    """What the scorer loaders output (``QG_SCORER``): an image encoder, optional text encoder and head.

    ``encode_images(pixels01)`` takes [N, 3, S, S] pixels in 0..1 (already cropped) and returns [N, D]
    embeddings; ``encode_texts(list[str])`` returns [N, D] or is None for an image-only encoder. The node layer
    builds these around ComfyUI's model management: ``activate()`` loads the encoder onto ComfyUI's device
    (evicting other models as needed) and returns that device; it is called once per scoring call.

    ``family`` says what the encoder is (``open_clip``, ``hf_clip``, ``siglip``, ``clip_vision``): the preference
    score follows it. ``logit_scale`` is the model's own trained temperature (exp'd), ``crop`` its own
    preprocessing (what ``auto`` means). The embeddings of the last ``EMBEDDING_CACHE`` image batches are kept
    by tensor identity, so every judge of one batch on one scorer shares a single encode (``encodes`` counts
    the batches that went through the encoder)."""

    model_id: str
    image_size: int
    embed_dim: int
    encode_images: Callable[[torch.Tensor], torch.Tensor]
    encode_texts: Callable[[list[str]], torch.Tensor] | None = None
    head: Head | None = None
    activate: Callable[[], torch.device] = lambda: torch.device("cpu")
    chunk: int = CHUNK
    family: str = "open_clip"
    logit_scale: float = LOGIT_SCALE
    crop: str = "center"
    encodes: int = field(default=0, compare=False)
    _texts: OrderedDict = field(default_factory=OrderedDict, repr=False)
    _batches: OrderedDict = field(default_factory=OrderedDict, repr=False)

    def __post_init__(self):
        if self.head is not None and self.head.width != self.embed_dim:
            raise QGError(
                f"head {self.head.name} expects {self.head.width}-wide embeddings but encoder {self.model_id} "
                f"gives {self.embed_dim}: use the head made for this encoder (LAION v2 and the ViT-L/14 heads "
                "need ViT-L-14-quickgelu, 768)"
            )

    def with_head(self, head: Head | None) -> Scorer:
        """The same encoder with another head (or none); text and image embedding caches are shared."""
        return replace(self, head=head)

    @property
    def label(self) -> str:
        return f"{self.model_id} + {self.head.name} ({self.head.kind})" if self.head else self.model_id

    def _encode(self, images: torch.Tensor, crop: str, check) -> list[tuple]:
        """Per chunk of ``chunk`` images: (L2-normalised crop embeddings on the CPU, the image each crop belongs
        to, images in the chunk, which of them hold NaN or infinite pixels). ``check`` runs before each chunk
        (ComfyUI's interrupt check). The 8-bit conversion would clip such pixels into ordinary ones (NaN to 0,
        +inf to 255), so they are found first (one sum per image, exact only for suspects)."""
        device, chunks = self.activate(), []
        for start in range(0, images.shape[0], self.chunk):
            if check is not None:
                check()
            part = images[start : start + self.chunk].to(device)
            pixels, owners = crop_images(part, self.image_size, crop)
            bad = non_finite(rgb_images(part)).cpu()
            chunks.append((F.normalize(self.encode_images(pixels).float(), dim=-1).cpu(), owners, part.shape[0], bad))
        self.encodes += 1
        return chunks

    def _crop_embeddings(self, images: torch.Tensor, crop: str, check) -> list[tuple]:
        """``_encode``'s chunks for this batch, from the cache when the same tensor (same object, storage,
        shape and in-place version) was encoded with the same crop: ComfyUI hands every node linked to one
        output the same tensor, so the judges of a batch share one encode. ``auto`` is the model's own crop."""
        check_image(images)  # a named error for anything that is not an IMAGE, before it is used as a key
        crop = self.crop if crop == "auto" else crop
        version = getattr(images, "_version", None) if not images.is_inference() else None
        key = (id(images), images.data_ptr(), tuple(images.shape), version, crop)
        entry = self._batches.get(key)
        if entry is not None and entry[0]() is images:
            self._batches.move_to_end(key)
            return entry[1]
        chunks = self._encode(images, crop, check)
        self._batches[key] = (weakref.ref(images), chunks)
        while len(self._batches) > EMBEDDING_CACHE:
            self._batches.popitem(last=False)
        return chunks

    def image_embeddings(self, images: torch.Tensor, crop: str = "auto", check=None):
        """(L2-normalised [B, D] embeddings of every image (``multi``: of the mean of its crops' embeddings),
        the 0-based indices of images with NaN or infinite pixels, whose rows are NaN)."""
        rows, flagged, done = [], [], 0
        for emb, owners, n, bad in self._crop_embeddings(images, crop, check):
            flagged += [done + i for i in bad.nonzero().flatten().tolist()]
            done += n
            rows.append(F.normalize(per_image_mean(emb, owners, n), dim=-1).masked_fill_(bad.view(-1, 1), math.nan))
        return torch.cat(rows), flagged

    def per_image(self, images: torch.Tensor, crop: str, score, check=None) -> tuple[list[float], list[int]]:
        """(``score`` of every crop embedding, averaged over each image's crops (one crop unless ``multi``), the
        0-based indices of images with NaN or infinite pixels). Those images score NaN, never a number made of
        clipped pixels; NaN never passes a threshold, wins a loop or survives Rank Batch's min_score."""
        values, flagged = [], []
        for emb, owners, n, bad in self._crop_embeddings(images, crop, check):
            flagged += [len(values) + i for i in bad.nonzero().flatten().tolist()]
            part = per_image_mean(score(emb).reshape(-1, 1), owners, n)[:, 0].masked_fill_(bad, math.nan)
            values += part.tolist()
        return values, flagged

    def text_embeddings(self, texts: list[str]) -> torch.Tensor:
        """L2-normalised [N, D] text embeddings, cached per text (the last ``TEXT_CACHE`` texts)."""
        if self.encode_texts is None:
            raise QGError(
                f"{self.model_id} has no text encoder: use an open_clip encoder or a Hugging Face CLIP folder"
            )
        missing = [t for t in dict.fromkeys(texts) if t not in self._texts]
        if missing:
            self.activate()
            for text, emb in zip(missing, F.normalize(self.encode_texts(missing).float(), dim=-1).cpu(), strict=True):
                self._texts[text] = emb
        for t in texts:
            self._texts.move_to_end(t)
        while len(self._texts) > TEXT_CACHE:
            self._texts.popitem(last=False)
        return torch.stack([self._texts[t] for t in texts])

    def aesthetic(self, images: torch.Tensor, crop: str = "auto", check=None) -> tuple[list[float], list[int]]:
        """(aesthetic score of every image, indices of images with NaN/Inf pixels: scored NaN)."""
        if self.head is None:
            raise QGError(f"scorer {self.model_id} has no aesthetic head: choose a head in the Scorer Loader")
        return self.per_image(images, crop, self.head, check)

    def clip_scores(
        self, images: torch.Tensor, prompt: str, crop: str = "auto", check=None
    ) -> tuple[list[float], list[int]]:
        """(CLIP score 100 * max(cos, 0) of each image against the prompt, indices of images with NaN/Inf
        pixels: scored NaN)."""
        text = self.text_embeddings([prompt])[0]
        return self.per_image(images, crop, lambda emb: (100 * (emb @ text)).clamp(min=0), check)

    @property
    def preference_scale(self) -> float:
        """The factor on the cosine in the preference score: PickScore (a Hugging Face CLIP) multiplies by
        its trained ``logit_scale.exp()``; HPSv2 (an open_clip fine-tune) scores the bare cosine."""
        return self.logit_scale if self.family == "hf_clip" else 1.0

    def preference(self, images: torch.Tensor, prompt: str, check=None) -> tuple[list[float], list[int]]:
        """(preference score of each image for the prompt, as the published scorers compute it: the cosine of
        the L2-normalised image and prompt embeddings times ``preference_scale``; indices of NaN/Inf images)."""
        text, scale = self.text_embeddings([prompt])[0], self.preference_scale
        return self.per_image(images, "auto", lambda emb: scale * (emb @ text), check)

    def clip_iqa(self, images: torch.Tensor, pairs: list[tuple[str, str]], check=None):
        """(CLIP-IQA score 0..1 of each image: per antonym pair the softmax of 100 * cosine over (positive,
        negative), the positive's share, averaged over the pairs; indices of NaN/Inf images)."""
        texts = self.text_embeddings([t for pair in pairs for t in pair]).view(len(pairs), 2, -1)

        def score(emb):
            return (LOGIT_SCALE * torch.einsum("nd,pkd->npk", emb, texts)).softmax(dim=-1)[..., 0].mean(dim=-1)

        return self.per_image(images, "auto", score, check)

    def classify(self, labels: list[str], images: torch.Tensor | None = None, text: str | None = None, check=None):
        """(zero-shot probabilities [N, L] of each image (or the one text) over the labels (softmax of
        100*cos), the indices of images with NaN/Inf pixels, whose rows are NaN)."""
        query, flagged = self.image_embeddings(images, "auto", check) if images is not None else (None, [])
        if query is None:
            query = self.text_embeddings([text])
        return (LOGIT_SCALE * query @ self.text_embeddings(labels).T).softmax(dim=-1), flagged


def as_text(value, name: str) -> str:
    """A STRING input as it arrived (a link can bring any value): the string, or a named error."""
    if not isinstance(value, str):
        raise QGError(f"{name}: expected a STRING (text), got {type(value).__name__}")
    return value


def parse_pairs(pairs: str) -> list[tuple[str, str]]:
    """CLIP-IQA antonym pairs, one per line as ``positive | negative``; blank lines are ignored."""
    found = []
    pairs = as_text(pairs, "pairs")
    for number, line in enumerate(pairs.splitlines(), 1):
        if not line.strip():
            continue
        parts = [part.strip() for part in line.split("|")]
        if len(parts) != 2 or not all(parts):
            raise QGError(f"pairs line {number} ({line.strip()[:80]!r}) is not 'positive text | negative text'")
        found.append((parts[0], parts[1]))
    if not found:
        raise QGError("pairs is empty: write one 'positive | negative' pair per line, e.g. Good photo. | Bad photo.")
    return found


def parse_labels(labels: str) -> list[str]:
    """One label per line; blank lines are ignored, duplicates are an error."""
    labels = as_text(labels, "labels")
    items = [line.strip() for line in labels.splitlines() if line.strip()]
    if not items:
        raise QGError("labels is empty: write one label per line")
    duplicates = sorted({x for x in items if items.count(x) > 1})
    if duplicates:
        raise QGError(f"labels has duplicates: {', '.join(duplicates)}")
    return items


@dataclass
class Scores:
    """What flows through ``QG_SCORES`` links: one float per image of the batch, the metric and the model."""

    values: list[float]
    metric: str
    model: str = ""

    def report(self, reduce: str, score: float, **extra) -> dict:
        head = {"metric": self.metric, "model": self.model, "reduce": reduce, "score": json_number(score)}
        return {**head, "scores": [json_number(v) for v in self.values], **extra}
