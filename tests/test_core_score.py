"""Plain scoring logic: head formats on LAION's real data, weight-file checks, tensor preprocessing against
open_clip's own PIL pipeline, chunking, text caching."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from quality_gate.nodes.core.errors import QGError
from quality_gate.nodes.core.score import (
    Head,
    Scorer,
    crop_images,
    encoder_config,
    head_from_state_dict,
    load_head,
    load_weights,
    normalise,
    parse_labels,
)
from scoring_models import (
    LAION,
    PHOTOS,
    V1_HEAD,
    V2_HEAD,
    build_clip,
    image_tensor,
    pil_image,
    reference_embeddings,
    tiny_config,
)

V2_EXPECTED = [1.655, 2.359, 3.070, 3.672, 4.238, 4.701, 5.073, 5.365, 5.577, 5.747]
V1_EXPECTED = [-2.458, -0.138, 1.895, 3.585, 5.100, 6.470, 7.787, 9.048, 10.226, 11.304]


def ratings() -> torch.Tensor:
    return torch.stack(
        [torch.from_numpy(np.load(LAION / f"vit_l_14_rating{i}.npy")).float().reshape(-1) for i in range(10)]
    )


@pytest.mark.parametrize(
    ("name", "kind", "expected"), [(V2_HEAD, "laion_v2_linear", V2_EXPECTED), (V1_HEAD, "laion_v1", V1_EXPECTED)]
)
def test_real_laion_heads_on_the_ten_rating_embeddings(name, kind, expected):
    head = load_head(LAION / name)
    assert (head.kind, head.width) == (kind, 768)
    scores = head(torch.nn.functional.normalize(ratings(), dim=-1)).tolist()
    assert scores == pytest.approx(expected, abs=6e-4)


def _layers(indices, widths, seed=0):
    g = torch.Generator().manual_seed(seed)
    state = {}
    for i, (n_in, n_out) in zip(indices, zip(widths, widths[1:], strict=False), strict=True):
        state[f"layers.{i}.weight"] = torch.randn(n_out, n_in, generator=g) / math.sqrt(n_in)
        state[f"layers.{i}.bias"] = torch.randn(n_out, generator=g)
    return state


def test_activation_free_mlp_is_folded_exactly():
    state = _layers((0, 2, 4, 6, 7), (32, 24, 16, 8, 4, 1))
    head = head_from_state_dict(state, "mlp.pth")
    assert head.kind == "laion_v2_linear" and head.mlp is None and head.weight.shape == (32,)
    x = torch.nn.functional.normalize(torch.randn(5, 32), dim=-1)
    ref = x.double()
    for i in (0, 2, 4, 6, 7):
        ref = ref @ state[f"layers.{i}.weight"].double().T + state[f"layers.{i}.bias"].double()
    assert head(x).tolist() == pytest.approx(ref[:, 0].tolist(), abs=1e-5)


def test_relu_variant_keeps_its_activations():
    state = _layers((0, 3, 6, 9, 11), (32, 24, 16, 8, 4, 1))
    head = head_from_state_dict(state, "relu.pth")
    assert head.kind == "laion_v2_relu"
    x = torch.nn.functional.normalize(torch.randn(5, 32), dim=-1)
    ref = x
    for n, i in enumerate((0, 3, 6, 9, 11)):
        ref = ref @ state[f"layers.{i}.weight"].T + state[f"layers.{i}.bias"]
        ref = ref.relu() if n < 4 else ref
    assert head(x).tolist() == pytest.approx(ref[:, 0].tolist(), abs=1e-5)


def test_simulacra_scales_by_sqrt_width_and_v1_takes_any_width():
    w, b = torch.randn(1, 512), torch.tensor([4.0])
    x = torch.nn.functional.normalize(torch.randn(3, 512), dim=-1)
    sim = head_from_state_dict({"linear.weight": w, "linear.bias": b})
    assert sim.kind == "simulacra" and sim(x).tolist() == pytest.approx(
        ((x * math.sqrt(512)) @ w[0] + 4).tolist(), rel=1e-5
    )
    v1 = head_from_state_dict({"weight": w, "bias": b})
    assert (v1.kind, v1.width) == ("laion_v1", 512) and v1(x).tolist() == pytest.approx(
        (x @ w[0] + 4).tolist(), rel=1e-5
    )


@pytest.mark.parametrize(
    ("state", "message"),
    [
        ({"foo.weight": torch.zeros(1, 4)}, "not an aesthetic head"),
        ({"weight": torch.zeros(2, 4), "bias": torch.zeros(2)}, "expected [1, width]"),
        (_layers((0, 2), (8, 4, 2)), "expected 1"),
        (
            {**_layers((0,), (8, 4)), **{"layers.2.weight": torch.zeros(1, 3), "layers.2.bias": torch.zeros(1)}},
            "do not chain",
        ),
    ],
)
def test_unknown_or_inconsistent_heads_are_refused(state, message):
    with pytest.raises(QGError, match=message.replace("[", r"\[")):
        head_from_state_dict(state, "x.pth")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"version https://git-lfs.github.com/spec/v1\noid sha256:21dd\nsize 3714759\n", "Git LFS pointer"),
        (b"\n<!DOCTYPE html><html><head><title>GitHub</title>", "HTML page"),
        (b'{"error": "not found"}', "JSON text"),
        (b"PK\x03\x04 definitely not a zip archive" * 4, "truncated or corrupt"),
    ],
)
def test_bad_weight_files_say_what_they_are(tmp_path, content, message):
    path = tmp_path / "head.pth"
    path.write_bytes(content)
    with pytest.raises(QGError, match=message) as e:
        load_weights(path, "an aesthetic head")
    assert "head.pth" in str(e.value)


def test_truncated_real_head_is_named(tmp_path):
    data = (LAION / V2_HEAD).read_bytes()
    path = tmp_path / "cut.pth"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(QGError, match="cut.pth.*truncated or corrupt"):
        load_head(path)


def test_pickled_objects_are_refused_without_torchs_unsafe_advice(tmp_path):
    torch.save({"model": torch.nn.Linear(2, 1)}, tmp_path / "object.pth")
    with pytest.raises(QGError, match="object.pth .*pickle of Python objects.*weights_only") as e:
        load_weights(tmp_path / "object.pth", "an aesthetic head")
    assert "weights_only=False" not in str(e.value) and "weights_only` set to `False" not in str(e.value)


def test_missing_file_and_safetensors(tmp_path):
    with pytest.raises(QGError, match="does not exist"):
        load_weights(tmp_path / "nope.safetensors", "an open_clip encoder")
    from safetensors.torch import save_file

    save_file({"weight": torch.ones(1, 8), "bias": torch.zeros(1)}, str(tmp_path / "h.safetensors"))
    assert load_head(tmp_path / "h.safetensors").kind == "laion_v1"


def test_head_and_encoder_widths_must_match():
    head = Head("laion_v1", 512, "b32.pth", weight=torch.zeros(512))
    with pytest.raises(QGError, match="expects 512-wide embeddings but encoder enc gives 768"):
        Scorer("enc", 224, 768, encode_images=lambda x: x, head=head)


def test_sidecar_config_wins_and_auto_falls_back_to_quickgelu(tmp_path):
    weights = tmp_path / "enc.safetensors"
    weights.write_bytes(b"x")
    assert encoder_config(weights, "auto")[0] == "ViT-L-14-quickgelu"
    (tmp_path / "enc.json").write_text(
        '{"model_cfg": {"embed_dim": 8, "vision_cfg": {}}, "preprocess_cfg": {"mean": [0.5, 0.5, 0.5]}}'
    )
    model_id, cfg, pre = encoder_config(weights, "auto")
    assert model_id.startswith("enc") and cfg["embed_dim"] == 8 and pre["mean"] == [0.5, 0.5, 0.5]
    assert encoder_config(weights, "ViT-B-32")[0] == "ViT-B-32"
    (tmp_path / "enc.json").write_text("{not json")
    with pytest.raises(QGError, match="not valid JSON"):
        encoder_config(weights, "auto")
    with pytest.raises(QGError, match="not an open_clip model name"):
        encoder_config(weights, "ViT-Nope")


@pytest.mark.parametrize(("h", "w"), [(300, 700), (700, 300), (224, 224), (50, 60)])
def test_crop_shapes(h, w):
    images = torch.rand(2, h, w, 3)
    for mode, per_image in (("center", 1), ("pad", 1), ("multi", 3 if max(h, w) / min(h, w) > 1.05 else 1)):
        pixels, owners = crop_images(images, 224, mode)
        assert pixels.shape == (2 * per_image, 3, 224, 224)
        assert owners == [i for i in range(2) for _ in range(per_image)]
        assert 0 <= float(pixels.min()) and float(pixels.max()) <= 1


def test_square_image_at_model_size_is_the_same_for_every_crop():
    images = torch.rand(1, 224, 224, 3)
    center = crop_images(images, 224, "center")[0]
    for mode in ("pad", "multi"):
        assert torch.equal(crop_images(images, 224, mode)[0], center)


def test_bad_crop_and_image_shapes():
    with pytest.raises(QGError, match="crop must be one of"):
        crop_images(torch.rand(1, 8, 8, 3), 4, "zoom")
    with pytest.raises(QGError, match="IMAGE tensor"):
        crop_images(torch.rand(8, 8, 3), 4, "center")


def _levels_and_images(shape: tuple, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Whole levels -80..335 (out of 0..255 too) and an IMAGE of them each moved by up to 0.45 of a level."""
    g = torch.Generator().manual_seed(seed)
    levels = torch.randint(-80, 336, shape, generator=g)
    offsets = torch.tensor([-0.45, -0.2, 0.0, 0.2, 0.45])[torch.randint(0, 5, levels.shape, generator=g)]
    return levels, (levels + offsets) / 255


