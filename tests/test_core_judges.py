"""Plain logic of the newer judges: open_clip architecture recognition (HPSv2's ViT-H-14), Hugging Face scorer
folders (PickScore-shaped CLIP, SigLIP) loaded with networking blocked, bad folders named, the v2.5 head,
CLIP-IQA pairs, and one encode shared by every judge of a batch."""

from __future__ import annotations

import math
import socket
from pathlib import Path

import open_clip
import pytest
import torch
from open_clip.model import CLIP
from quality_gate.nodes.core.errors import QGError
from quality_gate.nodes.core.hf import load_hf
from quality_gate.nodes.core.score import (
    Scorer,
    build_encoder,
    crop_images,
    detect_architecture,
    head_from_state_dict,
    load_head,
    normalise,
    parse_pairs,
)
from scoring_models import (
    LAION,
    PHOTOS,
    build_clip,
    image_tensor,
    pil_image,
    reference_clip_iqa,
    reference_embeddings,
    reference_hps,
    reference_pickscore,
    reference_text,
    reference_v2_5,
    save_hf_clip,
    save_hps,
    save_siglip,
    save_v2_5_head,
    tiny_config,
)


def meta_state(name: str) -> dict:
    """The state dict of a built-in open_clip model with no memory behind it (shapes only)."""
    with torch.device("meta"):
        return CLIP(**open_clip.get_model_config(name)).state_dict()


@pytest.mark.parametrize(
    ("built", "expected"),
    [
        ("ViT-H-14", "ViT-H-14"),  # HPSv2 / v2.1: GELU, not the quickgelu twin with the same shapes
        ("ViT-L-14", "ViT-L-14-quickgelu"),  # OpenAI ViT-L/14, what the LAION heads expect
        ("ViT-B-32", "ViT-B-32"),
        ("ViT-bigG-14", "ViT-bigG-14"),
        ("ViT-L-14-336", "ViT-L-14-336"),
    ],
)
def test_auto_recognises_the_architecture_from_the_weights_shapes(built, expected):
    assert detect_architecture(meta_state(built)) == expected


def test_auto_gives_up_on_unknown_shapes_and_layouts():
    assert detect_architecture(build_clip(tiny_config()).state_dict()) is None
    assert detect_architecture({"weight": torch.zeros(1, 4), "bias": torch.zeros(1)}) is None
    odd = {**meta_state("ViT-B-32"), "visual.proj": torch.zeros(7)}  # a malformed file: no guess, no crash
    assert detect_architecture(odd) is None


def test_an_hps_checkpoint_loads_from_its_state_dict_wrapper(tmp_path):
    path, model = save_hps(tmp_path, "hps-tiny")
    loaded, model_id, _, width = build_encoder(path, "auto")
    assert width == 64 and "hps-tiny" in model_id
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key


def test_the_v2_5_head_is_recognised_and_folded_exactly(tmp_path):
    path = save_v2_5_head(tmp_path / "aesthetic_predictor_v2_5.pth", 1152)
    head = load_head(path)
    assert head.kind == "aesthetic_v2_5" and head.width == 1152
    x = torch.nn.functional.normalize(torch.randn(5, 1152), dim=-1)
    state = torch.load(path, weights_only=True)
    expected = x.double()
    for i in (0, 2, 4, 6, 8):
        expected = expected @ state[f"scoring_head.{i}.weight"].double().T + state[f"scoring_head.{i}.bias"].double()
    assert head(x).double().tolist() == pytest.approx(expected[:, 0].tolist(), rel=1e-4, abs=1e-4)
    small = load_head(save_v2_5_head(tmp_path / "small.pth", 48))
    assert small.kind == "aesthetic_v2_5_layout" and small.width == 48
    with pytest.raises(QGError, match="do not chain"):
        head_from_state_dict({**state, "scoring_head.2.weight": torch.zeros(128, 7)}, "broken.pth")


