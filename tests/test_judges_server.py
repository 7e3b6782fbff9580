"""The newer judges on the real ComfyUI: tiny random-weight models of each family, saved in their published
layouts (HPSv2's ``{"state_dict"}`` .pt, PickScore's and SigLIP's Hugging Face folders, v2.5's head), loaded
through the nodes, and every score checked against the published formula computed here independently."""

from __future__ import annotations

import json
import shutil
import time

import pytest
import torch
from harness import ComfyClient
from helpers import Graph, batch_of, recorded, report_of, run_ok
from scoring_models import (
    LAION,
    PHOTOS,
    V2_HEAD,
    pil_image,
    reference_clip_iqa,
    reference_embeddings,
    reference_hps,
    reference_pickscore,
    reference_text,
    reference_v2_5,
    save_clip,
    save_hf_clip,
    save_hps,
    save_siglip,
    save_v2_5_head,
    tiny_config,
)

PROMPT = "a cat resting on a sofa"
PAIRS = [("Good photo.", "Bad photo."), ("Sharp photo.", "Blurry photo.")]
REL = 1e-3


@pytest.fixture(scope="module")
def judges(server, tmp_path_factory):
    """Each family's tiny model where a user puts the real one, and two photos of one size uploaded."""
    folder = tmp_path_factory.mktemp("judges")
    _, hps = save_hps(server.model_dir("open_clip"), "HPS_v2.1_tiny")
    scorers = server.model_dir("clip_scorers")
    pick = save_hf_clip(scorers / "PickScore_v1")
    siglip = save_siglip(scorers / "google" / "siglip-so400m-tiny", image_size=112)
    (scorers / "not-a-model").mkdir(exist_ok=True)
    (scorers / "not-a-model" / "notes.txt").write_text("no config.json here")
    head = save_v2_5_head(server.model_dir("aesthetic") / "aesthetic_predictor_v2_5_tiny.pth", 48)
    client = ComfyClient(server.url)
    photos, names = [], []
    for i, name in enumerate(PHOTOS):
        img = pil_image(LAION / name).crop((0, 0, 1000, 640))
        path = folder / f"qg-judge-{i}.png"
        img.save(path)
        photos.append(img)
        names.append(client.upload_image(path))
    client.close()
    return {"hps": hps, "pick": pick, "siglip": siglip, "head": head, "photos": photos, "names": names}


def photos(graph, judges):
    return batch_of(graph, *(graph.out(graph.add("LoadImage", image=name)) for name in judges["names"]))


def hf_loader(graph, model, head="none"):
    return graph.out(graph.add("QG_HFScorerLoader", model=model, head=head, precision="auto"))


def open_clip_loader(graph, encoder, head="none"):
    node = graph.add("QG_ScorerLoader", encoder=encoder, architecture="auto", head=head, precision="auto")
    return graph.out(node)


def scored(client, graph, node):
    graph.record(graph.out(node, 2))
    return report_of(run_ok(client, graph), node)


def test_the_loader_lists_folders_that_hold_a_config(client, judges):
    spec = client.get("/object_info/QG_HFScorerLoader")["QG_HFScorerLoader"]["input"]["required"]
    assert "PickScore_v1" in spec["model"][0] and "google/siglip-so400m-tiny" in spec["model"][0]
    assert "not-a-model" not in spec["model"][0]
    assert "aesthetic_predictor_v2_5_tiny.pth" in spec["head"][0]


def test_hps_scores_like_the_reference(client, graph, judges):
    node = graph.add(
        "QG_PreferenceScore",
        image=photos(graph, judges),
        scorer=open_clip_loader(graph, "HPS_v2.1_tiny.pt"),
        prompt=PROMPT,
    )
    report = scored(client, graph, node)
    assert report["scores"] == pytest.approx(reference_hps(judges["hps"], judges["photos"], PROMPT), rel=REL)
    assert report["formula"] == "cosine" and report["metric"] == "preference"
    assert report["score"] == max(report["scores"])


@pytest.mark.parametrize("values", ["score", "batch_softmax"])
def test_pickscore_scores_and_batch_softmax_like_the_reference(client, graph, judges, values):
    node = graph.add(
        "QG_PreferenceScore",
        image=photos(graph, judges),
        scorer=hf_loader(graph, "PickScore_v1"),
        prompt=PROMPT,
        values=values,
        reduce="mean",
    )
    score = graph.record(graph.out(node, 0), "score")
    graph.record(graph.out(node, 2))
    result = run_ok(client, graph)
    report = report_of(result, node)
    scores, softmax = reference_pickscore(judges["pick"], judges["photos"], PROMPT)
    assert report["preference"] == pytest.approx(scores, rel=REL)
    assert report["batch_softmax"] == pytest.approx(softmax, rel=REL)
    assert report["scores"] == pytest.approx(scores if values == "score" else softmax, rel=REL)
    assert report["formula"] == "logit_scale*cosine" and report["logit_scale"] == pytest.approx(100, rel=1e-4)
    assert recorded(result, score) == pytest.approx(sum(report["scores"]) / 2, rel=1e-6)


