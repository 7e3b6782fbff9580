"""Save Image with Scores and Apply Ranking on the real ComfyUI: the PNG files read back with PIL (ComfyUI's own
prompt and workflow chunks, the quality_gate chunk equal to the score nodes' reports and to /history), a server
started with --disable-metadata (no text chunks at all), a real Retry End history, and companion batches kept
aligned behind a real Rank Batch (technical scores: no weights needed)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import TEST_NODES
from harness import ComfyClient, ComfyServer
from helpers import Graph, recorded
from PIL import Image

WORKFLOW = {"nodes": [], "links": [], "extra": {"note": "the frontend's workflow, as extra_pnginfo"}}


@pytest.fixture(scope="module")
def bare_server(tmp_path_factory):
    """A ComfyUI started with --disable-metadata."""
    workdir = tmp_path_factory.mktemp("comfy-no-metadata")
    srv = ComfyServer(workdir=workdir, extra_args=["--disable-metadata"], node_roots=[TEST_NODES], name="no-metadata")
    yield srv.start()
    srv.stop()


def submit(server, prompt: dict) -> dict:
    """POST /prompt with the workflow as extra_pnginfo (as the web UI sends it); the finished history entry."""
    client = ComfyClient(server.url)
    try:
        body = {"prompt": prompt, "extra_data": {"extra_pnginfo": {"workflow": WORKFLOW}}}
        prompt_id = client.request("POST", "/prompt", body)["prompt_id"]
        return client.wait_finished(prompt_id, timeout=120)
    finally:
        client.close()


def ok(entry: dict) -> dict:
    assert entry["status"]["status_str"] == "success", json.dumps(entry["status"]["messages"])[-2000:]
    return entry["outputs"]


def error_text(entry: dict) -> str:
    assert entry["status"]["status_str"] == "error"
    return next(data["exception_message"] for event, data in entry["status"]["messages"] if event == "execution_error")


def files(server, ui: dict) -> list:
    return [server.output_dir / i["subfolder"] / i["filename"] for i in ui["images"]]


def pixels(path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype=np.float64) / 255.0


def noise_batch(graph: Graph, *seeds: int, size: int = 32) -> list:
    """A batch of noise images, one per seed (the last blurred: the least sharp, so ranked first in ascending
    order and the order is never the batch's own)."""
    images = [graph.out(graph.add("QGTest_Noise", seed=s, size=size)) for s in seeds]
    images[-1] = graph.out(graph.add("ImageBlur", image=images[-1], blur_radius=3, sigma=2.0))
    batch = images[0]
    for image in images[1:]:
        batch = graph.out(graph.add("ImageBatch", image1=batch, image2=image))
    return batch


def scored_save(graph: Graph, prefix: str) -> tuple[str, str, str]:
    """Three images, their technical scores and a 2:1 mix of technical and its inverse order, saved with both."""
    batch = noise_batch(graph, 1, 2, 3)
    technical = graph.add("QG_TechnicalScore", image=batch, reduce="max")
    combined = graph.add("QG_CombineScores", scores_a=graph.out(technical, 1), weight_a=2.0, reduce="max")
    save = graph.add(
        "QG_SaveImageWithScores",
        images=batch,
        filename_prefix=prefix,
        scores_a=graph.out(technical, 1),
        scores_c=graph.out(combined, 1),
    )
    return technical, combined, save


def test_pngs_carry_prompt_workflow_and_every_score(server, graph):
    technical, _, save = scored_save(graph, f"qg_scored/{graph.salt}")
    outputs = ok(submit(server, graph.nodes))
    report = outputs[technical]["qg_scores"][0]
    shown = outputs[save]["quality_gate"]
    paths = files(server, outputs[save])
    assert [p.name for p in paths] == [f"{graph.salt}_{n:05}_.png" for n in (1, 2, 3)]  # SaveImage's naming
    assert {p.parent.name for p in paths} == {"qg_scored"} and all(p.is_file() for p in paths)
    for i, path in enumerate(paths):
        with Image.open(path) as png:
            text = dict(png.text)
        assert set(text) == {"prompt", "workflow", "quality_gate"}
        assert json.loads(text["prompt"]) == graph.nodes and json.loads(text["workflow"]) == WORKFLOW
        chunk = json.loads(text["quality_gate"])
        assert chunk == shown[i]  # /history carries the same
        assert chunk["image"] == i and "loop" not in chunk
        a, c = chunk["scores"]
        assert (a["input"], a["metric"], a["model"]) == ("scores_a", "technical", "technical")
        assert a["value"] == report["scores"][i]  # exactly the score node's report
        assert (c["input"], c["metric"]) == ("scores_c", "2*technical") and c["value"] == pytest.approx(a["value"])


def test_the_loop_seed_and_attempt_of_the_kept_image(server, graph):
    """A real Retry End (best of 3, the second seed scores best): the saved image carries attempt 2 and its seed."""
    start = graph.add("QG_RetryStart", seed=5, max_attempts=3, seed_step=10)
    seed = graph.out(start, 1)
    image = graph.out(graph.add("QGTest_Noise", seed=seed, size=24))
    score = graph.add("QGTest_SeedScore", seed=seed, scores='{"5": 1.0, "15": 4.5, "25": 2.0}', default=0.0, label="s")
    end = graph.add(
        "QG_RetryEnd",
        loop=graph.out(start),
        candidate=image,
        score=graph.out(score),
        threshold=9.0,
        mode="best_of_n",
        on_fail="return_best",
    )
    technical = graph.add("QG_TechnicalScore", image=graph.out(end), reduce="max")
    save = graph.add(
        "QG_SaveImageWithScores",
        images=graph.out(end),
        filename_prefix=f"qg_loop_{graph.salt}",
        scores_b=graph.out(technical, 1),
        loop_history=graph.out(end, 5),
    )
    outputs = ok(submit(server, graph.nodes))
    (path,) = files(server, outputs[save])
    with Image.open(path) as png:
        chunk = json.loads(png.text["quality_gate"])
    assert chunk["loop"] == {"attempt": 2, "seed": 15, "score": 4.5, "attempts": 3}
    assert chunk["scores"] == [
        {
            "input": "scores_b",
            "metric": "technical",
            "model": "technical",
            "value": outputs[technical]["qg_scores"][0]["scores"][0],
        }
    ]
    assert outputs[save]["quality_gate"] == [chunk]


def test_disable_metadata_writes_no_text_chunk_but_history_keeps_the_scores(bare_server):
    graph = Graph()
    technical, _, save = scored_save(graph, "qg_bare")
    core = graph.add("SaveImage", images=graph.nodes[save]["inputs"]["images"], filename_prefix="qg_core")
    outputs = ok(submit(bare_server, graph.nodes))
    ours = files(bare_server, outputs[save])
    assert len(ours) == 3
    for path in ours + files(bare_server, outputs[core]):
        with Image.open(path) as png:
            assert png.text == {}, path.name  # like SaveImage: no prompt, no workflow, no quality_gate
    shown = outputs[save]["quality_gate"]
    assert [e["scores"][0]["value"] for e in shown] == outputs[technical]["qg_scores"][0]["scores"]


def test_a_scores_batch_of_another_size_names_the_node_and_input(server, graph):
    batch = noise_batch(graph, 1, 2)
    other = noise_batch(graph, 4, 5, 6)
    technical = graph.add("QG_TechnicalScore", image=other, reduce="max")
    save = graph.add(
        "QG_SaveImageWithScores", images=batch, filename_prefix="qg_mismatch", scores_b=graph.out(technical, 1)
    )
    message = error_text(submit(server, graph.nodes))
    assert f"Save Image with Scores (QG) #{save}: scores_b: expected one score per image (2 images), got 3" in message
    assert not list(server.output_dir.glob("qg_mismatch*"))  # nothing half-saved


def test_apply_ranking_keeps_latent_mask_and_image_aligned(server, graph):
    batch = noise_batch(graph, 1, 2, 3, 4)
    technical = graph.add("QG_TechnicalScore", image=batch, reduce="max")
    rank = graph.add(
        "QG_RankBatch",
        image=batch,
        scores=graph.out(technical, 1),
        top_k=3,
        min_score=-1e9,
        min_keep=1,
        order="ascending",
    )
    latent = graph.out(graph.add("QGTest_ImageLatent", image=batch))
    mask = graph.out(graph.add("ImageToMask", image=batch, channel="green"))
    inverted = graph.out(graph.add("ImageInvert", image=batch))
    apply = graph.add("QG_ApplyRanking", indices=graph.out(rank, 2), latent=latent, mask=mask, image=inverted)
    single = graph.add(
        "QG_ApplyRanking",
        indices=graph.out(rank, 2),
        mask=graph.out(graph.add("SolidMask", value=0.25, width=32, height=32)),
    )

    def save(image, name):
        return graph.add("SaveImage", images=image, filename_prefix=f"qg_rank_{graph.salt}/{name}")

    saves = {
        "all": save(batch, "all"),
        "ranked": save(graph.out(rank), "ranked"),
        "latent": save(graph.out(graph.add("QGTest_LatentImage", latent=graph.out(apply, 0))), "latent"),
        "mask": save(graph.out(graph.add("MaskToImage", mask=graph.out(apply, 1))), "mask"),
        "image": save(graph.out(apply, 2), "image"),
    }
    records = {
        "indices": graph.record(graph.out(rank, 2), "indices"),
        "latent": graph.record(graph.out(apply, 0), "latent"),
    }
    records["single"] = graph.record(graph.out(single, 1), "single")
    outputs = ok(submit(server, graph.nodes))
    result = SimpleNamespace(outputs=outputs)
    indices = [int(i) for i in recorded(result, records["indices"]).split(",")]
    assert len(indices) == 3 and indices != sorted(indices)  # a real reordering and a filter
    read = {name: [pixels(p) for p in files(server, outputs[node])] for name, node in saves.items()}
    for k, i in enumerate(indices):
        np.testing.assert_allclose(read["ranked"][k], read["all"][i], atol=1 / 255)
        np.testing.assert_allclose(read["latent"][k], read["all"][i], atol=1 / 255)
        np.testing.assert_allclose(read["image"][k], 1 - read["all"][i], atol=1 / 255)
        np.testing.assert_allclose(read["mask"][k][..., 0], read["all"][i][..., 1], atol=1 / 255)
    latent_value = recorded(result, records["latent"])
    assert latent_value["batch_index"] == indices  # the noise positions of the full batch, as Latent From Batch
    assert latent_value["samples"]["tensor"] == [3, 3, 32, 32]
    assert recorded(result, records["single"]) == {"tensor": [3, 32, 32], "sum": pytest.approx(0.25 * 3 * 32 * 32)}


def test_an_output_linked_without_its_input_is_an_error_naming_the_input(server, graph):
    batch = noise_batch(graph, 1, 2)
    technical = graph.add("QG_TechnicalScore", image=batch, reduce="max")
    rank = graph.add(
        "QG_RankBatch",
        image=batch,
        scores=graph.out(technical, 1),
        top_k=0,
        min_score=-1e9,
        min_keep=1,
        order="descending",
    )
    apply = graph.add("QG_ApplyRanking", indices=graph.out(rank, 2), image=batch)
    user = graph.record(graph.out(apply, 0), "latent")
    graph.record(graph.out(apply, 2), "image")
    message = error_text(submit(server, graph.nodes))
    assert (
        f"Apply Ranking (QG) #{apply}: the latent output feeds #{user}, but the latent input is not connected"
        in message
    )


def test_an_index_past_the_companion_batch_is_an_error(server, graph):
    batch = noise_batch(graph, 1, 2, 3)
    indices = graph.out(graph.add("PrimitiveString", value="2,5"))
    apply = graph.add("QG_ApplyRanking", indices=indices, image=batch)
    graph.record(graph.out(apply, 2), "image")
    message = error_text(submit(server, graph.nodes))
    assert f"Apply Ranking (QG) #{apply}: image: has 3 item(s) but indices asks for position 5" in message


def test_a_prefix_outside_the_output_folder_is_an_error_naming_it(server, graph):
    batch = noise_batch(graph, 1, 2)
    save = graph.add("QG_SaveImageWithScores", images=batch, filename_prefix=f"../qg_outside_{graph.salt}")
    message = error_text(submit(server, graph.nodes))
    assert message.startswith(f"Save Image with Scores (QG) #{save}: filename_prefix '../qg_outside_{graph.salt}' ")
    assert "outside the output folder" in message
    assert not list(server.output_dir.parent.glob(f"qg_outside_{graph.salt}*"))