def test_clip_iqa_pairs():
    assert parse_pairs("Good photo. | Bad photo.\n\n Sharp. |Blurry. ") == [
        ("Good photo.", "Bad photo."),
        ("Sharp.", "Blurry."),
    ]
    for text, message in (
        (["a | b"], "pairs: expected a STRING"),
        ("", "pairs is empty"),
        ("Good photo.", "line 1"),
        ("a | b\n| c", "line 2"),
        ("a|b|c", "line 1"),
    ):
        with pytest.raises(QGError, match=message):
            parse_pairs(text)


def test_squash_resizes_the_whole_image_to_the_square():
    pixels, owners = crop_images(torch.rand(2, 300, 700, 3), 384, "squash")
    assert pixels.shape == (2, 3, 384, 384) and owners == [0, 1]


def hf_scorer(folder: Path) -> Scorer:
    hf = load_hf(folder)
    return Scorer(
        model_id=folder.name,
        image_size=hf.image_size,
        embed_dim=hf.embed_dim,
        encode_images=lambda p: hf.encode_images(normalise(p, hf.mean, hf.std)),
        encode_texts=(lambda t: hf.encode_texts(hf.tokenizer(t))) if hf.tokenizer else None,
        family=hf.family,
        logit_scale=hf.logit_scale,
        crop=hf.crop,
    )


@pytest.fixture
def no_network(monkeypatch):
    """Every attempt to open a connection fails (and is counted): loading must not need one."""
    attempts = []

    def refuse(self, address, *args):
        attempts.append(address)
        raise OSError(f"networking is disabled in this test ({address})")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    return attempts


def photos():
    return [pil_image(LAION / name).crop((0, 0, 900, 700)) for name in PHOTOS]


def batch(images) -> torch.Tensor:
    return torch.cat([image_tensor(img) for img in images])


def test_a_pickscore_folder_loads_offline_and_scores_like_the_reference(tmp_path, no_network):
    model = save_hf_clip(tmp_path / "PickScore_v1")
    with torch.no_grad():
        scorer = hf_scorer(tmp_path / "PickScore_v1")
        assert scorer.family == "hf_clip" and scorer.logit_scale == pytest.approx(100, rel=1e-3)
        values, flagged = scorer.preference(batch(photos()), "a cat on a sofa")
    expected, _ = reference_pickscore(model, photos(), "a cat on a sofa")
    assert values == pytest.approx(expected, rel=1e-3) and flagged == []
    assert no_network == []


def test_a_siglip_folder_with_the_v2_5_head_scores_like_the_reference(tmp_path, no_network):
    model = save_siglip(tmp_path / "siglip", image_size=112)
    head_path = save_v2_5_head(tmp_path / "v2_5.pth", 48)
    with torch.no_grad():
        scorer = hf_scorer(tmp_path / "siglip").with_head(load_head(head_path))
        assert scorer.crop == "squash" and scorer.encode_texts is None
        values, _ = scorer.aesthetic(batch(photos()))
    assert values == pytest.approx(reference_v2_5(model, head_path, photos()), rel=1e-3)
    with pytest.raises(QGError, match="has no text encoder"):
        scorer.clip_iqa(batch(photos()), [("Good photo.", "Bad photo.")])
    assert no_network == []


def clip_scorer(model: CLIP) -> Scorer:
    """A scorer on an open_clip model (what Scorer Loader builds, without ComfyUI's model management)."""
    tokenizer = open_clip.tokenizer.SimpleTokenizer()
    return Scorer(
        model_id="tiny",
        image_size=224,
        embed_dim=model.visual.output_dim,
        encode_images=lambda p: model.encode_image(normalise(p)),
        encode_texts=lambda t: model.encode_text(tokenizer(t)),
    )


def test_one_encode_serves_every_judge_of_a_batch():
    model = build_clip(tiny_config(), seed=1)
    scorer = clip_scorer(model).with_head(head_from_state_dict({"weight": torch.randn(1, 768), "bias": torch.zeros(1)}))
    images = batch(photos())
    pairs = [("Good photo.", "Bad photo."), ("Sharp photo.", "Blurry photo.")]
    with torch.no_grad():
        scorer.aesthetic(images)
        scorer.clip_scores(images, "a cat")
        iqa, _ = scorer.clip_iqa(images, pairs)
        scorer.preference(images, "a cat")
        assert scorer.encodes == 1
        scorer.aesthetic(images, "pad")  # another crop is another encode
        scorer.aesthetic(images.clone())  # another tensor too
        assert scorer.encodes == 3
        images.mul_(0.5)  # changed in place: encoded again
        scorer.aesthetic(images)
        assert scorer.encodes == 4
    ref_image = reference_embeddings(model, photos())
    ref_text = reference_text(model, [t for pair in pairs for t in pair])
    assert iqa == pytest.approx(reference_clip_iqa(ref_image, ref_text), rel=1e-3)


