"""Unit tests of the plain logic under Save Image with Scores and Apply Ranking (no ComfyUI): the quality_gate
metadata, the Retry End history it reads, the PNG files, and companion batches in ranked order."""

import json
import math

import numpy
import pytest
import torch
from PIL import Image
from quality_gate.nodes.core.errors import QGError
from quality_gate.nodes.core.graph import consumers
from quality_gate.nodes.core.loop import Config, LoopSpec, State
from quality_gate.nodes.core.reorder import parse_indices, take, take_latent, take_mask
from quality_gate.nodes.core.saving import CHUNK, best_attempt, check_images, image_metadata, save_png, text_chunks
from quality_gate.nodes.core.score import Scores

NAN = float("nan")


def loop_state(scores, blocked=()):
    """A best_of_n Retry End state after ``scores`` (seed 40, step 3), attempts in ``blocked`` blocked."""
    state = State(Config(LoopSpec("1", 40, 3, len(scores)), 6.0, "best_of_n", "return_best", "9"))
    for attempt, score in enumerate(scores, 1):
        state = state.record_blocked() if attempt in blocked else state.record(f"image {attempt}", score)
    return state


@pytest.mark.parametrize(
    ("scores", "blocked"),
    [
        ([3.0, 7.5, 7.5, 1.0], ()),  # a tie keeps the earlier attempt
        ([NAN, 2.0, NAN], ()),  # NaN is worse than any number
        ([NAN, NAN], ()),  # nothing but NaN: the first attempt
        ([9.0, 4.0, 5.0], (1,)),  # a blocked attempt never wins
        ([-1.0, -3.0], ()),
    ],
)
def test_best_attempt_agrees_with_the_loop(scores, blocked):
    state = loop_state(scores, blocked)
    best = best_attempt(state.history_json())
    assert (best["attempt"], best["seed"], best["attempts"]) == (state.best_attempt, state.best_seed, len(scores))
    assert best["score"] == (None if math.isnan(state.best_score) else state.best_score)


def test_best_attempt_when_every_attempt_was_blocked():
    state = loop_state([1.0, 2.0], blocked=(1, 2))
    assert best_attempt(state.history_json()) == {"attempt": None, "seed": None, "score": None, "attempts": 2}


@pytest.mark.parametrize(
    "history", ["", "not json", "[]", "{}", '[{"attempt": 1}]', '[{"attempt": 1, "seed": 2, "score": "x"}]']
)
def test_best_attempt_rejects_what_retry_end_never_writes(history):
    with pytest.raises(QGError, match="loop_history"):
        best_attempt(history)


def test_image_metadata_has_every_score_per_image_and_nan_as_null():
    technical = Scores([6.5, NAN], "technical", "technical")
    clip = Scores([31.0, 28.25], "clip_score", "ViT-B-32")
    loop = {"attempt": 2, "seed": 43, "score": 6.5, "attempts": 3}
    meta = image_metadata(2, {"scores_a": technical, "scores_c": clip}, loop)
    assert meta[1] == {
        "version": 1,
        "image": 1,
        "scores": [
            {"input": "scores_a", "metric": "technical", "model": "technical", "value": None},
            {"input": "scores_c", "metric": "clip_score", "model": "ViT-B-32", "value": 28.25},
        ],
        "loop": loop,
    }
    assert meta[0]["scores"][0]["value"] == 6.5
    assert "loop" not in image_metadata(1, {})[0]


def test_image_metadata_names_the_input_whose_batch_differs():
    with pytest.raises(QGError, match=r"scores_b: expected one score per image \(3 images\), got 2 scores"):
        image_metadata(3, {"scores_a": Scores([1, 2, 3], "m"), "scores_b": Scores([1, 2], "m")})
    with pytest.raises(QGError, match="scores_a: expected QG_SCORES"):
        image_metadata(1, {"scores_a": [1.0]})


