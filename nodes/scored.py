"""Scores that travel with the images (category ``quality_gate/score``): Save Image with Scores writes every
score into the saved PNGs, and Apply Ranking gives a ranked image batch's latents, masks or other images the
same order and filter.

Thin adapters over ``core.saving`` and ``core.reorder``; ComfyUI's output folder, file naming and
``--disable-metadata`` flag come through ``host``.
"""

from __future__ import annotations

import os

from . import host
from .common import HIDDEN_ID, QGNode, socket
from .core.errors import QGError
from .core.graph import consumers
from .core.reorder import parse_indices, take, take_latent, take_mask
from .core.saving import best_attempt, check_images, image_metadata, save_png, text_chunks

CATEGORY = "quality_gate/score"
SCORES = "QG_SCORES"
SCORE_INPUTS = ("scores_a", "scores_b", "scores_c")
COMPRESS_LEVEL = 4  # SaveImage's


class SaveImageWithScores(QGNode):
    TITLE = "Save Image with Scores"
    CATEGORY = CATEGORY
    OUTPUT_NODE = True
    DESCRIPTION = (
        "Saves the images as PNG files in ComfyUI's output folder, named like Save Image does, and writes every "
        "connected score into each file: next to ComfyUI's own prompt and workflow text chunks, a quality_gate "
        "chunk (JSON) with each score's metric, model and this image's value, and, when loop_history is "
        "connected, the seed and attempt the Retry End loop kept. The same data is in /history (the node's "
        "quality_gate UI, one entry per image). With --disable-metadata no text chunk is written at all, as with "
        "Save Image. Every scores input must hold one score per image."
    )
    RETURN_TYPES = ()
    RETURN_NAMES = ()
    OUTPUT_TOOLTIPS = ()

    @classmethod
    def INPUT_TYPES(cls):
        def scores(letter):
            return socket(
                SCORES, f"Optional: per-image scores of these images (any score node), written as score {letter}."
            )

        return {
            "required": {
                "images": socket("IMAGE", "The images to save."),
                "filename_prefix": (
                    "STRING",
                    {
                        "default": "ComfyUI",
                        "tooltip": "The prefix of the file names, as in Save Image: may hold subfolders "
                        "(quality_gate/best) and %year% %month% %day% %hour% %minute% %second% %width% %height%.",
                    },
                ),
            },
            "optional": {
                "scores_a": scores("a"),
                "scores_b": scores("b"),
                "scores_c": scores("c"),
                "loop_history": (
                    "STRING",
                    {
                        "forceInput": True,
                        "tooltip": "Optional: Retry End's history output; the kept attempt's number, seed and score "
                        "are written with the scores.",
                    },
                ),
            },
            "hidden": {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO", **HIDDEN_ID},
        }

    def execute(
        self,
        images,
        filename_prefix="ComfyUI",
        scores_a=None,
        scores_b=None,
        scores_c=None,
        loop_history=None,
        prompt=None,
        extra_pnginfo=None,
        unique_id=None,
    ):
        with self.errors_named(unique_id):
            check_images(images)
            connected = {
                n: s for n, s in zip(SCORE_INPUTS, (scores_a, scores_b, scores_c), strict=True) if s is not None
            }
            loop = best_attempt(loop_history) if loop_history is not None else None
            metadata = image_metadata(images.shape[0], connected, loop)
            folder, filename, counter, subfolder, _ = host.save_image_path(
                filename_prefix, images.shape[2], images.shape[1]
            )
            with_chunks = not host.metadata_disabled()
            results = []
            for number, (image, meta) in enumerate(zip(images, metadata, strict=True)):
                host.interrupt_check()
                file = f"{filename.replace('%batch_num%', str(number))}_{counter:05}_.png"
                chunks = text_chunks(prompt, extra_pnginfo, meta) if with_chunks else None
                try:
                    save_png(os.path.join(folder, file), image, chunks, COMPRESS_LEVEL)
                except (OSError, ValueError) as e:
                    raise QGError(
                        f"filename_prefix {str(filename_prefix)[:80]!r}: {file} could not be written ({e})"
                    ) from e
                results.append({"filename": file, "subfolder": subfolder, "type": "output"})
                counter += 1
            return {"ui": {"images": results, "quality_gate": metadata}}


class ApplyRanking(QGNode):
    TITLE = "Apply Ranking"
    CATEGORY = CATEGORY
    DESCRIPTION = (
        "Gives companion batches the order and filter Rank Batch gave the images: connect its indices output and "
        "the latent, mask or image batch that belongs to the ranked images (same batch positions), so a ranked "
        "image keeps its latent for a second pass and its mask for inpainting. A single mask applies to every "
        "image. A ranked latent keeps its noise positions (batch_index, as Latent From Batch sets them), so a "
        "second pass samples each kept latent with the noise it had in the full batch. Outputs whose input is "
        "not connected are empty; linking one to another node is an error that names the missing input."
    )
    RETURN_TYPES = ("LATENT", "MASK", "IMAGE")
    RETURN_NAMES = ("latent", "mask", "image")
    OUTPUT_TOOLTIPS = (
        "The latent batch in ranked order, only the kept ones (needs the latent input).",
        "One mask per kept image, in ranked order (needs the mask input).",
        "The image batch in ranked order, only the kept ones (needs the image input).",
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "indices": (
                    "STRING",
                    {
                        "forceInput": True,
                        "tooltip": "Rank Batch's indices output: the kept images' positions in the ranked batch, "
                        "best first, e.g. 2,0.",
                    },
                ),
            },
            "optional": {
                "latent": socket("LATENT", "The latents of the ranked images (same batch positions)."),
                "mask": socket("MASK", "The masks of the ranked images, or one mask for all of them."),
                "image": socket(
                    "IMAGE", "Another image batch of the same positions (e.g. the images before upscaling)."
                ),
            },
            "hidden": {**HIDDEN_ID, "dynprompt": "DYNPROMPT"},
        }

    def execute(self, indices, latent=None, mask=None, image=None, unique_id=None, dynprompt=None):
        with self.errors_named(unique_id):
            order = parse_indices(indices)
            values = (
                take_latent(latent, order) if latent is not None else None,
                take_mask(mask, order) if mask is not None else None,
                take(image, order, "image") if image is not None else None,
            )
            for slot, (name, value) in enumerate(zip(self.RETURN_NAMES, values, strict=True)):
                if value is None and dynprompt is not None:
                    users = consumers(dynprompt.get_node, dynprompt.all_node_ids(), unique_id, slot)
                    if users:
                        shown = ", ".join(f"#{dynprompt.get_display_node_id(u)}" for u in users)
                        raise QGError(
                            f"the {name} output feeds {shown}, but the {name} input is not connected: connect the "
                            f"{name} batch that belongs to the ranked images"
                        )
            return values
