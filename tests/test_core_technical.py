"""Unit tests of the weights-free technical score (no ComfyUI): real torch, synthetic and real photos."""

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from quality_gate.nodes.core.errors import QGError
from quality_gate.nodes.core.technical import CURVES, quality, technical_scores
from scoring_models import LAION, PHOTOS


def scene(size: int = 512, height: int | None = None) -> torch.Tensor:
    """A [1, H, W, 3] synthetic image drawn from continuous coordinates (the same content at any size):
    a colour gradient background, a hard-edged disc, stripes and a square."""
    height = height or size
    y, x = torch.meshgrid((torch.arange(height) + 0.5) / height, (torch.arange(size) + 0.5) / size, indexing="ij")
    img = torch.stack([0.2 + 0.6 * x, 0.3 + 0.4 * y, 0.7 - 0.5 * x * y], dim=-1)
    disc = ((x - 0.35) ** 2 + (y - 0.4) ** 2) < 0.04
    img[disc] = torch.tensor([0.85, 0.2, 0.15])
    stripes = (torch.sin(x * 40 * math.pi) > 0) & (y > 0.7) & (y < 0.9)
    img[stripes] = torch.tensor([0.1, 0.1, 0.35])
    square = (x > 0.6) & (x < 0.85) & (y > 0.15) & (y < 0.5)
    img[square] = torch.tensor([0.95, 0.9, 0.3])
    return img.unsqueeze(0)


def gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    radius = math.ceil(3 * sigma)
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-(t**2) / (2 * sigma**2))
    k = k / k.sum()
    x = images.permute(0, 3, 1, 2)
    c = x.shape[1]
    x = F.pad(x, (radius, radius, radius, radius), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    x = F.conv2d(x, k.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)
    return x.permute(0, 2, 3, 1).contiguous()


def with_noise(images: torch.Tensor, sigma: float = 0.05, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (images + sigma * torch.randn(images.shape, generator=g)).clamp(0, 1)


def photo(name: str, long_side: int | None = None) -> torch.Tensor:
    im = Image.open(LAION / name).convert("RGB")
    if long_side:
        scale = long_side / max(im.size)
        im = im.resize((round(im.width * scale), round(im.height * scale)), Image.LANCZOS)
    return torch.from_numpy(np.asarray(im).astype(np.float32) / 255).unsqueeze(0)


def contents():
    yield "scene", scene()
    for name in PHOTOS:
        yield name, photo(name, 768)


def score(images: torch.Tensor) -> float:
    scores, _ = technical_scores(images)
    assert len(scores) == images.shape[0]
    return scores[0]


def test_returns_python_floats_and_json_reports():
    scores, reports = technical_scores(torch.cat([scene(), scene()]))
    assert all(type(s) is float for s in scores)
    assert len(reports) == 2
    report = json.loads(json.dumps(reports[0], allow_nan=False))
    for name in CURVES:
        assert 0 <= report[f"{name}_quality"] <= 1
        assert math.isfinite(report[name])
    assert report["flags"] == [] and report["hard_fail"] is False
    assert 5 < scores[0] <= 10


@pytest.mark.parametrize("name", ["scene", *PHOTOS])
def test_sharp_beats_blurred(name):
    img = scene() if name == "scene" else photo(name, 768)
    sharp, blurred = score(img), score(gaussian_blur(img, 3.0))
    assert sharp > blurred + 0.5, (sharp, blurred)
    # more blur never scores better
    assert blurred >= score(gaussian_blur(img, 6.0))


@pytest.mark.parametrize("name", ["scene", *PHOTOS])
def test_clean_beats_noisy(name):
    img = scene() if name == "scene" else photo(name, 768)
    clean, noisy = score(img), score(with_noise(img, 0.05))
    # the photos' clipped white backgrounds hide much of the noise (and noise un-clips them): a smaller margin
    assert clean > noisy + (1.0 if name == "scene" else 0.05), (clean, noisy)
    _, reports = technical_scores(torch.cat([img, with_noise(img, 0.05)]))
    assert reports[1]["noise"] > 3 * reports[0]["noise"]


def test_noise_estimate_on_flat_image_matches_true_sigma():
    # a mid-grey frame with luma noise of 0.02 (5.1 on 0..255) at the working size
    g = torch.Generator().manual_seed(1)
    noise = 0.02 * torch.randn((1, 512, 512, 1), generator=g)
    img = (0.5 + noise).expand(-1, -1, -1, 3)
    _, reports = technical_scores(img)
    assert reports[0]["noise"] == pytest.approx(0.02 * 255, rel=0.05)


def test_noise_estimate_ignores_edges():
    _, reports = technical_scores(scene())
    assert reports[0]["noise"] < 1.0  # hard edges everywhere, but no noise


@pytest.mark.parametrize(
    ("flag", "image"),
    [
        ("black", torch.zeros(1, 64, 96, 3)),
        ("black", torch.full((1, 64, 96, 3), 0.01)),
        ("white", torch.ones(1, 64, 96, 3)),
        ("blank", torch.full((1, 64, 96, 3), 0.4)),
        ("blank", torch.tensor([0.2, 0.5, 0.7]).expand(1, 64, 96, 3)),
    ],
)
def test_hard_flags(flag, image):
    scores, reports = technical_scores(image)
    assert scores == [0.0]
    assert flag in reports[0]["flags"] and reports[0]["hard_fail"] is True


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_nan_inf_flagged_zero_and_never_propagated(bad):
    img = scene(128)
    img[0, 10, 20, 1] = bad
    scores, reports = technical_scores(torch.cat([img, scene(128)]))
    assert scores[0] == 0.0 and reports[0]["flags"][0] == "nan_inf"
    json.dumps(reports[0], allow_nan=False)  # every value stays finite
    assert scores[1] > 5 and reports[1]["flags"] == []


def test_random_inputs_finite_and_in_range():
    g = torch.Generator().manual_seed(3)
    batches = [
        torch.rand((4, 37, 53, 3), generator=g),
        torch.rand((3, 300, 200, 3), generator=g) ** 4,
        torch.rand((2, 5, 700, 3), generator=g) * 3 - 1,  # out-of-range values
        torch.rand((2, 1, 1, 3), generator=g),
        torch.rand((2, 64, 64, 3), generator=g).double(),
        torch.rand((2, 64, 64, 3), generator=g).half(),
    ]
    for images in batches:
        scores, reports = technical_scores(images)
        assert len(scores) == len(reports) == images.shape[0]
        for s in scores:
            assert math.isfinite(s) and 0 <= s <= 10
        json.dumps(reports, allow_nan=False)


def test_batch_equals_per_image():
    g = torch.Generator().manual_seed(4)
    base = scene(256)
    images = torch.cat(
        [
            base,
            gaussian_blur(base, 2.0),
            with_noise(base, 0.05),
            torch.zeros_like(base),
            torch.rand((1, 256, 256, 3), generator=g),
            base * 0.3,
            base.flip(2),
            base.clamp(0.4, 0.6),
            torch.full_like(base, 0.5),
            base**0.5,
            with_noise(base, 0.1, seed=9),
        ]
    )  # 11 images: more than one chunk of 8
    scores, reports = technical_scores(images)
    for i in range(images.shape[0]):
        one, one_reports = technical_scores(images[i : i + 1])
        assert scores[i] == pytest.approx(one[0], abs=1e-4)
        assert reports[i]["flags"] == one_reports[0]["flags"]


def test_channels_grey_and_rgba():
    rgb = scene(128)
    rgba = torch.cat([rgb, torch.rand(1, 128, 128, 1)], dim=-1)
    assert score(rgba) == pytest.approx(score(rgb), abs=1e-5)
    grey = rgb.mean(-1, keepdim=True)
    assert score(grey) == pytest.approx(score(grey.expand(-1, -1, -1, 3)), abs=1e-5)


@pytest.mark.parametrize("name", ["scene", *PHOTOS])
def test_resolution_independent(name):
    if name == "scene":
        big = scene(1024)
        small = F.interpolate(big.permute(0, 3, 1, 2), size=(512, 512), mode="area").permute(0, 2, 3, 1)
    else:
        big, small = photo(name, 1024), photo(name, 512)
    assert score(big) == pytest.approx(score(small), abs=0.5)


def test_non_square_working_size():
    big = scene(1024, 300)
    small = F.interpolate(big.permute(0, 3, 1, 2), size=(150, 512), mode="area").permute(0, 2, 3, 1)
    assert score(big) == pytest.approx(score(small), abs=0.5)


@pytest.mark.parametrize("metric", list(CURVES))
def test_curves_monotone_and_bounded(metric):
    xs = [x for x, _ in CURVES[metric]]
    values = torch.linspace(-1, xs[-1] * 2, 1001)
    q = quality(metric, values)
    assert ((q >= 0) & (q <= 1)).all()
    diffs = q.diff()
    rising = CURVES[metric][-1][1] > CURVES[metric][0][1]
    assert (diffs >= -1e-6).all() if rising else (diffs <= 1e-6).all()
    for x, expected in CURVES[metric]:
        assert quality(metric, torch.tensor([x])).item() == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize(
    "bad",
    [
        torch.rand(64, 64, 3),
        torch.rand(1, 64, 64, 2),
        torch.zeros(0, 64, 64, 3),
        torch.randint(0, 255, (1, 8, 8, 3)),
        [[0.5]],
    ],
)
def test_bad_input_raises_qgerror(bad):
    with pytest.raises(QGError, match="image"):
        technical_scores(bad)