def test_png_keeps_comfyuis_chunks_and_adds_quality_gate(tmp_path):
    prompt = {"1": {"class_type": "EmptyImage", "inputs": {}}}
    workflow = {"nodes": [], "links": []}
    meta = image_metadata(1, {"scores_a": Scores([NAN], "technical", "technical")})[0]
    chunks = text_chunks(prompt, {"workflow": workflow}, meta)
    assert list(chunks) == ["prompt", "workflow", CHUNK]
    image = torch.rand(8, 6, 3)
    save_png(tmp_path / "a.png", image, chunks)
    with Image.open(tmp_path / "a.png") as png:
        assert json.loads(png.text["prompt"]) == prompt and json.loads(png.text["workflow"]) == workflow
        assert json.loads(png.text[CHUNK]) == meta  # NaN written as null: strict JSON
        assert png.size == (6, 8)
        assert (torch.tensor(numpy.array(png)).float() - image * 255).abs().max() <= 1
    save_png(tmp_path / "b.png", image, None)
    with Image.open(tmp_path / "b.png") as png:
        assert png.text == {}


def test_parse_indices():
    assert parse_indices("2,0") == [2, 0]
    assert parse_indices(" 3, 1 ,0") == [3, 1, 0]
    for bad in ("", "  ", "a,b", "1,-2", None):
        with pytest.raises(QGError, match="indices"):
            parse_indices(bad)


def test_take_orders_filters_and_names_an_index_out_of_range():
    batch = torch.arange(4.0).reshape(4, 1, 1, 1) * torch.ones(4, 2, 2, 3)
    assert take(batch, [2, 0], "image")[:, 0, 0, 0].tolist() == [2.0, 0.0]
    with pytest.raises(QGError, match=r"image: has 4 item\(s\) but indices asks for position 5"):
        take(batch, [5, 0], "image")
    with pytest.raises(QGError, match=r"image: has 1 item\(s\)"):
        take(batch[:1], [1], "image")  # only masks broadcast


def test_take_mask_broadcasts_a_single_mask():
    masks = torch.arange(3.0).reshape(3, 1, 1).expand(3, 4, 4)
    assert take_mask(masks, [1, 2])[:, 0, 0].tolist() == [1.0, 2.0]
    one = torch.full((1, 4, 4), 0.5)
    assert take_mask(one, [2, 0, 1]).shape == (3, 4, 4)
    assert take_mask(torch.ones(4, 4), [3, 1]).shape == (2, 4, 4)
    with pytest.raises(QGError, match="mask: expected a MASK"):
        take_mask(torch.ones(2, 2, 4, 4), [0])


def test_take_latent_orders_samples_noise_mask_and_noise_positions():
    samples = torch.arange(4.0).reshape(4, 1, 1, 1).expand(4, 4, 8, 8)
    latent = {"samples": samples, "noise_mask": torch.arange(4.0).reshape(4, 1, 1, 1), "extra": "kept"}
    ranked = take_latent(latent, [3, 1])
    assert ranked["samples"][:, 0, 0, 0].tolist() == [3.0, 1.0]
    assert ranked["noise_mask"].flatten().tolist() == [3.0, 1.0]
    assert ranked["batch_index"] == [3, 1]  # as Latent From Batch: each keeps its noise of the full batch
    assert ranked["extra"] == "kept" and "batch_index" not in latent
    shared = take_latent({"samples": samples, "noise_mask": torch.ones(1, 1, 8, 8), "batch_index": [7, 8, 9, 10]}, [2])
    assert shared["noise_mask"].shape[0] == 1 and shared["batch_index"] == [9]
    with pytest.raises(QGError, match="latent samples: has 4 item"):
        take_latent(latent, [4])
    with pytest.raises(QGError, match="latent: expected a LATENT"):
        take_latent(samples, [0])


def test_consumers_of_an_output():
    prompt = {
        "1": {"class_type": "A", "inputs": {}},
        "2": {"class_type": "B", "inputs": {"x": ["1", 0], "y": ["1", 2]}},
        "3": {"class_type": "C", "inputs": {"z": ["1", 2], "w": [1, 2]}},  # [1, 2] is a constant
    }
    assert consumers(prompt.__getitem__, prompt, "1", 2) == ["2", "3"]
    assert consumers(prompt.__getitem__, prompt, "1", 0) == ["2"]
    assert consumers(prompt.__getitem__, prompt, "1", 1) == []


@pytest.mark.parametrize("shape", [(0, 4, 4, 3), (1, 0, 4, 3), (1, 4, 4, 2), (4, 4, 3)])
def test_images_that_cannot_be_saved_are_named(shape):
    with pytest.raises(QGError, match="images: expected an IMAGE batch"):
        check_images(torch.zeros(shape))
    check_images(torch.zeros(2, 4, 4, 1))