def test_pixels_are_rounded_and_clipped_to_8_bits():
    """Values out of 0..1, exact 8-bit levels, half levels: what saving the IMAGE at 8 bits gives."""
    levels, images = _levels_and_images((3, 224, 224, 3), seed=4)
    images[0, 0, :4, 0] = torch.tensor([float("inf"), -float("inf"), 1e30, -1e30])
    pixels, _ = crop_images(images, 224, "center")
    expected = levels.clamp(0, 255).movedim(-1, 1).float()
    expected[0, 0, 0, :4] = torch.tensor([255, 0, 255, 0])
    assert torch.equal((pixels * 255).round(), expected)


def test_conversion_in_bands_of_rows_equals_converting_whole_images():
    """A 700-row image converts in bands of rows, the last one partial: the same 8-bit pixels, resized, as
    rounding and clipping whole images at once."""
    from quality_gate.nodes.core.score import BAND_BYTES, _eight_bit_resized, _resize

    levels, images = _levels_and_images((2, 700, 600, 3), seed=5)
    rows = BAND_BYTES // (600 * 3 * 4)
    assert 1 < rows < 700 and 700 % rows  # several bands, the last one partial
    whole = levels.clamp(0, 255).to(torch.uint8).movedim(-1, 1)
    assert torch.equal(_eight_bit_resized(images, 300, 257), _resize(whole, 300, 257))