def test_hps_scores_like_the_reference(tmp_path):
    path, model = save_hps(tmp_path, "hps")
    scorer = clip_scorer(build_encoder(path, "auto")[0])
    with torch.no_grad():
        values, _ = scorer.preference(batch(photos()), "a cat")
    assert scorer.preference_scale == 1.0
    assert values == pytest.approx(reference_hps(model, photos(), "a cat"), rel=1e-3)


def test_nan_images_score_nan_in_every_judge():
    scorer = clip_scorer(build_clip(tiny_config(), seed=2))
    images = torch.rand(3, 64, 64, 3)
    images[1, 3, 3, 0] = math.nan
    with torch.no_grad():
        for values, flagged in (scorer.preference(images, "x"), scorer.clip_iqa(images, [("a", "b")])):
            assert flagged == [1] and math.isnan(values[1]) and all(math.isfinite(v) for v in (values[0], values[2]))


@pytest.mark.parametrize(
    ("break_it", "message"),
    [
        (lambda f: (f / "config.json").unlink(), "config.json is missing"),
        (lambda f: (f / "config.json").write_text("{not json"), "not valid JSON"),
        (lambda f: (f / "config.json").write_text('{"model_type": "bert"}'), "model_type 'bert'"),
        (lambda f: (f / "model.safetensors").write_text("<!DOCTYPE html><html>Sign in</html>"), "an HTML page"),
        (lambda f: (f / "model.safetensors").write_text("version https://git-lfs.github.com/spec/v1"), "Git LFS"),
        (lambda f: (f / "model.safetensors").rename(f / "pytorch_model.bin"), "pickles are not loaded"),
        (lambda f: (f / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{}"), "could not be loaded"),
    ],
)
def test_bad_folders_are_named(tmp_path, break_it, message):
    folder = tmp_path / "PickScore_v1"
    save_siglip(folder, image_size=56)
    break_it(folder)
    with pytest.raises(QGError, match=message) as error:
        load_hf(folder)
    assert "PickScore_v1" in str(error.value)


def test_wrong_architecture_for_an_hps_file_is_named(tmp_path):
    path, _ = save_hps(tmp_path, "hps")
    with pytest.raises(QGError, match="do not fit architecture ViT-B-32") as error:
        build_encoder(path, "ViT-B-32")
    assert "hps.pt" in str(error.value)


def test_a_full_siglip_folder_serves_its_vision_tower(tmp_path, no_network):
    """google/siglip-so400m-patch14-384 is published as a whole SigLIP (model_type siglip, both towers): the
    vision tower is loaded from it (the text weights are left out) and gives the same embeddings."""
    from transformers import SiglipConfig, SiglipModel

    torch.manual_seed(0)
    layers = {"hidden_size": 48, "intermediate_size": 96, "num_hidden_layers": 2, "num_attention_heads": 2}
    config = SiglipConfig(
        text_config={**layers, "vocab_size": 1000}, vision_config={**layers, "image_size": 56, "patch_size": 14}
    )
    full = SiglipModel(config).eval()
    full.save_pretrained(str(tmp_path / "siglip-full"))
    hf = load_hf(tmp_path / "siglip-full")
    assert (hf.family, hf.crop, hf.embed_dim, hf.image_size, hf.tokenizer) == ("siglip", "squash", 48, 56, None)
    pixels = torch.randn(2, 3, 56, 56)
    with torch.no_grad():
        expected = full.vision_model(pixel_values=pixels).pooler_output
        assert torch.allclose(hf.encode_images(pixels), expected, atol=1e-5)
    assert no_network == []
