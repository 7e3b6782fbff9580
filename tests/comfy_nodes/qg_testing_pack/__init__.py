"""Test-only ComfyUI nodes (never shipped: see .comfyignore). Loaded beside Quality Gate by the test harness.

- QGTest_Json: a literal value from JSON text (NaN, lists, dicts, null...).
- QGTest_Tensor: a torch tensor of a given shape and fill value.
- QGTest_Probe: passes a value on and counts its executions per label (GET /qgtest/counts); can be slow.
- QGTest_Record: an output node that records what it received into the prompt's history.
- QGTest_EagerSwitch: a non-lazy switch that evaluates both inputs (benchmark baseline).
- QGTest_SeedScore: a deterministic score from a seed (a JSON table {seed: score} with a default); counts
  its executions per label.
- QGTest_Noise: a 1-image IMAGE of the given size filled from a seed (a big loop body for memory tests).
- QGTest_ScorerEncodes: an output node showing how many image batches a QG_SCORER has run through its encoder
  (run after the judges linked to its ``after_*`` inputs).
- QGTest_ImageLatent / QGTest_LatentImage: an IMAGE batch as a LATENT (its RGB as the samples' channels, no VAE)
  and back, so tests can follow latents by their pixels.
"""

import math
import threading
import time
from collections import Counter

import torch
from aiohttp import web
from server import PromptServer


class AnyType(str):
    def __ne__(self, other):
        return False

    __hash__ = str.__hash__


ANY = AnyType("*")
COUNTS = Counter()
_LOCK = threading.Lock()


def _count(label):
    with _LOCK:
        COUNTS[label] += 1


@PromptServer.instance.routes.get("/qgtest/counts")
async def counts(request):
    with _LOCK:
        return web.json_response(dict(COUNTS))


def _jsonable(value):
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, torch.Tensor):
        return {"tensor": list(value.shape), "sum": float(value.float().sum()) if value.numel() else 0.0}
    return repr(value)


class Json:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"json": ("STRING", {"default": "null", "multiline": True})}}

    RETURN_TYPES = (ANY,)
    FUNCTION = "run"
    CATEGORY = "qg_testing"

    def run(self, json):
        import json as json_module

        return (json_module.loads(json),)


class Tensor:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"shape": ("STRING", {"default": "1"}), "fill": ("FLOAT", {"default": 0.0})}}

    RETURN_TYPES = (ANY,)
    FUNCTION = "run"
    CATEGORY = "qg_testing"

    def run(self, shape, fill):
        dims = [int(d) for d in shape.split(",") if d.strip()]
        return (torch.full(dims, fill),)


class Probe:
    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {"label": ("STRING", {"default": ""})},
            "optional": {"value": (ANY, {}), "delay": ("FLOAT", {"default": 0.0, "min": 0.0})},
        }

    RETURN_TYPES = (ANY,)
    FUNCTION = "run"
    CATEGORY = "qg_testing"

    def run(self, label, value=None, delay=0.0):
        _count(label)
        if delay:
            time.sleep(delay)
        return (label if value is None else value,)


class Record:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"label": ("STRING", {"default": ""}), "value": (ANY, {})}}

    RETURN_TYPES = ()
    FUNCTION = "run"
    OUTPUT_NODE = True
    CATEGORY = "qg_testing"

    def run(self, label, value):
        _count(label)
        return {"ui": {"qg_record": [{"label": label, "type": type(value).__name__, "value": _jsonable(value)}]}}


class ScorerEncodes:
    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {"scorer": (ANY, {})},
            "optional": {"after_a": (ANY, {}), "after_b": (ANY, {}), "after_c": (ANY, {})},
        }

    RETURN_TYPES = ()
    FUNCTION = "run"
    OUTPUT_NODE = True
    CATEGORY = "qg_testing"

    def run(self, scorer, **after):
        return {"ui": {"qg_encodes": [scorer.encodes]}}


class EagerSwitch:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"condition": ("BOOLEAN", {"default": True}), "on_true": (ANY, {}), "on_false": (ANY, {})}}

    RETURN_TYPES = (ANY,)
    FUNCTION = "run"
    CATEGORY = "qg_testing"

    def run(self, condition, on_true, on_false):
        return (on_true if condition else on_false,)


class SeedScore:
    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "seed": ("INT", {"default": 0, "min": 0, "max": 0xFFFFFFFFFFFFFFFF}),
                "scores": ("STRING", {"default": "{}"}),
                "default": ("FLOAT", {"default": 0.0, "min": -1e9, "max": 1e9}),
                "label": ("STRING", {"default": ""}),
            },
            "optional": {"after": (ANY, {})},
        }

    RETURN_TYPES = ("FLOAT", "INT")
    FUNCTION = "run"
    CATEGORY = "qg_testing"

    def run(self, seed, scores, default, label, after=None):
        import json as json_module

        _count(label)
        table = json_module.loads(scores)
        value = table.get(str(seed), default)
        return (float("nan") if value == "nan" else float(value), seed)


class Noise:
    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "seed": ("INT", {"default": 0, "min": 0, "max": 0xFFFFFFFFFFFFFFFF}),
                "size": ("INT", {"default": 64, "min": 1, "max": 4096}),
            }
        }

    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "run"
    CATEGORY = "qg_testing"

    def run(self, seed, size):
        generator = torch.Generator().manual_seed(seed % (2**63))
        return (torch.rand((1, size, size, 3), generator=generator),)


class Poison:
    """One pixel of one image of a batch set to NaN, inf or -inf (a broken VAE decode, in miniature)."""

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "image": ("IMAGE", {}),
                "index": ("INT", {"default": 0, "min": 0, "max": 4096}),
                "value": (["nan", "inf", "-inf"], {"default": "nan"}),
            }
        }

    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "run"
    CATEGORY = "qg_testing"

    def run(self, image, index, value):
        image = image.clone()
        image[index, image.shape[1] // 2, image.shape[2] // 2, 0] = float(value)
        return (image,)


class ImageLatent:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"image": ("IMAGE", {})}}

    RETURN_TYPES = ("LATENT",)
    FUNCTION = "run"
    CATEGORY = "qg_testing"

    def run(self, image):
        return ({"samples": image[..., :3].movedim(-1, 1).clone()},)


class LatentImage:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"latent": ("LATENT", {})}}

    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "run"
    CATEGORY = "qg_testing"

    def run(self, latent):
        return (latent["samples"].movedim(1, -1).clone(),)


NODE_CLASS_MAPPINGS = {
    "QGTest_ImageLatent": ImageLatent,
    "QGTest_LatentImage": LatentImage,
    "QGTest_Poison": Poison,
    "QGTest_Json": Json,
    "QGTest_Tensor": Tensor,
    "QGTest_Probe": Probe,
    "QGTest_Record": Record,
    "QGTest_ScorerEncodes": ScorerEncodes,
    "QGTest_EagerSwitch": EagerSwitch,
    "QGTest_SeedScore": SeedScore,
    "QGTest_Noise": Noise,
}