def test_center_crop_reproduces_open_clips_reference_preprocessing():
    model = build_clip(tiny_config(), seed=1)
    for name in PHOTOS:
        img = pil_image(LAION / name)
        ref = reference_embeddings(model, [img])
        pixels, _ = crop_images(image_tensor(img), 224, "center")
        with torch.no_grad():
            mine = torch.nn.functional.normalize(model.encode_image(normalise(pixels)), dim=-1)
        assert float(torch.nn.functional.cosine_similarity(ref, mine)) > 0.9999


def _reference_pixels(img) -> torch.Tensor:
    """open_clip's own transform up to the tensor, before normalisation: 0..255 pixels [1, 3, 224, 224]."""
    import open_clip

    steps = open_clip.image_transform(224, is_train=False).transforms
    assert type(steps[-1]).__name__ == "Normalize"
    return torch.stack([open_clip.transform.Compose(steps[:-1])(img)]) * 255


PIL_SIZES = [None, (1024, 1024), (2000, 1100), (700, 1400), (150, 120)]


@pytest.mark.parametrize("size", PIL_SIZES)
def test_center_crop_pixels_are_open_clips_within_one_level(size):
    """Pixel for pixel against open_clip's PIL transform, with large reductions (1024 and 2000 px) and an
    enlargement: under 1 % of the values differ, by one 8-bit level (two when enlarging; fixed-point rounding).
    An approximation of the resampling filter (a box prefilter, float resampling without PIL's 8-bit
    intermediate) is 5 to 16 levels off somewhere and differs on 5 to 20 % of the values."""
    from PIL import Image

    img = pil_image(LAION / PHOTOS[0])
    img = img.resize(size, Image.BICUBIC) if size else img
    pixels, _ = crop_images(image_tensor(img), 224, "center")
    diff = (pixels * 255 - _reference_pixels(img)).abs()
    levels = 2 if img.height < 224 else 1
    assert float(diff.max()) <= levels + 1e-3 and float((diff > 0.5).float().mean()) < 0.01


@pytest.mark.parametrize("size", PIL_SIZES[1:])
def test_float_resize_for_other_devices_matches_the_cpus_8_bit_resize(size):
    """GPUs resize in floats (no 8-bit kernels there): PIL's two passes, each rounded to 8 bits, land within
    one level of the CPU's 8-bit kernel."""
    from quality_gate.nodes.core.score import _resize

    img = pil_image(LAION / PHOTOS[1]).resize((900, 600))
    eight = torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1)[None]
    height, width = size[1] // 4, size[0] // 4  # a reduction and, for (150, 120), an enlargement of 900 x 600
    in_bytes = _resize(eight.contiguous(memory_format=torch.channels_last), height, width)
    in_floats = _resize(eight.float(), height, width)
    assert in_bytes.dtype == torch.uint8 and in_floats.dtype == torch.float32
    diff = (in_floats - in_bytes.float()).abs()
    assert float(diff.max()) <= 1.0 and float((diff > 0).float().mean()) < 0.01


