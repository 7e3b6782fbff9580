"""Benchmark: the scoring path against the physical limit and against the per-image PIL loop of other packs.

Side by side in one run on this CPU, rounds in a new random order, medians (and, for ours/bare, the median
of the ratios within each round, which cancels load that drifts between rounds):
  bare      the encoder's forward (``encode_image``) on the batch already cropped and normalised to 224 px:
            the physical limit of any scorer with this model
  ours      what QG_AestheticScore runs (``core.score.Scorer.aesthetic``): 1024 px tensors cropped, quantised and
            normalised as tensors, encoded ``core.score.CHUNK`` images at a time, the LAION v2 head
  pil_loop  what the anchor packs do per image: tensor -> uint8 -> PIL -> open_clip's transform -> encode one
            image -> normalise -> head
  prep      the preprocessing alone (``crop_images``): most of ours - bare, in ms, whatever the machine
for a random-weight ViT-B-32 and a ViT-L-14-quickgelu shape (the weights do not change the cost), on 16 images
of 1024x1024. Targets: ours/bare <= 1.10; pil_loop/ours >= 1.4 for ViT-B-32.

Also: QG_TechnicalScore's milliseconds per megapixel (target <= 30 ms), the peak memory of scoring 64 images
in the default chunks against one batch of 64 (each in a fresh process), and, on the real ComfyUI server, the first
and second run of QG_AestheticScore (the second must load nothing again).

Usage: .venv/bin/python dev/bench_score.py [--rounds N] [--skip-large] [--skip-server]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "dev"))
if "quality_gate" not in sys.modules:
    package = types.ModuleType("quality_gate")
    package.__path__ = [str(ROOT)]
    sys.modules["quality_gate"] = package

import numpy as np  # noqa: E402
import open_clip  # noqa: E402
import torch  # noqa: E402
from open_clip.model import CLIP  # noqa: E402
from PIL import Image  # noqa: E402
from quality_gate.nodes.core.score import CHUNK, Head, Scorer, crop_images, normalise  # noqa: E402

ARCHS = ("ViT-B-32", "ViT-L-14-quickgelu")


def images(n: int, size: int, seed: int = 0) -> torch.Tensor:
    """Smooth random pictures (upsampled noise), ComfyUI IMAGE layout [n, size, size, 3] in 0..1."""
    g = torch.Generator().manual_seed(seed)
    small = torch.rand(n, 3, 32, 32, generator=g)
    return torch.nn.functional.interpolate(small, size=(size, size), mode="bilinear").movedim(1, -1).contiguous()


def model_for(arch: str) -> CLIP:
    torch.manual_seed(0)
    return CLIP(**open_clip.get_model_config(arch)).eval()


def head_for(width: int) -> Head:
    g = torch.Generator().manual_seed(1)
    return Head("laion_v1", width, "random", weight=torch.randn(width, generator=g) / width**0.5, bias=5.0)


def scorer_for(model: CLIP, head: Head) -> Scorer:
    return Scorer("bench", 224, head.width, encode_images=lambda px: model.encode_image(normalise(px)), head=head)


def pil_loop(model: CLIP, head: Head, batch: torch.Tensor) -> list[float]:
    transform = open_clip.image_transform(224, is_train=False)
    scores = []
    for img in batch:
        pil = Image.fromarray((img.numpy() * 255).clip(0, 255).astype(np.uint8))
        emb = torch.nn.functional.normalize(model.encode_image(transform(pil)[None]), dim=-1)
        scores.append(float(head(emb)[0]))
    return scores


def cpu_name() -> str:
    """The CPU's model name (the ratios depend on it: the forward and the preprocessing scale differently)."""
    info = Path("/proc/cpuinfo")
    lines = info.read_text().splitlines() if info.is_file() else []
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "unknown")


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def side_by_side(runs: dict, rounds: int) -> dict:
    """Every callable once per round, in a new random order each round: {name: [seconds, one per round]}."""
    times = {name: [] for name in runs}
    for _ in range(rounds):
        for name in random.sample(list(runs), len(runs)):
            times[name].append(timed(runs[name]))
    return times


