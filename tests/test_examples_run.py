"""Every API-format example runs end to end on a real ComfyUI, with no downloaded weights:

- checkpoint examples on the random-weight SD15 checkpoint (dev/random_checkpoint.py, built once and cached in
  ``.qg-cache/``), linked into the server's checkpoints folder under every file name the examples use, at 64 px
  and 3-4 steps, so KSampler, VAE decode/encode and the upscale really run;
- scoring examples on small random-weight open_clip models (a ViT-L/14-wide one and an HPSv2.1-shaped
  ``{"state_dict"}`` .pt) and an aesthetic head (tests/scoring_models.py) placed under the file names the
  examples use;
- the templates through the pack's routes with the pack's client (client/).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from harness import ComfyClient, ComfyServer
from PIL import Image
from random_checkpoint import install
from scoring_models import save_clip, save_hps, save_v1_head, tiny_config

from client import Client

ROOT = Path(__file__).resolve().parents[1]
API = ROOT / "example_workflows" / "api"

CHECKPOINTS = (
    "v1-5-pruned-emaonly.safetensors",
    "sd_xl_base_1.0.safetensors",
    "sd_xl_refiner_1.0.safetensors",
    "realistic_sd15.safetensors",
    "anime_sd15.safetensors",
)


@pytest.fixture(scope="module")
def examples_server(tmp_path_factory):
    """A ComfyUI of its own (the big models leave with it), with every model file the examples name."""
    srv = ComfyServer(workdir=tmp_path_factory.mktemp("comfy-examples"), name="examples")
    for name in CHECKPOINTS:
        install(srv.model_dir("checkpoints"), name)
    save_clip(srv.model_dir("open_clip"), "open_clip_model", tiny_config(), seed=5)
    save_hps(srv.model_dir("open_clip"), "HPS_v2.1_compressed", seed=5)
    torch.manual_seed(5)
    save_v1_head(srv.model_dir("aesthetic") / "sac+logos+ava1-l14-linearMSE.pth", torch.randn(768), bias=5.0)
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def run(examples_server):
    client = ComfyClient(examples_server.url, server=examples_server)
    yield client.run
    client.close()


def load(name: str) -> dict:
    return json.loads((API / f"{name}.json").read_text())


def shrink(workflow: dict, attempts: int = 2) -> dict:
    """The same graph at test size: 64 px latents, 3-4 steps, a 2x upscale to 128 px, fewer attempts, images
    without a model at a quarter of their size."""
    for node in workflow.values():
        inputs, kind = node["inputs"], node["class_type"]
        if kind == "EmptyLatentImage":
            inputs.update(width=64, height=64)
        elif kind == "KSampler":
            inputs["steps"] = 4 if inputs["denoise"] == 1.0 else 3
        elif kind == "KSamplerAdvanced":  # base 0-3, refiner 3-4 of 4 steps
            base = inputs["add_noise"] == "enable"
            inputs.update(steps=4, start_at_step=0 if base else 3, end_at_step=3 if base else 4)
        elif kind == "ImageScale":
            inputs.update(width=128, height=128)
        elif kind == "EmptyImage" and isinstance(inputs["width"], int):  # a quarter, blur and positions to match
            inputs.update(width=inputs["width"] // 4, height=inputs["height"] // 4)
        elif kind == "ImageCompositeMasked":
            inputs.update(x=inputs["x"] // 4, y=inputs["y"] // 4)
        elif kind == "ImageBlur":
            inputs.update(blur_radius=max(1, inputs["blur_radius"] // 4), sigma=max(0.1, inputs["sigma"] / 4))
        elif kind == "QG_RetryStart":
            inputs["max_attempts"] = attempts
    return workflow


def saved(server, result, node: str) -> list:
    images = result.outputs.get(node, {}).get("images", [])
    return [Image.open(server.output_dir / i["subfolder"] / i["filename"]) for i in images]


def preview(result, node: str) -> str:
    return result.outputs[node]["text"][0]


def succeeded(result) -> None:
    assert result.status == "success", result.error


def test_hires_fix_quality_gate_runs_the_second_pass_only_for_good_drafts(run, examples_server):
    workflow = shrink(load("hires_fix_quality_gate"))
    workflow["8"]["inputs"]["value"] = 0.0  # every draft passes
    passed = run(workflow)
    succeeded(passed)
    assert [img.size for img in saved(examples_server, passed, "15")] == [(128, 128)]
    assert {"11", "12", "13", "14"} <= passed.executed
    workflow["8"]["inputs"]["value"] = 10.5  # no draft reaches it: the gate blocks the hi-res pass
    workflow["5"]["inputs"]["seed"] = 7
    blocked = run(workflow)
    succeeded(blocked)
    assert "15" not in blocked.outputs and blocked.outputs["16"]["images"]
    # the executor still visits blocked nodes (an "executing" event) but never calls them: no sampling progress
    assert {p["node"] for p in blocked.progress} == {"5"}
    assert {p["node"] for p in passed.progress} == {"5", "13"}
    assert "False" in preview(blocked, "17") or "false" in preview(blocked, "17").lower()


def test_retry_until_quality_loops_until_the_threshold(run, examples_server):
    workflow = shrink(load("retry_until_quality"))
    workflow["9"]["inputs"]["threshold"] = 10.5  # unreachable: every attempt runs, the best is returned
    result = run(workflow)
    succeeded(result)
    assert [e["attempt"] for e in result.loop_events] == [1, 2]
    history = json.loads(preview(result, "11"))
    assert [h["seed"] for h in history] == [42, 43]
    assert [img.size for img in saved(examples_server, result, "10")] == [(64, 64)]
    workflow["9"]["inputs"]["threshold"] = 0.0  # the first attempt passes
    workflow["4"]["inputs"]["seed"] = 100
    first = run(workflow)
    succeeded(first)
    assert [e["attempt"] for e in first.loop_events] == [1]


def test_sdxl_refiner_best_of_n_keeps_the_most_aesthetic(run, examples_server):
    result = run(shrink(load("sdxl_refiner_best_of_n")))
    succeeded(result)
    assert [e["attempt"] for e in result.loop_events] == [1, 2]
    history = json.loads(preview(result, "16"))
    best = max(history, key=lambda h: h["score"])
    assert result.loop_events[-1]["best_attempt"] == best["attempt"]
    assert [img.size for img in saved(examples_server, result, "14")] == [(64, 64)]


def test_best_of_n_saved_with_scores_writes_the_judges_mix_seed_and_attempt_into_the_png(run, examples_server):
    result = run(shrink(load("best_of_n_saved_with_scores")))
    succeeded(result)
    history = json.loads(preview(result, "17"))
    best = max(history, key=lambda h: h["score"])  # max keeps the first of equal scores, as the loop does
    assert result.loop_events[-1]["best_attempt"] == best["attempt"]
    (png,) = saved(examples_server, result, "16")
    assert png.size == (64, 64) and json.loads(png.text["prompt"])["16"]["class_type"] == "QG_SaveImageWithScores"
    chunk = json.loads(png.text["quality_gate"])
    assert chunk == result.outputs["16"]["quality_gate"][0]
    assert chunk["loop"] == {**best, "attempts": 2}
    preference, technical = chunk["scores"]
    assert (preference["metric"], technical["metric"]) == ("preference", "technical")
    assert "HPS_v2.1_compressed" in preference["model"]
    assert preference["value"] == result.outputs["14"]["qg_scores"][0]["scores"][0]
    assert technical["value"] == result.outputs["15"]["qg_scores"][0]["scores"][0]
    # the kept image's judges, mixed with the example's weights, give the score the loop kept it for
    assert (20 * preference["value"] + technical["value"]) / 21 == pytest.approx(best["score"], rel=1e-5)


def test_model_by_subject_loads_only_the_chosen_checkpoint(run, examples_server):
    workflow = shrink(load("model_by_subject"))
    chosen = []
    for labels in (None, "\n".join(reversed(workflow["5"]["inputs"]["labels"].splitlines()))):
        if labels:  # the same prompt with the labels swapped picks the other checkpoint
            workflow["5"]["inputs"]["labels"] = labels
        result = run(workflow)
        succeeded(result)
        probabilities = json.loads(preview(result, "15"))["probabilities"]
        index = probabilities.index(max(probabilities)) + 1
        loader = {1: "2", 2: "3"}[index]
        assert loader in result.executed and ({"2", "3"} - {loader}).isdisjoint(result.executed)
        assert [img.size for img in saved(examples_server, result, "14")] == [(64, 64)]
        chosen.append(loader)
    assert sorted(chosen) == ["2", "3"]


def test_technical_score_example_needs_no_weights_and_keeps_the_sharp_image(run, examples_server):
    result = run(shrink(load("technical_score_no_weights")))
    succeeded(result)
    scores = json.loads(preview(result, "10"))["scores"]
    assert scores[0] > scores[1] > scores[2]  # sharp, blurred, blank
    assert preview(result, "11") == "0"
    assert len(saved(examples_server, result, "9")) == 1


def test_logic_switch_gate_example_runs(run, examples_server):
    result = run(load("logic_switch_gate"))
    succeeded(result)
    assert "3" in result.executed and "5" not in result.executed  # a night prompt: the day branch never runs
    assert len(saved(examples_server, result, "9")) == 1


@pytest.fixture(scope="module")
def qg(examples_server):
    with Client(examples_server.url) as client:
        yield client


def test_batch_template_runs_and_sweeps_through_the_pack_client(qg):
    params = {"size": 64, "steps": 3, "prompt": "a lighthouse at night"}
    one = qg.run("template_batch_txt2img", {**params, "seed": 5}, timeout=300)
    assert one.status == "success", one.error
    assert one.params["seed"] == 5 and one.params["size"] == 64
    assert "image" in one.outputs
    runs = qg.sweep("template_batch_txt2img", {"seed": [1, 2]}, params=params, timeout=300)
    assert [r.status for r in runs] == ["success", "success"]
    assert sorted(r.params["seed"] for r in runs) == [1, 2]


def test_solid_image_template_runs_through_the_pack_client(qg):
    result = qg.run("template_solid_image", {}, timeout=120)
    assert result.status == "success", result.error
    assert "image" in result.outputs
