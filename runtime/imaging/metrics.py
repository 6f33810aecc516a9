"""Image-quality metrics for inpainting (numpy + OpenCV only).

All functions take RGB uint8 images, (H,W,3) or a batch (N,H,W,3), and return one float per
image (a float for a single image, float64 (N,) for a batch). Masks are uint8 (H,W) or (N,H,W),
255 = missing (the hole), as everywhere in edgefill.

PSNR: 10 log10(255^2 / MSE), MSE over every pixel and channel of the uint8 images (computed
in float64). Identical images have MSE 0 and an infinite PSNR; we cap every PSNR at
PSNR_CAP = 100 dB (an MSE below 255^2 * 1e-10), so means and intervals stay finite.

Hole PSNR: the same, with the MSE over the missing pixels only (all three channels). An image
whose mask has no missing pixel has no hole PSNR: NaN (skipped by `mean_ci`).

SSIM: Wang et al. 2004, the convention of scikit-image's
`structural_similarity(a, b, channel_axis=-1, gaussian_weights=True, sigma=1.5,
use_sample_covariance=False, data_range=255)`: an 11x11 Gaussian window (sigma 1.5,
truncated at 3.5 sigma, normalised), K1 = 0.01, K2 = 0.03, L = 255, population
(not sample) variances; the SSIM map is averaged over the 'valid' region only (a 5-pixel
border is cropped, so no padding mode enters the result: 54x54 of a 64x64 image), then over
the three channels.

SSIM7 (`ssim7`): scikit-image's *default* `structural_similarity(a, b, channel_axis=-1,
data_range=255)`: a 7x7 uniform window, sample covariances (x 49/48), the same constants; the
map averaged over its valid region (a 3-pixel border cropped: 58x58 of 64x64), then over the
channels. Issue 20's SSIM goal (0.93) and its baseline table were measured this way: it gives
Telea alone (no model in it) 0.842 on test.npz center holes, where the issue's table has 0.843 on
its own 200 faces; the Gaussian convention above gives 0.817. The Gaussian one stays evaluate's
`ssim` (the paper's own window).

Seam (`seam`): the mean absolute step across the hole's border (4-neighbour pairs, one pixel in
the hole, one known), in 0..255 levels; compared with the truth's own step on the same border.

Diversity of K samples of one hole (`pairwise_hole_psnr`, `hole_std`): the mean hole PSNR over
the pairs of an image's samples (identical pairs at the 100 dB cap), and the per-pixel standard
deviation over the samples, averaged over the hole (0..255).

Confidence interval (`mean_ci`): Student's t interval of the mean, mean +- t(0.975, n-1) *
s / sqrt(n), s the sample standard deviation (ddof = 1); n = 1 gives [mean, mean]. The t
quantile is computed here (no scipy) by integrating the t density (Simpson) and bisection.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

from ..errors import EdgefillError

PSNR_CAP = 100.0
MAX_VALUE = 255.0
SSIM_SIGMA = 1.5
SSIM_WINDOW = 11  # 2 * int(3.5 * sigma + 0.5) + 1, scikit-image's truncate=3.5
SSIM_K1, SSIM_K2 = 0.01, 0.03
SSIM7_WINDOW = 7


def _batch(images: np.ndarray, name: str) -> tuple[np.ndarray, bool]:
    arr = np.asarray(images)
    single = arr.ndim == 3
    if single:
        arr = arr[None]
    if arr.ndim != 4 or arr.shape[3] != 3 or arr.dtype != np.uint8:
        raise EdgefillError(f"{name}: expected uint8 RGB images (N,H,W,3) or (H,W,3), got {arr.dtype} {arr.shape}")
    return arr, single


def _pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    a4, single = _batch(a, "metrics")
    b4, _ = _batch(b, "metrics")
    if a4.shape != b4.shape:
        raise EdgefillError(f"metrics: image shapes differ: {a4.shape} vs {b4.shape}")
    return a4, b4, single


def _out(values: np.ndarray, single: bool):
    return float(values[0]) if single else values


def mse_to_psnr(mse: np.ndarray) -> np.ndarray:
    """MSE (of 0..255 values) -> PSNR in dB, capped at PSNR_CAP; NaN stays NaN."""
    mse = np.asarray(mse, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        db = 10.0 * np.log10(MAX_VALUE ** 2 / mse)
    return np.where(np.isnan(db), np.nan, np.minimum(db, PSNR_CAP))


def psnr(a: np.ndarray, b: np.ndarray):
    """Whole-image PSNR in dB (capped at 100) of uint8 RGB (N,H,W,3) or (H,W,3) pairs."""
    a4, b4, single = _pair(a, b)
    diff = a4.astype(np.float64) - b4.astype(np.float64)
    return _out(mse_to_psnr((diff * diff).mean(axis=(1, 2, 3))), single)


def _batch_masks(masks: np.ndarray, images: np.ndarray, name: str) -> np.ndarray:
    """masks (N,H,W) or (H,W) as (N,H,W), checked against images (N,H,W,C); a mismatch is one
    EdgefillError naming the metric."""
    m = np.asarray(masks)
    if m.ndim == 2:
        m = m[None]
    if m.shape != images.shape[:3]:
        raise EdgefillError(f"{name}: mask shape {m.shape} does not match images {images.shape}")
    return m


def hole_psnr(a: np.ndarray, b: np.ndarray, masks: np.ndarray):
    """PSNR over the missing pixels only (mask >= 128, all channels); NaN where there is no hole."""
    a4, b4, single = _pair(a, b)
    m = _batch_masks(masks, a4, "hole_psnr")
    return _out(mse_to_psnr(hole_mean_square(a4.astype(np.float64) - b4.astype(np.float64), m)), single)


def hole_mean_square(diff: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """The mean of diff^2 over each image's hole (mask >= 128), all channels: diff float
    (N,...,H,W,C) channel-last (any leading axes after N, e.g. K samples), masks (N,H,W) ->
    float64 (N,...); NaN where the mask has no hole. hole_psnr's MSE, and the runtime's measure of
    how far two fills of a hole are apart (Pipeline, blend.calibrated)."""
    d = np.asarray(diff, np.float64)
    m = np.asarray(masks) >= 128
    hole = m.reshape(m.shape[:1] + (1,) * (d.ndim - 4) + m.shape[1:] + (1,)).astype(np.float64)
    count = hole.sum(axis=(-3, -2, -1)) * d.shape[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(count > 0, (d * d * hole).sum(axis=(-3, -2, -1)) / count, np.nan)


def seam(images: np.ndarray, masks: np.ndarray):
    """The step across the hole's border: the mean absolute difference (0..255, mean over the
    three channels) between 4-neighbour pixel pairs with one pixel in the hole (mask >= 128)
    and the other known. The truth's own value is the natural step of the face there; an output
    well above it has a visible seam. NaN where the hole has no known neighbour (no hole, or
    all hole). uint8 RGB (N,H,W,3) or (H,W,3), masks (N,H,W) or (H,W)."""
    a4, single = _batch(images, "seam")
    m = _batch_masks(masks, a4, "seam")
    hole = m >= 128
    img = a4.astype(np.float64)
    total = np.zeros(len(img))
    count = np.zeros(len(img))
    for axis in (1, 2):  # vertical and horizontal neighbours
        n = img.shape[axis]
        first, second = [slice(None)] * 4, [slice(None)] * 4
        first[axis], second[axis] = slice(0, n - 1), slice(1, n)
        h1, h2 = hole[tuple(first[:3])], hole[tuple(second[:3])]
        border = h1 != h2
        step = np.abs(img[tuple(first)] - img[tuple(second)]).mean(axis=3)
        total += (step * border).sum(axis=(1, 2))
        count += border.sum(axis=(1, 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        values = np.where(count > 0, total / count, np.nan)
    return _out(values, single)


def gaussian_window(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA) -> np.ndarray:
    """Normalised 1-D Gaussian taps, float64 (size,)."""
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    k = np.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def _filter_valid(img: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Separable filter of float64 (H,W) with the 1-D taps k on both axes (the Gaussian window, or
    the uniform one of SSIM7), keeping only the 'valid' region."""
    r = len(k) // 2
    out = cv2.sepFilter2D(img, cv2.CV_64F, k, k, borderType=cv2.BORDER_REFLECT)
    return out[r:-r, r:-r]