def test_clip_iqa_on_a_hugging_face_clip_like_the_reference(client, graph, judges):
    from transformers import CLIPImageProcessor

    pairs = "\n".join(f"{p} | {n}" for p, n in PAIRS)
    node = graph.add("QG_ClipIQA", image=photos(graph, judges), scorer=hf_loader(graph, "PickScore_v1"), pairs=pairs)
    report = scored(client, graph, node)
    model = judges["pick"]
    import open_clip

    with torch.no_grad():
        pixels = CLIPImageProcessor()(images=judges["photos"], return_tensors="pt")["pixel_values"]
        image = model.get_image_features(pixel_values=pixels)
        ids = open_clip.tokenizer.SimpleTokenizer()([t for pair in PAIRS for t in pair])
        text = model.get_text_features(input_ids=ids)
    image, text = (x if isinstance(x, torch.Tensor) else x.pooler_output for x in (image, text))
    expected = reference_clip_iqa(
        torch.nn.functional.normalize(image, dim=-1), torch.nn.functional.normalize(text, dim=-1)
    )
    assert report["scores"] == pytest.approx(expected, rel=REL)
    assert all(0 <= v <= 1 for v in report["scores"]) and report["pairs"] == [list(p) for p in PAIRS]


def test_aesthetic_v2_5_on_siglip_like_the_reference(client, graph, judges):
    scorer = hf_loader(graph, "google/siglip-so400m-tiny", "aesthetic_predictor_v2_5_tiny.pth")
    node = graph.add("QG_AestheticScore", image=photos(graph, judges), scorer=scorer)
    report = scored(client, graph, node)
    expected = reference_v2_5(judges["siglip"], judges["head"], judges["photos"])
    assert report["scores"] == pytest.approx(expected, rel=REL)
    assert report["crop"] == "squash" and "aesthetic_v2_5_layout" in report["model"]


def test_three_judges_on_one_scorer_encode_the_batch_once(server, client, judges):
    """Aesthetic, CLIP-IQA and prompt adherence on one open_clip scorer and one batch: one encoder pass
    (the scorer's counter, read after the three ran), and each judge agrees with its own reference."""
    shutil.copyfile(LAION / V2_HEAD, server.model_dir("aesthetic") / V2_HEAD)
    _, model = save_clip(server.model_dir("open_clip"), "qg-shared-encode", tiny_config(), seed=11)

    def run(names):
        g = Graph()
        scorer = open_clip_loader(g, "qg-shared-encode.safetensors", V2_HEAD)
        image = batch_of(g, *(g.out(g.add("LoadImage", image=name)) for name in names))
        nodes = [
            g.add("QG_AestheticScore", image=image, scorer=scorer),
            g.add("QG_ClipIQA", image=image, scorer=scorer),
            g.add("QG_PromptAdherence", image=image, scorer=scorer, prompt=PROMPT),
        ]
        links = {f"after_{k}": g.out(n, 2) for k, n in zip("abc", nodes, strict=True)}
        counter = g.add("QGTest_ScorerEncodes", scorer=scorer, **links)
        result = run_ok(client, g)
        return [report_of(result, n) for n in nodes], result.outputs[counter]["qg_encodes"][0]

    (aesthetic, iqa, adherence), encodes = run(judges["names"])
    assert encodes == 1
    image = reference_embeddings(model, judges["photos"])
    expected_iqa = reference_clip_iqa(image, reference_text(model, ["Good photo.", "Bad photo."]))
    assert iqa["scores"] == pytest.approx(expected_iqa, rel=REL)
    expected_clip = (100 * image @ reference_text(model, [PROMPT]).T)[:, 0].clamp(min=0).tolist()
    assert adherence["scores"] == pytest.approx(expected_clip, rel=REL, abs=1e-3)
    assert aesthetic["metric"] == "aesthetic"
    _, encodes = run(judges["names"][::-1])  # another batch: one more encode for the three judges
    assert encodes == 2


