"""Benchmark: the newer judges against the bare encoder forward, one shared encode against one per judge, and
peak memory.

Side by side in one run on this CPU, rounds in a new random order, medians and the median of the per-round
ratios (which cancels load that drifts between rounds), on 16 images of 1024x1024:
  bare   the encoder's forward on the batch already cropped and normalised at the model's input size: the
         physical limit of any scorer with this model
  ours   the judge's code path (``core.score.Scorer``): 1024 px tensors cropped, quantised and normalised as
         tensors, encoded ``CHUNK`` images at a time, the judge's formula (the prompt's text embedding cached,
         as it is from the second run of a workflow on)
for each judge at a small and a realistic shape (random weights: the weights do not change the cost):
  HPSv2        QG_PreferenceScore on open_clip: ViT-B-32 | ViT-H-14 (HPSv2.1's shape)
  PickScore    QG_PreferenceScore on a Hugging Face CLIP: ViT-B/32 | ViT-H/14 (PickScore_v1's shape)
  CLIP-IQA     QG_ClipIQA (two antonym pairs) on open_clip: ViT-B-32 | ViT-L-14-quickgelu
  Aesthetic v2.5  QG_AestheticScore on a SigLIP vision tower: base-patch16-224 | so400m-patch14-384, its head
Target: ours/bare <= 1.10.

Then aesthetic + CLIP-IQA + prompt adherence on one open_clip encoder: the three judges on one batch sharing
one encode (what the nodes do) against three separate encodes (what three packs, or one pack without the
shared cache, do). Target: at least 2.5x faster. And the peak resident memory each judge adds while scoring 64
images of 1024 px (small shapes; in fresh processes).

Usage: .venv/bin/python dev/bench_judges.py [--rounds N] [--large-rounds N] [--skip-large] [--skip-memory]
       [--memory-large] [--only NAME]
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics

import torch
from bench_score import cpu_name, head_for, images, peak_memory, per_round, side_by_side
from quality_gate.nodes.core.hf import SIGLIP_MEAN, SIGLIP_STD, HFModel
from quality_gate.nodes.core.score import OPENAI_MEAN, OPENAI_STD, Scorer, crop_images, normalise

WARM_UP = 3  # untimed runs of each side before the rounds
PROMPT = "a red fox in a snowy forest, morning light, detailed fur"
PAIRS = [("Good photo.", "Bad photo."), ("Sharp photo.", "Blurry photo.")]
HF_CLIP = {  # transformers CLIPConfig sizes: (vision, text) of ViT-B/32 and ViT-H/14
    "ViT-B/32": ({"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12, "num_attention_heads": 12,
                  "patch_size": 32}, {"hidden_size": 512, "intermediate_size": 2048, "num_hidden_layers": 12,
                                      "num_attention_heads": 8}, 512),
    "ViT-H/14": ({"hidden_size": 1280, "intermediate_size": 5120, "num_hidden_layers": 32, "num_attention_heads": 16,
                  "patch_size": 14}, {"hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 24,
                                      "num_attention_heads": 16}, 1024),
}  # fmt: skip
SIGLIP = {
    "base-patch16-224": {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
                         "num_attention_heads": 12, "image_size": 224, "patch_size": 16},
    "so400m-patch14-384": {"hidden_size": 1152, "intermediate_size": 4304, "num_hidden_layers": 27,
                           "num_attention_heads": 16, "image_size": 384, "patch_size": 14},
}  # fmt: skip


def open_clip_scorer(arch: str) -> tuple[Scorer, object]:
    import open_clip
    from open_clip.model import CLIP

    torch.manual_seed(0)
    model = CLIP(**open_clip.get_model_config(arch)).eval()
    tokenizer = open_clip.tokenizer.SimpleTokenizer()
    size = model.visual.image_size
    size = size[0] if isinstance(size, (tuple, list)) else size
    scorer = Scorer(
        arch,
        size,
        model.visual.output_dim,
        encode_images=lambda px: model.encode_image(normalise(px)),
        encode_texts=lambda texts: model.encode_text(tokenizer(texts)),
        family="open_clip",
    )
    return scorer, lambda ready: model.encode_image(ready)


def hf_scorer(model, family: str, crop: str, size: int, width: int, mean, std, tokenizer=None) -> tuple:
    hf = HFModel(model, family, family, size, width, mean, std, crop, 100.0, tokenizer)
    texts = (lambda t: hf.encode_texts(tokenizer(t))) if tokenizer else None
    scorer = Scorer(
        family,
        size,
        width,
        encode_images=lambda px: hf.encode_images(normalise(px, mean, std)),
        encode_texts=texts,
        family=family,
        logit_scale=100.0,
        crop=crop,
    )
    return scorer, hf.encode_images


def pickscore_scorer(shape: str) -> tuple:
    import open_clip
    from transformers import CLIPConfig, CLIPModel

    vision, text, projection = HF_CLIP[shape]
    config = CLIPConfig(
        vision_config={**vision, "image_size": 224},
        text_config={**text, "vocab_size": 49408, "max_position_embeddings": 77},
        projection_dim=projection,
    )
    torch.manual_seed(0)
    model = CLIPModel(config).eval()
    tokenizer = open_clip.tokenizer.SimpleTokenizer()
    return hf_scorer(model, "hf_clip", "center", 224, projection, OPENAI_MEAN, OPENAI_STD, tokenizer)


def siglip_scorer(shape: str) -> tuple:
    from transformers import SiglipVisionConfig, SiglipVisionModel

    torch.manual_seed(0)
    config = SiglipVisionConfig(**SIGLIP[shape])
    model = SiglipVisionModel(config).eval()
    scorer, bare = hf_scorer(model, "siglip", "squash", config.image_size, config.hidden_size, SIGLIP_MEAN, SIGLIP_STD)
    return scorer.with_head(head_for(config.hidden_size)), bare


JUDGES = {  # name: (small shape, realistic shape, build(shape) -> (scorer, bare forward), the judge's call)
    "HPSv2 (preference, open_clip)": (
        "ViT-B-32", "ViT-H-14", open_clip_scorer, lambda s, b: s.preference(b, PROMPT)),
    "PickScore (preference, HF CLIP)": (
        "ViT-B/32", "ViT-H/14", pickscore_scorer, lambda s, b: s.preference(b, PROMPT)),
    "CLIP-IQA (2 pairs, open_clip)": (
        "ViT-B-32", "ViT-L-14-quickgelu", open_clip_scorer, lambda s, b: s.clip_iqa(b, PAIRS)),
    "Aesthetic v2.5 (SigLIP + head)": (
        "base-patch16-224", "so400m-patch14-384", siglip_scorer, lambda s, b: s.aesthetic(b)),
}  # fmt: skip


def bench_judge(name: str, shape: str, rounds: int) -> dict:
    small, _, build, judge = JUDGES[name]
    scorer, bare_forward = build(shape)
    batch = images(16, 1024)
    crop = scorer.crop
    ready = normalise(crop_images(batch, scorer.image_size, crop)[0], *_norm(scorer))
    runs = {
        "bare": lambda: bare_forward(ready),
        # batch[:] is a new tensor object on the same pixels: the judge encodes it (no cached embedding)
        "ours": lambda: judge(scorer, batch[:]),
    }
    with torch.inference_mode():
        for _ in range(WARM_UP):  # the text embedding cached as in a second run, and a warm process: the
            judge(scorer, batch[:])  # first judge timed in a fresh process otherwise runs ~10 % slower (its
            bare_forward(ready)  # large buffers page-fault until the allocator settles), whichever it is
        times = side_by_side(runs, rounds)
    med = {k: statistics.median(v) for k, v in times.items()}
    return {
        "bare_s": med["bare"],
        "ours_s": med["ours"],
        "ratio": med["ours"] / med["bare"],
        "per_round": per_round(times, "ours", "bare"),
    }


def _norm(scorer: Scorer) -> tuple:
    return (SIGLIP_MEAN, SIGLIP_STD) if scorer.family == "siglip" else (OPENAI_MEAN, OPENAI_STD)


def bench_shared(arch: str, rounds: int) -> dict:
    """Aesthetic + CLIP-IQA + prompt adherence on one scorer: one shared encode vs one encode per judge."""
    scorer, _ = open_clip_scorer(arch)
    scorer = scorer.with_head(head_for(scorer.embed_dim))
    batch = images(16, 1024)

    def three(shared: bool):
        views = [batch[:]] * 3 if shared else [batch[:], batch[:], batch[:]]
        scorer.aesthetic(views[0])
        scorer.clip_iqa(views[1], PAIRS)
        scorer.clip_scores(views[2], PROMPT)

    runs = {"shared": lambda: three(True), "separate": lambda: three(False)}
    with torch.inference_mode():
        three(True)
        times = side_by_side(runs, rounds)
    med = {k: statistics.median(v) for k, v in times.items()}
    return {
        "shared_s": med["shared"],
        "separate_s": med["separate"],
        "speedup": med["separate"] / med["shared"],
        "per_round": per_round(times, "separate", "shared"),
    }


def bench_memory(name: str, large: bool = False) -> float:
    """Peak resident memory added while the judge scores 64 images of 1024 px (model and batch already held,
    the text embeddings already cached), at the small or the large shape."""
    setup = (
        "from bench_judges import JUDGES\nfrom bench_score import images\n"
        f"small, large, build, judge = JUDGES[{name!r}]\nscorer, _ = build({'large' if large else 'small'})\n"
        "batch = images(64, 1024)\n"
        "with torch.inference_mode():\n    judge(scorer, images(1, 64))"
    )
    return peak_memory(setup, "judge(scorer, batch)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--skip-large", action="store_true", help="small shapes only (the large take minutes)")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--memory-large", action="store_true", help="peak memory at the large shapes (minutes)")
    parser.add_argument("--only", default="", help="only the judges whose name contains this (e.g. HPS)")
    parser.add_argument("--large-rounds", type=int, help="rounds for the large shapes (default: half of --rounds)")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; CPU: {cpu_name()}")
    print("load average (1, 5, 15 min) at the start: %.2f %.2f %.2f" % os.getloadavg())
    print("\n| judge | shape | bare forward | the judge's path | ours/bare (<= 1.10) | median of per-round ratios |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, (small, large, _, _) in JUDGES.items():
        if args.only not in name:
            continue
        for shape in (small,) if args.skip_large else (small, large):
            rounds = args.rounds if shape == small else (args.large_rounds or max(2, args.rounds // 2))
            r = bench_judge(name, shape, rounds)
            gc.collect()  # the large models go before the next is built
            print(
                f"| {name} | {shape} | {r['bare_s']:.2f} s | {r['ours_s']:.2f} s | **{r['ratio']:.3f}** | "
                f"{r['per_round']:.3f} |",
                flush=True,
            )
    print("\n| aesthetic + CLIP-IQA + adherence, 16 x 1024 px | one shared encode | three encodes | speed-up (>= 2.5) "
          "| median of per-round ratios |\n| --- | --- | --- | --- | --- |")  # fmt: skip
    for arch in ("ViT-B-32",) if args.skip_large else ("ViT-B-32", "ViT-L-14-quickgelu"):
        r = bench_shared(arch, args.rounds if arch == "ViT-B-32" else max(2, args.rounds // 2))
        print(
            f"| {arch} | {r['shared_s']:.2f} s | {r['separate_s']:.2f} s | **{r['speedup']:.2f}x** | "
            f"{r['per_round']:.2f}x |",
            flush=True,
        )
    if not args.skip_memory:
        shapes = "large" if args.memory_large else "small"
        print(f"\n| peak memory added, 64 images of 1024 px ({shapes} shapes) | MB |\n| --- | --- |")
        for name in JUDGES:
            if args.only in name:
                print(f"| {name} | {bench_memory(name, args.memory_large):.0f} |", flush=True)
    print("load average at the end: %.2f %.2f %.2f (other work on the machine skews the times)" % os.getloadavg())


if __name__ == "__main__":
    main()