def _ssim_map_mean(x: np.ndarray, y: np.ndarray, local_mean, cov_norm: float) -> float:
    """The mean of the SSIM map of two float64 (H,W) planes in [0, 255]; local_mean: plane -> its
    windowed mean over the valid region; cov_norm scales the (co)variances (1: population)."""
    c1, c2 = (SSIM_K1 * MAX_VALUE) ** 2, (SSIM_K2 * MAX_VALUE) ** 2
    ux, uy = local_mean(x), local_mean(y)
    vx = cov_norm * (local_mean(x * x) - ux * ux)
    vy = cov_norm * (local_mean(y * y) - uy * uy)
    vxy = cov_norm * (local_mean(x * y) - ux * uy)
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return float(s.mean())


def ssim_channel(x: np.ndarray, y: np.ndarray) -> float:
    """Mean SSIM of two float64 (H,W) planes in [0, 255] (see the module docstring)."""
    k = gaussian_window()
    return _ssim_map_mean(x, y, lambda p: _filter_valid(p, k), 1.0)


def ssim7_channel(x: np.ndarray, y: np.ndarray) -> float:
    """Mean SSIM7 (module docstring) of two float64 (H,W) planes in [0, 255]."""
    k = np.full(SSIM7_WINDOW, 1.0 / SSIM7_WINDOW)
    n = SSIM7_WINDOW * SSIM7_WINDOW
    return _ssim_map_mean(x, y, lambda p: _filter_valid(p, k), n / (n - 1.0))