def per_round(times: dict, top: str, bottom: str) -> float:
    """The median of top / bottom within each round (cancels load that drifts between rounds)."""
    return statistics.median(t / b for t, b in zip(times[top], times[bottom], strict=True))


PEAK_CHILD = """
import sys, threading, time, torch
{setup}
def rss():
    return int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20
base, peak, done = rss(), [0.0], threading.Event()
def sample():
    while not done.is_set():
        peak[0] = max(peak[0], rss()); time.sleep(0.002)
thread = threading.Thread(target=sample); thread.start()
with torch.inference_mode():
    {work}
done.set(); thread.join()
print(peak[0] - base)
"""


def peak_memory(setup: str, work: str) -> float:
    """Peak resident memory (MB, sampled every 2 ms) that the statement ``work`` adds in a fresh Python in
    ``dev/``, above what ``setup`` left the process holding."""
    code = PEAK_CHILD.format(setup=setup, work=work)
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT / "dev", capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def bench_encoder(arch: str, rounds: int) -> dict:
    model = model_for(arch)
    head = head_for(model.visual.output_dim)
    batch = images(16, 1024)
    ready = normalise(crop_images(batch, 224, "center")[0])
    scorer = scorer_for(model, head)
    runs = {
        "bare": lambda: model.encode_image(ready),
        "ours": lambda: scorer.aesthetic(batch[:])[0],  # a new tensor object: encoded, not the cached embeddings
        "pil_loop": lambda: pil_loop(model, head, batch),
        "prep": lambda: crop_images(batch, 224, "center"),  # the preprocessing alone: ours - bare, mostly
    }
    with torch.inference_mode():
        ours, ref = scorer.aesthetic(batch)[0], pil_loop(model, head, batch)  # warm-up, and the two agree
        model.encode_image(ready)  # bare warmed up too (its batch shape gets its own oneDNN primitives)
        times = side_by_side(runs, rounds)
    med = {name: statistics.median(t) for name, t in times.items()}
    return {
        "arch": arch,
        **{f"{k}_s": v for k, v in med.items()},
        "ours/bare": med["ours"] / med["bare"],
        "ours/bare per round": per_round(times, "ours", "bare"),
        "pil_loop/ours": med["pil_loop"] / med["ours"],
        "ours - bare ms": (med["ours"] - med["bare"]) * 1000,
        "max |ours - pil_loop| score": max(abs(a - b) for a, b in zip(ours, ref, strict=True)),
    }


def bench_technical(rounds: int) -> list[dict]:
    from quality_gate.nodes.core.technical import technical_scores

    rows = []
    for n, size in ((16, 1024), (1, 2048)):
        batch = images(n, size, seed=2)
        with torch.inference_mode():
            technical_scores(batch)
            t = statistics.median(timed(lambda b=batch: technical_scores(b)) for _ in range(rounds))
        megapixels = n * size * size / 1e6
        rows.append({"images": f"{n} x {size}x{size}", "ms": t * 1000, "ms_per_MP": t * 1000 / megapixels})
    return rows


def bench_memory(arch: str) -> dict:
    """Peak resident memory added by scoring 64 images of 1024 px (sampled every 2 ms, above what the process
    held with the model and the batch already in memory)."""
    result = {"arch": arch}
    for label, chunk in (("chunks_MB", CHUNK), ("one_batch_of_64_MB", 64)):
        setup = (
            "from bench_score import images, model_for, head_for, scorer_for\n"
            f"model = model_for({arch!r}); scorer = scorer_for(model, head_for(model.visual.output_dim))\n"
            f"scorer.chunk = {chunk}; batch = images(64, 1024)"
        )
        result[label] = peak_memory(setup, "scorer.aesthetic(batch)")
    return result


