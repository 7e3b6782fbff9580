"""Weights-free technical image quality: sharpness, exposure, clipping, colourfulness, noise; 0..10.

``technical_scores(images)`` takes a ComfyUI IMAGE batch ``[B, H, W, C]`` (float, 0..1; C = 3, or 1 = grey,
or 4 = RGBA whose alpha is ignored) and returns ``(scores, reports)``: a list of python float scores in
0..10 and one JSON-serialisable dict per image with the raw metrics, their 0..1 qualities and the flags.
Every image is scored on its own (vectorised over the batch, in chunks of ``chunk_size`` images so memory
stays bounded); nothing here imports ComfyUI.

Working size. The RGB image is resized so that its long side is ``WORK_SIZE`` (512) pixels (bilinear with
antialiasing, the short side at least 3 px) and clamped to 0..1. Every metric is measured there, so a score
does not depend on the resolution: the same content at 1024 and 2048 px gets (nearly) the same score, as a
viewer seeing both at the same size would judge. Luma is BT.601 (0.299 R + 0.587 G + 0.114 B). Raw metrics
on the 0..255 scale are in 8-bit units.

Raw metrics (the report keys) and their 0..1 quality curves. Every curve is monotone and piecewise
linear through the breakpoints ``(value, quality)`` in ``CURVES`` below, constant beyond the first and last
breakpoint; the penalty of a metric is ``10 · weight · (1 - quality)``.

- ``sharpness``: variance of the 4-neighbour Laplacian ``[[0,1,0],[1,-4,1],[0,1,0]]`` (Pech-Pacheco et al.
  2000) of the luma (0..255) at the working size after a 3x3 box smoothing (the band just below Nyquist is
  where resampling filters differ most, so leaving it out keeps the value resolution independent), minus
  the part white noise of the measured level ``noise`` explains (``LAPLACIAN_NOISE_GAIN``·noise², the
  smoothed Laplacian's sum of squared taps), so noise is not mistaken for detail. Quality through (0, 0),
  (2, 0.1), (10, 0.4), (50, 0.8), (150, 1): sharp photos read 150..200, a Gaussian blur of sigma 3 px reads
  1..20. Content-dependent (sky against foliage): compare it within a batch, or gate only extreme blur.
- ``exposure``: distance of the mean luma (0..1) from mid-grey, ``|mean - 0.5|``, 0..0.5. Quality through
  (0, 1), (0.1, 0.9), (0.3, 0.5), (0.5 = black or white, 0.2).
- ``clipping``: fraction of luma pixels at or below 2/255 or at or above 253/255, 0..1. Quality through
  (0, 1), (0.02, 0.95), (0.5, 0.5), (1, 0) (a studio shot on a white background clips half its pixels).
- ``colourfulness``: Hasler & Süsstrunk (2003) ``M = sqrt(sd(rg)² + sd(yb)²) + 0.3·sqrt(mean(rg)² +
  mean(yb)²)``, ``rg = R - G``, ``yb = (R + G)/2 - B`` on 0..255 (15 slightly, 33 moderately, 59 quite, 109
  extremely colourful). Quality through (0, 0), (15, 0.5), (59, 1): a grey image -> 0, 33 -> 0.7. It
  rewards colour, not beauty, so its weight is the smallest: it only separates washed-out outliers.
- ``noise``: Immerkær (1996) fast noise estimate, ``sigma = sqrt(pi/2)/6 · mean|I * N|`` with
  ``N = [[1,-2,1],[-2,4,-2],[1,-2,1]]`` (the mean over all (W-2)(H-2) valid pixels is the published
  ``sum / (6 (W-2)(H-2))`` form), but the mean is taken only over the low-gradient pixels (Sobel magnitude at
  or below its ``NOISE_PERCENTILE`` percentile in that image), so edges and texture are not counted as noise.
  For white Gaussian noise the Sobel and Immerkær responses are uncorrelated (odd and even filters), so
  taking the quietest pixels does not bias it: a flat image with noise sigma s reads s within 5 %. Units:
  luma 0..255 at the working size (resizing down averages noise away, as viewing smaller does). Quality through
  (0, 1), (0.5, 0.97), (3, 0.5), (8, 0). Known limit: clipped areas (a white background) are quiet and hide
  noise, so noise on such images reads low.

Score: ``10 · sum(WEIGHTS[k] · quality[k])`` (weights sum to 1: sharpness 0.35, noise 0.30, exposure 0.15,
clipping 0.10, colourfulness 0.10), the same as ``10 - sum(penalty)`` with ``penalty = 10·weight·(1 -
quality)``. Hard flags set the score to 0 (``HARD_FAIL_SCORE``) and are listed in ``flags``:

- ``nan_inf``: any NaN or infinity in the image. The metrics are then computed with non-finite values
  replaced (NaN and -inf by 0, +inf by 1) so the report stays finite; NaN never reaches a score.
- ``black``: at least 99 % of the luma pixels at or below 0.02.
- ``white``: at least 99 % of the luma pixels at or above 0.98.
- ``blank``: a uniform frame: every RGB channel's standard deviation (0..1) below 0.01.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .errors import QGError

WORK_SIZE = 512
CHUNK_SIZE = 8
NOISE_PERCENTILE = 0.5
LAPLACIAN_NOISE_GAIN = 0.395  # variance of the box-smoothed Laplacian of unit white noise (sum of squared taps)
HARD_FAIL_SCORE = 0.0
CLIP_LOW, CLIP_HIGH = 2.0 / 255.0, 253.0 / 255.0
BLACK_LEVEL, WHITE_LEVEL, FRAME_FRACTION = 0.02, 0.98, 0.99
BLANK_STD = 0.01
LUMA = (0.299, 0.587, 0.114)

# metric -> monotone piecewise-linear breakpoints (raw value, quality 0..1); see the module docstring
CURVES = {
    "sharpness": ((0.0, 0.0), (2.0, 0.1), (10.0, 0.4), (50.0, 0.8), (150.0, 1.0)),
    "exposure": ((0.0, 1.0), (0.1, 0.9), (0.3, 0.5), (0.5, 0.2)),
    "clipping": ((0.0, 1.0), (0.02, 0.95), (0.5, 0.5), (1.0, 0.0)),
    "colourfulness": ((0.0, 0.0), (15.0, 0.5), (59.0, 1.0)),
    "noise": ((0.0, 1.0), (0.5, 0.97), (3.0, 0.5), (8.0, 0.0)),
}
WEIGHTS = {"sharpness": 0.35, "noise": 0.30, "exposure": 0.15, "clipping": 0.10, "colourfulness": 0.10}
HARD_FLAGS = ("nan_inf", "black", "white", "blank")


def quality(metric: str, value: torch.Tensor) -> torch.Tensor:
    """The 0..1 quality of a raw metric: linear interpolation between the breakpoints of ``CURVES[metric]``,
    constant outside them."""
    xs = torch.tensor([x for x, _ in CURVES[metric]], dtype=value.dtype, device=value.device)
    qs = torch.tensor([q for _, q in CURVES[metric]], dtype=value.dtype, device=value.device)
    v = value.clamp(float(xs[0]), float(xs[-1]))
    i = torch.searchsorted(xs, v.contiguous(), right=True).clamp(1, len(xs) - 1)
    x0, x1, q0, q1 = xs[i - 1], xs[i], qs[i - 1], qs[i]
    return q0 + (q1 - q0) * (v - x0) / (x1 - x0)


def working_size(height: int, width: int, size: int = WORK_SIZE) -> tuple[int, int]:
    """(height, width) with the long side ``size`` and the aspect ratio kept; each side at least 3 px."""
    scale = size / max(height, width)
    return max(3, round(height * scale)), max(3, round(width * scale))


def check_image(images) -> None:
    """A ComfyUI IMAGE (``[B >= 1, H >= 1, W >= 1, 1, 3 or 4 channels]``, floating point), or a named error."""
    if not isinstance(images, torch.Tensor):
        raise QGError(f"image: expected an IMAGE tensor [batch, height, width, channels], got {type(images).__name__}")
    if images.ndim != 4 or images.shape[-1] not in (1, 3, 4):
        raise QGError(
            f"image: expected an IMAGE tensor [batch, height, width, channels] with 1, 3 or 4 channels, "
            f"got shape {list(images.shape)}"
        )
    if images.shape[0] == 0 or images.shape[1] == 0 or images.shape[2] == 0:
        raise QGError(f"image: expected at least one image of at least 1x1 pixels, got shape {list(images.shape)}")
    if not images.is_floating_point():
        raise QGError(f"image: expected a floating-point IMAGE tensor with values 0..1, got {images.dtype}")


def rgb_images(images: torch.Tensor) -> torch.Tensor:
    """Validate a ComfyUI IMAGE and return its RGB channels as float32 ``[B, H, W, 3]`` (a view where possible)."""
    check_image(images)
    if images.shape[-1] == 1:
        images = images.expand(-1, -1, -1, 3)
    return images[..., :3].float()


def non_finite(x: torch.Tensor) -> torch.Tensor:
    """[B] bool: the image holds a NaN or an infinity. A per-image sum is a cheap first test (a sum is finite
    when every term is, unless huge finite values overflow it); only suspects get the exact check."""
    suspect = ~torch.isfinite(x.sum(dim=(1, 2, 3)))
    if suspect.any():
        suspect[suspect.clone()] = ~torch.isfinite(x[suspect]).flatten(1).all(dim=1)
    return suspect


def _resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """[B, H, W, 3] -> [B, h, w, 3] at ``size``, bilinear with antialiasing (a triangle filter as wide as the
    scale factor when shrinking), clamped to 0..1. One filter family for every input size keeps the
    metrics resolution independent (a box filter for integer factors and another filter otherwise does not)."""
    x = x.permute(0, 3, 1, 2)  # a channels-last view: no copy
    if tuple(x.shape[-2:]) != size:
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
    return x.permute(0, 2, 3, 1).clamp(0, 1)


def _second_differences(luma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Valid-region (h-2, w-2) responses of the Laplacian and the squared Sobel magnitude of the 3x3-box
    smoothed luma (structure, little noise, and the same band for every source resolution), and of the
    Immerkær mask on the raw luma (noise), built from shifted views (cheaper on a CPU than ``conv2d``)."""
    smooth = F.avg_pool2d(luma.unsqueeze(1), 3, stride=1, padding=1, count_include_pad=False).squeeze(1)
    row = (smooth[:, :, :-2] + smooth[:, :, 2:]).sub_(smooth[:, :, 1:-1], alpha=2)  # [1, -2, 1] along x
    col = (smooth[:, :-2] + smooth[:, 2:]).sub_(smooth[:, 1:-1], alpha=2)  # [1, -2, 1] along y
    laplacian = row[:, 1:-1] + col[:, :, 1:-1]
    raw_row = (luma[:, :, :-2] + luma[:, :, 2:]).sub_(luma[:, :, 1:-1], alpha=2)
    immerkaer = (raw_row[:, :-2] + raw_row[:, 2:]).sub_(raw_row[:, 1:-1], alpha=2)  # the outer product is N
    dx = smooth[:, :, 2:] - smooth[:, :, :-2]
    gx = (dx[:, :-2] + dx[:, 2:]).add_(dx[:, 1:-1], alpha=2)
    dy = smooth[:, 2:] - smooth[:, :-2]
    gy = (dy[:, :, :-2] + dy[:, :, 2:]).add_(dy[:, :, 1:-1], alpha=2)
    return laplacian, immerkaer, gx.mul_(gx).addcmul_(gy, gy)