def _scorer(chunk: int, calls: list) -> Scorer:
    model = build_clip(tiny_config(embed_dim=16, image_size=32), seed=2)

    def encode(pixels):
        calls.append(pixels.shape[0])
        return model.encode_image(normalise(pixels))

    texts = []

    def encode_texts(batch):
        texts.append(list(batch))
        return model.encode_text(torch.randint(0, 100, (len(batch), 77)))

    s = Scorer("tiny", 32, 16, encode_images=encode, encode_texts=encode_texts, chunk=chunk)
    s.head = Head("laion_v1", 16, "h", weight=torch.linspace(-1, 1, 16))
    s.texts_seen = texts
    return s


def test_chunks_bound_the_encoder_batch_and_change_nothing():
    images = torch.rand(19, 40, 48, 3)
    calls_small, calls_big = [], []
    with torch.no_grad():
        small, flagged = _scorer(4, calls_small).aesthetic(images)
        big, _ = _scorer(32, calls_big).aesthetic(images)
    assert calls_small == [4, 4, 4, 4, 3] and calls_big == [19]
    assert small == pytest.approx(big, abs=1e-5) and len(small) == 19 and flagged == []


def test_multi_crop_averages_crop_scores_and_checks_between_chunks():
    images = torch.rand(5, 32, 96, 3)
    checks = []
    with torch.no_grad():
        scorer = _scorer(2, [])
        multi, _ = scorer.aesthetic(images, "multi", check=lambda: checks.append(1))
        pixels, owners = crop_images(images, 32, "multi")
        per_crop = scorer.head(torch.nn.functional.normalize(scorer.encode_images(pixels), dim=-1))
    expected = per_crop.reshape(5, 3).mean(dim=1).tolist()
    assert owners[:3] == [0, 0, 0] and multi == pytest.approx(expected, abs=1e-5) and len(checks) == 3


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_images_with_nan_or_inf_pixels_score_nan_and_are_flagged(bad):
    """The 8-bit conversion would clip NaN to 0 and inf to 255: such an image must not get an ordinary score.
    The others keep their scores; chunk boundaries do not shift the flagged indices."""
    images = torch.rand(5, 40, 48, 3)
    clean = images.clone()
    images[1, 3, 4, 0] = bad
    images[4, 0, 0, 2] = bad
    scorer = _scorer(2, [])
    with torch.no_grad():
        values, flagged = scorer.aesthetic(images)
        expected, none = scorer.aesthetic(clean)
        clip, clip_flagged = scorer.clip_scores(images, "a cat")
        probs, class_flagged = scorer.classify(["a cat", "a dog"], images=images)
    assert flagged == clip_flagged == class_flagged == [1, 4] and none == []
    assert math.isnan(values[1]) and math.isnan(values[4]) and math.isnan(clip[1])
    assert [values[i] for i in (0, 2, 3)] == pytest.approx([expected[i] for i in (0, 2, 3)], abs=1e-6)
    assert torch.isnan(probs[1]).all() and torch.isfinite(probs[[0, 2, 3]]).all()


def test_text_embeddings_are_cached_per_text():
    scorer = _scorer(8, [])
    with torch.no_grad():
        a = scorer.text_embeddings(["a cat", "a dog"])
        b = scorer.text_embeddings(["a dog", "a car"])
    assert scorer.texts_seen == [["a cat", "a dog"], ["a car"]]
    assert torch.equal(a[1], b[0])


def test_labels_one_per_line():
    assert parse_labels("cat\n\n  dog \n") == ["cat", "dog"]
    with pytest.raises(QGError, match="empty"):
        parse_labels(" \n")
    with pytest.raises(QGError, match="duplicates: cat"):
        parse_labels("cat\ncat")


def test_post_free_expires_the_scorer_cache_once_whichever_comes_first():
    """POST /free marks the cache; the next lookup or the worker taking the flags drops it, whichever runs
    first, and the other then keeps what was loaded after the /free (a prompt may run before the worker sees
    the flags, or after)."""
    from quality_gate.nodes.score import ScorerCache

    cache, built = ScorerCache(), []

    def get():
        return cache.get(("encoder",), ("file signature",), lambda: built.append(object()) or built[-1])

    first = get()
    assert get() is first and len(built) == 1
    cache.expire()  # the request's thread: drops nothing yet
    assert len(built) == 1
    fresh = get()  # a prompt ran before the worker took the flags: it loads afresh
    assert fresh is not first and len(built) == 2
    assert cache.release_expired() == 0 and get() is fresh  # the worker then keeps the fresh one
    cache.expire()
    assert cache.release_expired() == 1  # the worker took the flags first
    assert get() is not fresh and len(built) == 3
    assert cache.release_expired() == 0