def test_free_releases_hugging_face_scorers(server, client, judges):
    """POST /free empties the scorer cache for Hugging Face folders too: the next run loads the folder again,
    and the run after that reuses it. Round after round, so a release that races ComfyUI's unloading (it
    killed the prompt worker once: every later prompt hung) shows up here."""

    def run(prompt):
        """PickScore, and HPS and v2.5 beside it: /free drops several models at once."""
        g = Graph()
        image = photos(g, judges)
        for scorer in (hf_loader(g, "PickScore_v1"), open_clip_loader(g, "HPS_v2.1_tiny.pt")):
            g.record(g.out(g.add("QG_PreferenceScore", image=image, scorer=scorer, prompt=prompt), 2))
        v2_5 = hf_loader(g, "google/siglip-so400m-tiny", "aesthetic_predictor_v2_5_tiny.pth")
        g.record(g.out(g.add("QG_AestheticScore", image=image, scorer=v2_5), 2))
        assert client.run(g.nodes, timeout=60).status == "success"

    def loads():
        return server.log().count("Quality Gate: loaded encoder PickScore_v1")

    run("a")
    for i in range(3):
        before = loads()
        client.request("POST", "/free", {"unload_models": True, "free_memory": True})
        run(f"b{i}")
        run(f"c{i}")
        assert loads() == before + 1
    # /free while a prompt runs: the scorers are released after it, when ComfyUI's worker takes the flags
    # (released at once, they left ComfyUI's list of loaded models while the worker walked it)
    g = Graph()
    node = g.add("QG_PreferenceScore", image=photos(g, judges), scorer=hf_loader(g, "PickScore_v1"), prompt="d")
    g.record(g.probe("slow", g.out(node, 2), delay=3.0))
    prompt_id = client.queue(g.nodes)
    deadline = time.monotonic() + 60
    while not g.counts(client).get("slow") and time.monotonic() < deadline:
        time.sleep(0.05)
    start = len(server.log())
    client.request("POST", "/free", {"unload_models": True, "free_memory": True})
    assert client.wait_finished(prompt_id, timeout=60)["status"]["status_str"] == "success"
    run("e")
    log = server.log()[start:]
    assert "Prompt executed" in log and "released" in log
    assert log.index("Prompt executed") < log.index("Quality Gate: POST /free released")
    assert "Exception in thread" not in server.log()


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("<!DOCTYPE html><html><body>Sign in</body></html>", "an HTML page"),
        ("version https://git-lfs.github.com/spec/v1\noid sha256:1\n", "Git LFS pointer"),
    ],
)
def test_a_bad_weights_file_names_the_node_and_the_folder(server, client, judges, content, expected):
    folder = server.model_dir("clip_scorers") / f"broken-{len(content)}"
    folder.mkdir(exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"model_type": "clip"}))
    (folder / "model.safetensors").write_text(content)
    g = Graph()
    node = g.add("QG_ClipIQA", image=photos(g, judges), scorer=hf_loader(g, folder.name))
    g.record(g.out(node, 2))
    result = client.run(g.nodes)
    assert result.status == "error"
    message = result.error["exception_message"]
    assert (
        "HF Scorer Loader (QG) #" in message and expected in message and f"{folder.name}/model.safetensors" in message
    )


def test_a_vision_only_scorer_is_refused_by_text_judges(client, judges):
    g = Graph()
    scorer = hf_loader(g, "google/siglip-so400m-tiny")
    node = g.add("QG_PreferenceScore", image=photos(g, judges), scorer=scorer, prompt=PROMPT)
    g.record(g.out(node, 2))
    result = client.run(g.nodes)
    assert result.status == "error"
    message = result.error["exception_message"]
    assert "Preference Score (QG) #" in message and "has no text encoder" in message


@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_every_precision_of_a_hugging_face_scorer_runs_and_agrees(client, judges, precision):
    """auto is fp32 on this CPU; bf16 and fp16 as asked give the same scores within their precision (0.005 of
    cosine, times PickScore's logit scale 100: 8 mantissa bits of bf16 on nearly orthogonal random embeddings)."""
    reports = {}
    for p in ("auto", precision):
        g = Graph()
        scorer = g.out(g.add("QG_HFScorerLoader", model="PickScore_v1", head="none", precision=p))
        node = g.add("QG_PreferenceScore", image=photos(g, judges), scorer=scorer, prompt=PROMPT)
        reports[p] = scored(client, g, node)
    tolerance = 1e-6 if precision == "fp32" else 0.5
    assert reports[precision]["scores"] == pytest.approx(reports["auto"]["scores"], abs=tolerance)
    assert reports[precision]["scores"] != reports["auto"]["scores"] or precision == "fp32"  # it really changed