# RGB (0..1) -> luma, rg, yb on the 0..255 scale, in one matrix product
_OPPONENT = 255 * torch.tensor([[LUMA[0], 1.0, 0.5], [LUMA[1], -1.0, 0.5], [LUMA[2], 0.0, -1.0]])


def _var_mean(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Population variance and mean over the last dimension (two plain passes: faster on a CPU than
    ``torch.var_mean``, and exact enough in float32 since the mean is subtracted first)."""
    mean = x.mean(dim=-1, keepdim=True)
    return (x - mean).square_().mean(dim=-1), mean.squeeze(-1)


def _metrics(rgb: torch.Tensor) -> dict[str, torch.Tensor]:
    """Raw metrics and hard flags ([B] tensors) of a [B, h, w, 3] image in 0..1 at the working size."""
    batch, height, width, _ = rgb.shape
    # [B, 3, h*w]: luma, rg, yb (a matrix product on the channels-last pixels, then one transposing copy)
    opponent = (rgb @ _OPPONENT.to(rgb.device)).permute(0, 3, 1, 2).reshape(batch, 3, height * width)
    var, mean = _var_mean(opponent)  # [B, 3] each: luma, rg, yb
    flat = opponent[:, 0]
    luma = flat.view(batch, height, width)
    pixels = flat.shape[1]

    laplacian, immerkaer, gradient = _second_differences(luma)
    sample = gradient[:, ::2, ::2].reshape(batch, -1)  # the percentile from every 4th pixel is plenty
    k = max(1, math.ceil(NOISE_PERCENTILE * sample.shape[1]))
    threshold = sample.kthvalue(k, dim=1).values.view(batch, 1, 1)
    quiet = gradient <= threshold
    mean_abs = immerkaer.abs_().mul_(quiet).sum(dim=(1, 2)) / quiet.sum(dim=(1, 2))
    noise = math.sqrt(math.pi / 2) / 6 * mean_abs
    lap_var, _ = _var_mean(laplacian.reshape(batch, -1))
    sharpness = (lap_var - LAPLACIAN_NOISE_GAIN * noise * noise).clamp_min(0)

    colourfulness = var[:, 1:].sum(1).sqrt() + 0.3 * mean[:, 1:].square().sum(1).sqrt()
    mean_luma = mean[:, 0] / 255

    def fraction(mask: torch.Tensor) -> torch.Tensor:
        return torch.count_nonzero(mask, dim=1) / pixels

    return {
        "sharpness": sharpness,
        "exposure": (mean_luma - 0.5).abs(),
        "clipping": fraction(flat <= 255 * CLIP_LOW) + fraction(flat >= 255 * CLIP_HIGH),
        "colourfulness": colourfulness,
        "noise": noise,
        "mean_luma": mean_luma,
        "black": fraction(flat <= 255 * BLACK_LEVEL) >= FRAME_FRACTION,
        "white": fraction(flat >= 255 * WHITE_LEVEL) >= FRAME_FRACTION,
        "blank": var.sqrt().amax(dim=1) < 255 * BLANK_STD,
    }


def _score_chunk(images: torch.Tensor, work_size: int) -> tuple[torch.Tensor, list[dict]]:
    x = rgb_images(images)
    bad = non_finite(x)
    if bad.any():
        x = torch.where(bad.view(-1, 1, 1, 1), torch.nan_to_num(x, nan=0.0, posinf=1.0, neginf=0.0), x)
    size = working_size(x.shape[1], x.shape[2], work_size)
    m = _metrics(_resize(x, size))
    m["nan_inf"] = bad
    qualities = {name: quality(name, m[name]) for name in CURVES}
    score = 10 * sum(WEIGHTS[name] * qualities[name] for name in CURVES)
    failed = torch.zeros_like(bad)
    for flag in HARD_FLAGS:
        failed |= m[flag]
    score = torch.where(failed, torch.full_like(score, HARD_FAIL_SCORE), score).clamp(0, 10).float()

    columns = {name: m[name].tolist() for name in (*CURVES, "mean_luma")}
    quality_columns = {name: q.tolist() for name, q in qualities.items()}
    flag_columns = {flag: m[flag].tolist() for flag in HARD_FLAGS}
    reports = []
    for i, value in enumerate(score.tolist()):
        report: dict = {"score": value}
        for name in CURVES:
            report[name] = columns[name][i]
            report[f"{name}_quality"] = quality_columns[name][i]
        report["mean_luma"] = columns["mean_luma"][i]
        report["flags"] = [flag for flag in HARD_FLAGS if flag_columns[flag][i]]
        report["hard_fail"] = bool(report["flags"])
        reports.append(report)
    return score, reports


def technical_scores(
    images: torch.Tensor, chunk_size: int = CHUNK_SIZE, work_size: int = WORK_SIZE
) -> tuple[list[float], list[dict]]:
    """Score every image of an IMAGE batch ``[B, H, W, C]``: python float scores in 0..10 and one report dict
    per image (raw metrics, ``<metric>_quality`` 0..1, ``mean_luma``, ``flags`` (list of hard-flag names),
    ``hard_fail``). At most ``chunk_size`` (capped at 8) images are processed at a time."""
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise QGError(f"chunk_size: expected an integer of at least 1, got {chunk_size!r}")
    if isinstance(work_size, bool) or not isinstance(work_size, int) or work_size < 3:
        raise QGError(f"work_size: expected an integer of at least 3, got {work_size!r}")
    chunk_size = min(chunk_size, CHUNK_SIZE)
    check_image(images)  # validate once before any work
    scores, reports = [], []
    with torch.no_grad():
        for start in range(0, images.shape[0], chunk_size):
            score, report = _score_chunk(images[start : start + chunk_size], work_size)
            scores.extend(score.tolist())
            reports.extend(report)
    return scores, reports
