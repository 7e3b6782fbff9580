"""The scoring nodes on the real ComfyUI: random-weight open_clip models built here and the real LAION heads,
loaded through QG_ScorerLoader, compared with open_clip's own reference computation."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from harness import ComfyClient
from helpers import batch_of, recorded, report_of, run_ok
from PIL import Image
from scoring_models import (
    LAION,
    PHOTOS,
    V1_HEAD,
    V2_HEAD,
    build_clip,
    pil_image,
    reference_embeddings,
    reference_head,
    reference_text,
    save_clip,
    save_v1_head,
    tiny_config,
)

ENCODER = "qg-tiny-l14.safetensors"
TOLERANCE = 0.05
CATS = ("cat_a", "cat_b")


@pytest.fixture(scope="module")
def models(server, tmp_path_factory):
    """A random-weight ViT (embed_dim 768) with its sidecar config, the LAION heads, a discriminating v1 head,
    and the test photos cropped to one size (so they batch) uploaded to the server."""
    folder = tmp_path_factory.mktemp("score")
    _, model = save_clip(server.model_dir("open_clip"), "qg-tiny-l14", tiny_config(), seed=3)
    heads = server.model_dir("aesthetic")
    for name in (V2_HEAD, V1_HEAD):
        shutil.copyfile(LAION / name, heads / name)
    client = ComfyClient(server.url)
    tall = Image.new("RGB", (300, 900))
    for y in range(900):
        tall.paste((y % 256, (3 * y) % 256, 255 - y % 256), (0, y, 300, y + 1))
    tall_b = Image.new("RGB", (300, 900))
    for x in range(300):
        tall_b.paste(((7 * x) % 256, 128, (x * x) % 256), (x, 0, x + 1, 900))
    pictures = {"tall": tall, "tall_b": tall_b}
    pictures.update(
        {key: pil_image(LAION / name).crop((0, 0, 1500, 770)) for key, name in zip(CATS, PHOTOS, strict=True)}
    )
    images = {}
    for key, img in pictures.items():
        path = folder / f"qg-score-{key}.png"
        img.save(path)
        images[key] = (client.upload_image(path), img)
    ref = {key: reference_embeddings(model, [img])[0] for key, (_, img) in images.items()}
    # A v1-format head along the difference of two images' embeddings: scores that differ a lot between
    # images, so agreement with the reference is a sharp test.
    direction = torch.nn.functional.normalize(ref["tall"] - ref["tall_b"], dim=0) * 40
    save_v1_head(heads / "qg-discriminating.pth", direction, bias=1.0)
    client.close()
    return {"model": model, "images": images, "ref": ref, "heads": heads}


def loader(graph, head="none", encoder=ENCODER, **extra):
    return graph.out(
        graph.add("QG_ScorerLoader", encoder=encoder, architecture="auto", head=head, precision="auto", **extra)
    )


def load(graph, models, key):
    return graph.out(graph.add("LoadImage", image=models["images"][key][0]))


def batch(graph, models, *keys):
    return batch_of(graph, *(load(graph, models, key) for key in keys))


def refs(models, *keys):
    return torch.stack([models["ref"][k] for k in keys])


def record_scores(graph, scores_link):
    return graph.record(scores_link, "report")


def loads(server) -> int:
    return server.log().count("Quality Gate: loaded encoder")


@pytest.mark.parametrize("head", [V2_HEAD, V1_HEAD])
def test_real_heads_score_every_photo_like_the_reference(client, graph, models, head):
    node = graph.add("QG_AestheticScore", image=batch(graph, models, *CATS), scorer=loader(graph, head))
    graph.record(graph.out(node, 2))
    result = run_ok(client, graph)
    report = report_of(result, node)
    assert report["scores"] == pytest.approx(reference_head(models["heads"] / head, refs(models, *CATS)), abs=TOLERANCE)
    assert report["score"] == pytest.approx(max(report["scores"]), abs=1e-6)
    assert report["metric"] == "aesthetic" and head in report["model"]
    assert result.outputs[node]["text"][1].startswith("#0 ")


def test_aesthetic_scores_every_image_of_a_batch_like_the_reference(client, graph, models):
    head = "qg-discriminating.pth"
    keys = ("tall", "tall_b", "tall")
    node = graph.add("QG_AestheticScore", image=batch(graph, models, *keys), scorer=loader(graph, head))
    graph.record(graph.out(node, 2))
    report = report_of(run_ok(client, graph), node)
    expected = reference_head(models["heads"] / head, refs(models, *keys))
    assert report["scores"] == pytest.approx(expected, abs=TOLERANCE)
    assert abs(expected[0] - expected[1]) > 20 * TOLERANCE  # the images differ by far more than the tolerance


def test_reduce_and_outputs_reach_downstream_nodes(client, graph, models):
    scorer = loader(graph, "qg-discriminating.pth")
    image = batch(graph, models, "tall", "tall_b")
    reduced = {}
    for how in ("max", "mean", "min", "first"):
        node = graph.add("QG_AestheticScore", image=image, scorer=scorer, reduce=how)
        reduced[how] = graph.record(graph.out(node, 0), how)
    result = run_ok(client, graph)
    values = {how: recorded(result, node) for how, node in reduced.items()}
    expected = reference_head(models["heads"] / "qg-discriminating.pth", refs(models, "tall", "tall_b"))
    assert values["max"] == pytest.approx(max(expected), abs=TOLERANCE)
    assert values["min"] == pytest.approx(min(expected), abs=TOLERANCE)
    assert values["mean"] == pytest.approx(sum(expected) / 2, abs=TOLERANCE)
    assert values["first"] == pytest.approx(expected[0], abs=TOLERANCE)


def _pil_reference(models, img, mode):
    """pad and multi computed independently with PIL: pad = longest side to 224 on a mean-coloured square;
    multi = mean score of three 224 squares (start, center, end) after the shortest side went to 224."""
    import numpy as np
    from open_clip.transform import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD

    def encode(squares):
        x = torch.stack([torch.from_numpy(np.asarray(sq, dtype=np.float32) / 255).permute(2, 0, 1) for sq in squares])
        mean, std = (
            torch.tensor(OPENAI_DATASET_MEAN).view(1, 3, 1, 1),
            torch.tensor(OPENAI_DATASET_STD).view(1, 3, 1, 1),
        )
        with torch.no_grad():
            return torch.nn.functional.normalize(models["model"].encode_image((x - mean) / std), dim=-1)

    w, h = img.size
    if mode == "pad":
        scale = 224 / max(w, h)
        small = img.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.BICUBIC)
        canvas = Image.new("RGB", (224, 224), tuple(round(255 * m) for m in OPENAI_DATASET_MEAN))
        canvas.paste(small, ((224 - small.width) // 2, (224 - small.height) // 2))
        return encode([canvas]), 1
    scale = 224 / min(w, h)
    nw, nh = (224, int(224 * h / w)) if w <= h else (int(224 * w / h), 224)
    small = img.resize((nw, nh), Image.BICUBIC)
    long = max(nw, nh)
    starts = (0, int(round((long - 224) / 2)), long - 224)
    boxes = [(0, s, 224, s + 224) if nh > nw else (s, 0, s + 224, 224) for s in starts]
    return encode([small.crop(b) for b in boxes]), 3


@pytest.mark.parametrize("mode", ["pad", "multi"])
def test_pad_and_multi_serve_tall_images(client, graph, models, mode):
    head = "qg-discriminating.pth"
    node = graph.add("QG_AestheticScore", image=load(graph, models, "tall"), scorer=loader(graph, head), crop=mode)
    center = graph.add("QG_AestheticScore", image=load(graph, models, "tall"), scorer=loader(graph, head))
    graph.record(graph.out(node, 2))
    center_report = graph.record(graph.out(center, 2), "center")  # (the node itself may come from the cache)
    result = run_ok(client, graph)
    emb, crops = _pil_reference(models, models["images"]["tall"][1], mode)
    per_crop = reference_head(models["heads"] / head, emb)
    assert report_of(result, node)["scores"][0] == pytest.approx(sum(per_crop) / crops, abs=TOLERANCE)
    assert report_of(result, node)["crop"] == mode
    assert abs(report_of(result, node)["score"] - json.loads(recorded(result, center_report))["score"]) > TOLERANCE


def test_prompt_adherence_matches_the_clip_score_reference(client, graph, models):
    prompts = ["a cat on a sofa", "a red car", "stripes"]
    keys = ("tall", "tall_b")
    image = batch(graph, models, *keys)
    nodes = {}
    for p in prompts:
        nodes[p] = graph.add("QG_PromptAdherence", image=image, scorer=loader(graph), prompt=p, reduce="mean")
        graph.record(graph.out(nodes[p], 2), p)
    result = run_ok(client, graph)
    text = reference_text(models["model"], prompts)
    for i, p in enumerate(prompts):
        expected = (100 * refs(models, *keys) @ text[i]).clamp(min=0).tolist()
        assert report_of(result, nodes[p])["scores"] == pytest.approx(expected, abs=TOLERANCE)
        assert report_of(result, nodes[p])["metric"] == "clip_score"


def test_zero_shot_text_and_image_route_a_select(client, graph, models):
    names = ["a photo of a dog", "a photo of a cat", "a landscape"]
    scorer = loader(graph)
    by_text = graph.add("QG_ZeroShotClassify", scorer=scorer, labels="\n".join(names), text="a photo of a cat")
    by_image = graph.add(
        "QG_ZeroShotClassify", scorer=scorer, labels="\n".join(names), text="", image=load(graph, models, "tall")
    )
    select = graph.add(
        "QG_Select",
        mode="index",
        index=graph.out(by_text, 1),
        input_1=graph.probe("dog-model"),
        input_2=graph.probe("cat-model"),
        input_3=graph.probe("landscape-model"),
    )
    graph.record(graph.out(select), "chosen")
    image_report = graph.record(graph.out(by_image, 3), "image-report")
    result = run_ok(client, graph)
    assert graph.counts(client) == {"cat-model": 1, "chosen": 1, "image-report": 1}
    probs = (100 * refs(models, "tall") @ reference_text(models["model"], names).T).softmax(dim=-1)[0]
    report = json.loads(recorded(result, image_report))
    assert report["probabilities"] == pytest.approx(probs.tolist(), abs=1e-3)
    assert report["per_image"][0]["index"] == int(probs.argmax()) + 1


def test_second_run_loads_nothing_again_and_free_releases_the_encoder(server, client, graph, models):
    """Runs reuse the loaded encoder; POST /free with unload_models and free_memory releases it, and the next
    run loads it once again (and keeps it from then on)."""

    def run(seed_image):
        g = type(graph)()
        node = g.add("QG_PromptAdherence", image=load(g, models, seed_image), scorer=loader(g), prompt="a cat")
        g.record(g.out(node, 2))
        return run_ok(client, g)

    run("tall")
    before = loads(server)
    run("img0" if "img0" in models["images"] else "tall")
    assert loads(server) == before
    client.request("POST", "/free", {"unload_models": True, "free_memory": True})
    run("tall")
    run("tall_b")
    assert loads(server) == before + 1


@pytest.mark.parametrize("body", [{"unload_models": True}, {"free_memory": True}, {"unload_models": False}])
def test_free_releases_the_scorer_cache(server, client, models, body):
    """Either flag of POST /free empties the scorer cache: the next Scorer Loader that runs loads its encoder
    again. Its head changes between the runs, so the loader itself is not a cache hit of ComfyUI's executor
    (unload_models alone keeps the executor's outputs). Neither flag set: nothing is released."""
    from helpers import Graph

    def run(head):
        g = Graph()
        node = g.add("QG_PromptAdherence", image=load(g, models, "tall"), scorer=loader(g, head), prompt="a dog")
        g.record(g.out(node, 2))
        run_ok(client, g)

    run("none")
    before = loads(server)
    client.request("POST", "/free", body)
    run("qg-discriminating.pth")
    assert loads(server) == before + (1 if any(body.values()) else 0)
    run("none")  # the loader is reused again after the release
    assert loads(server) == before + (1 if any(body.values()) else 0)


@pytest.mark.parametrize("bad", ["nan", "inf", "-inf"])
def test_nan_or_inf_pixels_are_flagged_not_scored(client, graph, models, bad):
    """An image with a NaN or infinite pixel would otherwise be clipped to an ordinary 8-bit picture and get
    an ordinary score: it scores NaN (null in the report), the report's flags name it, the reduced score
    comes from the other images, and zero-shot classification leaves it out of the vote."""
    head = "qg-discriminating.pth"
    image = graph.out(graph.add("QGTest_Poison", image=batch(graph, models, "tall", "tall_b"), index=1, value=bad))
    aesthetic = graph.add("QG_AestheticScore", image=image, scorer=loader(graph, head), reduce="max")
    adherence = graph.add("QG_PromptAdherence", image=image, scorer=loader(graph, head), prompt="stripes")
    classify = graph.add("QG_ZeroShotClassify", scorer=loader(graph, head), labels="stripes\ndots", image=image)
    score = graph.record(graph.out(aesthetic, 0), "score")
    graph.record(graph.out(adherence, 2), "adherence")
    label = graph.record(graph.out(classify, 3), "classify")
    result = run_ok(client, graph)
    expected = reference_head(models["heads"] / head, refs(models, "tall"))[0]
    for node in (aesthetic, adherence):
        report = report_of(result, node)
        assert report["scores"][1] is None and report["scores"][0] is not None
        assert report["flags"] == [{"image": 1, "flag": "nan_inf"}]
        assert "NaN/Inf" in result.outputs[node]["text"][2]
    assert report_of(result, aesthetic)["scores"][0] == pytest.approx(expected, abs=TOLERANCE)
    assert recorded(result, score) == pytest.approx(expected, abs=TOLERANCE)
    classified = json.loads(recorded(result, label))
    assert classified["flags"] == [{"image": 1, "flag": "nan_inf"}] and classified["per_image"][1]["index"] == 0


def test_bad_head_file_is_an_error_naming_node_file_and_expectation(server, client, graph, models):
    (server.model_dir("aesthetic") / "page.pth").write_text("<!DOCTYPE html><html><body>Not Found</body></html>")
    (server.model_dir("aesthetic") / "lfs.pth").write_text("version https://git-lfs.github.com/spec/v1\noid sha256:1\n")
    (server.model_dir("aesthetic") / "b32.pth").write_bytes(b"")
    save_v1_head(server.model_dir("aesthetic") / "b32.pth", torch.ones(512))
    for name, expected in (("page.pth", "HTML page"), ("lfs.pth", "Git LFS pointer"), ("b32.pth", "512-wide")):
        g = type(graph)()
        node = g.add("QG_AestheticScore", image=load(g, models, "tall"), scorer=loader(g, name))
        g.record(g.out(node, 0))
        result = client.run(g.nodes)
        assert result.status == "error"
        message = result.error["exception_message"]
        assert "Scorer Loader (QG) #" in message and expected in message and name in message


def test_sidecar_json_is_not_listed_as_an_encoder(client, models):
    spec = client.get("/object_info/QG_ScorerLoader")["QG_ScorerLoader"]["input"]["required"]
    assert ENCODER in spec["encoder"][0] and not any(x.endswith(".json") for x in spec["encoder"][0])
    assert spec["head"][0][0] == "none" and "auto" == spec["architecture"][0][0]
    assert "ViT-L-14-quickgelu" in spec["architecture"][0]


def test_technical_score_ranks_a_batch(client, graph, models):
    photo = load(graph, models, "tall")
    blurred = graph.out(graph.add("ImageBlur", image=photo, blur_radius=15, sigma=6.0))
    black = graph.out(graph.add("EmptyImage", width=300, height=900, batch_size=1, color=0))
    image = batch_of(graph, photo, blurred, black)
    tech = graph.add("QG_TechnicalScore", image=image, reduce="min")
    rank = graph.add("QG_RankBatch", image=image, scores=graph.out(tech, 1), min_score=1.0)
    indices = graph.record(graph.out(rank, 2), "indices")
    count = graph.record(graph.out(rank, 3), "count")
    ranked = graph.record(graph.out(rank, 0), "ranked")
    result = run_ok(client, graph)
    report = report_of(result, tech)
    sharp, soft, dark = report["scores"]
    assert sharp > soft > dark == 0 and report["score"] == 0
    assert "black" in json.dumps(report["details"][2])
    assert recorded(result, indices) == "0,1" and recorded(result, count) == 2
    assert recorded(result, ranked)["tensor"] == [2, 900, 300, 3]


def test_pack_loads_without_open_clip(tmp_path_factory):
    """A user who cloned without installing requirements: open_clip cannot be imported (a package that raises
    ImportError shadows it on PYTHONPATH). Logic and technical nodes work, the loader says what to install."""
    from conftest import TEST_NODES
    from harness import ComfyServer
    from helpers import Graph

    shadow = tmp_path_factory.mktemp("no-open-clip")
    (shadow / "open_clip").mkdir()
    (shadow / "open_clip" / "__init__.py").write_text("raise ImportError(\"No module named 'open_clip'\")\n")
    workdir = tmp_path_factory.mktemp("comfy-no-open-clip")
    with ComfyServer(
        workdir=workdir, node_roots=[TEST_NODES], name="no-open-clip", env={"PYTHONPATH": str(shadow)}
    ) as srv:
        (srv.model_dir("open_clip") / "enc.safetensors").write_bytes(b"\0" * 16)
        client = ComfyClient(srv.url)
        try:
            g = Graph()
            image = g.out(g.add("EmptyImage", width=64, height=64, batch_size=1, color=0x808080))
            tech = g.add("QG_TechnicalScore", image=image)
            compare = g.add("QG_Compare", a=g.out(tech, 0), comparison="greater_equal", b=0.0)
            g.record(g.out(compare, 0))
            assert client.run(g.nodes).status == "success"
            g = Graph()
            scorer = loader(g, encoder="enc.safetensors")
            g.record(g.out(g.add("QG_ZeroShotClassify", scorer=scorer, labels="a\nb", text="a"), 0))
            result = client.run(g.nodes)
            assert result.status == "error"
            assert "pip install open-clip-torch" in result.error["exception_message"]
            assert "Scorer Loader (QG) #" in result.error["exception_message"]
            assert "pip install open-clip-torch" in srv.log()
        finally:
            client.close()


def test_comfyui_clip_vision_can_replace_the_open_clip_encoder(server, client, graph, models, tmp_path):
    """A random-weight OpenAI-layout ViT-L/14 vision tower (the shape CLIPVisionLoader detects) saved in
    open_clip's format, loaded by ComfyUI's own CLIPVisionLoader and scored through QG_ScorerLoader's
    clip_vision input, against open_clip's reference on the same weights."""
    from safetensors.torch import save_file

    config = {**tiny_config(), "vision_cfg": {"image_size": 224, "layers": 24, "width": 1024, "patch_size": 14}}
    model = build_clip(config, seed=5)
    state = {k: v.half().contiguous() for k, v in model.state_dict().items() if k.startswith("visual.")}
    save_file(state, str(server.model_dir("clip_vision") / "qg-rand-vitl.safetensors"))
    model = model.half().float()  # the reference sees the same fp16-rounded weights
    keys = [*CATS, "tall"]
    ref = torch.cat([reference_embeddings(model, [models["images"][k][1]]) for k in keys])
    direction = torch.nn.functional.normalize(ref[0] - ref[2], dim=0) * 40
    save_v1_head(server.model_dir("aesthetic") / "qg-vitl-discriminating.pth", direction, bias=2.0)
    vision = graph.out(graph.add("CLIPVisionLoader", clip_name="qg-rand-vitl.safetensors"))
    nodes = {}
    for head in (V2_HEAD, "qg-vitl-discriminating.pth"):
        scorer = loader(graph, head, encoder="none", clip_vision=vision)
        for key in keys:
            nodes[head, key] = graph.add("QG_AestheticScore", image=load(graph, models, key), scorer=scorer)
            graph.record(graph.out(nodes[head, key], 2), f"{head}-{key}")
    result = run_ok(client, graph)
    for head in (V2_HEAD, "qg-vitl-discriminating.pth"):
        expected = reference_head(server.model_dir("aesthetic") / head, ref)
        got = [report_of(result, nodes[head, key])["scores"][0] for key in keys]
        assert got == pytest.approx(expected, abs=TOLERANCE)
        assert "ComfyUI CLIP vision" in report_of(result, nodes[head, keys[0]])["model"]
    assert abs(expected[0] - expected[2]) > 20 * TOLERANCE


@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_every_precision_runs_and_agrees_with_fp32(client, graph, models, precision):
    scorer = graph.out(
        graph.add(
            "QG_ScorerLoader", encoder=ENCODER, architecture="auto", head="qg-discriminating.pth", precision=precision
        )
    )
    node = graph.add("QG_AestheticScore", image=load(graph, models, "tall"), scorer=scorer)
    graph.record(graph.out(node, 2))
    result = run_ok(client, graph)
    expected = reference_head(models["heads"] / "qg-discriminating.pth", refs(models, "tall"))
    tolerance = TOLERANCE if precision == "fp32" else 0.5  # half precision rounds the embedding
    assert report_of(result, node)["scores"] == pytest.approx(expected, abs=tolerance)


@pytest.mark.parametrize("socket", [True, False], ids=["websocket", "polling"])
def test_a_cached_score_node_keeps_its_scores_in_the_history(cclient, socket):
    """Queued twice, the same prompt: the second time the score nodes are cache hits (they do not run), and
    their per-image scores are still in that prompt's /history, with or without a websocket client. A node
    whose inputs changed runs and shows its new scores."""
    from helpers import Graph

    def prompt(seed):
        g = Graph()
        image = g.out(g.add("EmptyImage", width=64, height=64, batch_size=2, color=0x808080))
        noisy = g.out(g.add("QGTest_Noise", seed=seed, size=64))
        tech = g.add("QG_TechnicalScore", image=batch_of(g, image, noisy), reduce="mean")
        g.record(g.out(tech, 0))
        return g, tech

    def history(g):
        result = cclient.run(g.nodes) if socket else cclient.run_polling(g.nodes)
        assert result.status == "success"
        return result.history

    g, tech = prompt(7)
    first = history(g)
    second = history(g)
    assert second["outputs"][tech] == first["outputs"][tech]
    assert second["outputs"][tech]["qg_scores"][0]["scores"][0] == 0.0  # the grey frame is flagged blank
    assert second["meta"][tech]["display_node"] == tech
    changed, tech = prompt(8)
    third = history(changed)
    assert third["outputs"][tech]["text"] != first["outputs"][tech]["text"]