def _ssim_batch(a: np.ndarray, b: np.ndarray, channel, window: int, name: str):
    a4, b4, single = _pair(a, b)
    if min(a4.shape[1:3]) < window:
        raise EdgefillError(f"{name}: images must be at least {window}x{window}, got {a4.shape[1:3]}")
    af, bf = a4.astype(np.float64), b4.astype(np.float64)
    vals = np.array([np.mean([channel(af[i, :, :, c], bf[i, :, :, c]) for c in range(3)])
                     for i in range(len(a4))], np.float64)
    return _out(vals, single)


def ssim(a: np.ndarray, b: np.ndarray):
    """Mean SSIM (Wang et al. 2004, scikit-image convention; see module docstring) of uint8 RGB
    (N,H,W,3) or (H,W,3) pairs, averaged over the three channels. Images must be >= 11x11."""
    return _ssim_batch(a, b, ssim_channel, SSIM_WINDOW, "ssim")


def ssim7(a: np.ndarray, b: np.ndarray):
    """Mean SSIM7 (scikit-image's default structural_similarity; module docstring) of uint8 RGB
    (N,H,W,3) or (H,W,3) pairs, averaged over the three channels. Images must be >= 7x7."""
    return _ssim_batch(a, b, ssim7_channel, SSIM7_WINDOW, "ssim7")


def _t_pdf(x: np.ndarray, df: int) -> np.ndarray:
    logc = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
    return np.exp(logc - (df + 1) / 2 * np.log1p(x * x / df))


def _t_cdf_upper_half(x: float, df: int, intervals: int = 4000) -> float:
    """P(0 <= T <= x) by composite Simpson's rule (x >= 0)."""
    xs = np.linspace(0.0, x, intervals + 1)
    f = _t_pdf(xs, df)
    h = x / intervals
    return float(h / 3 * (f[0] + f[-1] + 4 * f[1:-1:2].sum() + 2 * f[2:-1:2].sum()))


def t_quantile(p: float, df: int) -> float:
    """Quantile of Student's t with df degrees of freedom, for p in (0.5, 1)."""
    if not 0.5 < p < 1.0 or df < 1:
        raise ValueError(f"t_quantile needs 0.5 < p < 1 and df >= 1, got p={p}, df={df}")
    target = p - 0.5
    lo, hi = 0.0, 1.0
    while _t_cdf_upper_half(hi, df) < target:
        hi *= 2.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if _t_cdf_upper_half(mid, df) < target:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def mean_ci(values, level: float = 0.95) -> tuple[float, float, float, int]:
    """(mean, lo, hi, n) of the finite values: Student's t interval of the mean at `level`.

    NaN values (e.g. hole PSNR of a mask without a hole) are dropped; n counts those kept.
    No values: (nan, nan, nan, 0). One value: (v, v, v, 1).
    """
    arr = np.asarray(values, np.float64).ravel()
    arr = arr[np.isfinite(arr)]
    n = int(arr.size)
    if n == 0:
        return math.nan, math.nan, math.nan, 0
    mean = float(arr.mean())
    if n == 1:
        return mean, mean, mean, 1
    half = t_quantile(0.5 + level / 2, n - 1) * float(arr.std(ddof=1)) / math.sqrt(n)
    return mean, mean - half, mean + half, n


def _samples(samples: np.ndarray, masks: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(samples)
    if s.ndim != 5 or s.shape[4] != 3 or s.dtype != np.uint8:
        raise EdgefillError(f"{name}: expected uint8 samples (N,K,H,W,3), got {s.dtype} {s.shape}")
    m = np.asarray(masks)
    if m.shape != (s.shape[0], *s.shape[2:4]):
        raise EdgefillError(f"{name}: mask shape {m.shape} does not match samples {s.shape}")
    return s, m >= 128


def pairwise_hole_psnr(samples: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Diversity of K samples of one hole: the mean, over the K(K-1)/2 pairs of an image's samples,
    of the hole PSNR between the two (dB; lower = more different). An identical pair counts as
    PSNR_CAP (100 dB), the cap every PSNR here has. samples uint8 (N,K,H,W,3), masks (N,H,W) ->
    float64 (N,); NaN where K < 2 or the mask has no hole."""
    s, hole = _samples(samples, masks, "pairwise_hole_psnr")
    n, k = s.shape[:2]
    if k < 2:
        return np.full(n, np.nan)
    m = np.asarray(masks)
    pairs = [hole_psnr(s[:, a], s[:, b], m) for a in range(k) for b in range(a + 1, k)]
    return np.mean(np.stack(pairs), axis=0)


def hole_std(samples: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Diversity of K samples of one hole: the standard deviation over the K samples of each hole
    pixel and channel (population, 0..255 levels), averaged over the hole. 0 = all samples equal.
    samples uint8 (N,K,H,W,3), masks (N,H,W) -> float64 (N,); NaN where the mask has no hole."""
    s, hole = _samples(samples, masks, "hole_std")
    std = s.astype(np.float64).std(axis=1).mean(axis=3)  # (N,H,W)
    count = hole.sum(axis=(1, 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(count > 0, (std * hole).sum(axis=(1, 2)) / count, np.nan)