def bench_server() -> dict:
    """First and second run of QG_AestheticScore on the real server (random ViT-B-32 file + sidecar config)."""
    from harness import ComfyClient, ComfyServer
    from safetensors.torch import save_file

    with ComfyServer(workdir=Path(tempfile.mkdtemp(prefix="qg-bench-score-")), name="bench-score") as server:
        model = model_for("ViT-B-32")
        folder = server.model_dir("open_clip")
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "b32.safetensors"))
        (folder / "b32.json").write_text(json.dumps(open_clip.get_model_config("ViT-B-32")))
        torch.save(
            {"weight": torch.randn(1, 512) / 22, "bias": torch.tensor([5.0])}, server.model_dir("aesthetic") / "h.pth"
        )
        client = ComfyClient(server.url)
        seconds = []
        for colour in (0x336699, 0x996633):
            prompt = {
                "1": {
                    "class_type": "EmptyImage",
                    "inputs": {"width": 1024, "height": 1024, "batch_size": 16, "color": colour},
                },
                "2": {
                    "class_type": "QG_ScorerLoader",
                    "inputs": {
                        "encoder": "b32.safetensors",
                        "architecture": "auto",
                        "head": "h.pth",
                        "precision": "auto",
                    },
                },
                "3": {"class_type": "QG_AestheticScore", "inputs": {"image": ["1", 0], "scorer": ["2", 0]}},
                "4": {"class_type": "PreviewAny", "inputs": {"source": ["3", 2]}},
            }
            result = client.run(prompt)
            if result.status != "success":
                raise RuntimeError(f"scoring prompt failed: {result.error}")
            seconds.append(result.seconds)
        client.close()
        return {
            "first_run_s": seconds[0],
            "second_run_s": seconds[1],
            "encoder_loads": server.log().count("loaded encoder"),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--skip-large", action="store_true", help="only ViT-B-32 (ViT-L-14 takes minutes)")
    parser.add_argument("--skip-server", action="store_true")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, open_clip {open_clip.__version__}")
    print(f"CPU: {cpu_name()}")
    print("load average (1, 5, 15 min) at the start: %.2f %.2f %.2f" % os.getloadavg())
    archs = ARCHS[:1] if args.skip_large else ARCHS
    print(
        "\n| encoder | bare forward | QG_AestheticScore path | PIL loop | ours/bare | ours/bare, median of rounds "
        "| PIL loop/ours | max score diff | ours - bare | preprocessing alone |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for arch in archs:
        r = bench_encoder(arch, args.rounds if arch == "ViT-B-32" else max(2, args.rounds // 2))
        print(
            f"| {arch} | {r['bare_s']:.2f} s | {r['ours_s']:.2f} s | {r['pil_loop_s']:.2f} s | "
            f"**{r['ours/bare']:.3f}** | {r['ours/bare per round']:.3f} | **{r['pil_loop/ours']:.2f}x** | "
            f"{r['max |ours - pil_loop| score']:.4f} | {r['ours - bare ms']:.0f} ms | {r['prep_s'] * 1000:.0f} ms |"
        )
    print("\n| QG_TechnicalScore | median | ms per megapixel (<= 30) |\n| --- | --- | --- |")
    for r in bench_technical(args.rounds):
        print(f"| {r['images']} | {r['ms']:.0f} ms | **{r['ms_per_MP']:.1f}** |")
    print(f"\n| peak memory, 64 images of 1024 px | chunks of {CHUNK} | one batch of 64 |\n| --- | --- | --- |")
    for arch in archs:
        r = bench_memory(arch)
        print(f"| {arch} | {r['chunks_MB']:.0f} MB | {r['one_batch_of_64_MB']:.0f} MB |")
    if not args.skip_server:
        r = bench_server()
        print("\n| real server, QG_AestheticScore on 16 x 1024 px, ViT-B-32 | first run | second run | encoder loads |")
        print("| --- | --- | --- | --- |")
        print(f"| | {r['first_run_s']:.2f} s | {r['second_run_s']:.2f} s | {r['encoder_loads']} |")
    print("load average at the end: %.2f %.2f %.2f (other work on the machine skews the times)" % os.getloadavg())
    print(f"\nmax RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
