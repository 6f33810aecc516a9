"""Pictures people look at: image grids and simple line plots, drawn with OpenCV only
(the runtime has no matplotlib). All images are RGB uint8 HWC."""
from __future__ import annotations

import math
from typing import Sequence

import cv2
import numpy as np

from .images import write_image

PALETTE = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
           (140, 86, 75), (227, 119, 194), (127, 127, 127)]  # RGB


def image_grid(images: np.ndarray, ncols: int | None = None, pad: int = 2, scale: int = 1,
               col_titles: Sequence[str] | None = None) -> np.ndarray:
    """uint8 (N,H,W,3) -> one RGB grid image; optional column titles drawn above."""
    n, h, w, _ = images.shape
    ncols = ncols or int(math.ceil(math.sqrt(n)))
    nrows = int(math.ceil(n / ncols))
    title_h = 14 * scale if col_titles else 0
    grid = np.full((title_h + nrows * (h * scale + pad) + pad, ncols * (w * scale + pad) + pad, 3), 255, np.uint8)
    for i in range(n):
        r, c = divmod(i, ncols)
        tile = images[i] if scale == 1 else cv2.resize(images[i], (w * scale, h * scale),
                                                         interpolation=cv2.INTER_NEAREST)
        y0, x0 = title_h + pad + r * (h * scale + pad), pad + c * (w * scale + pad)
        grid[y0:y0 + h * scale, x0:x0 + w * scale] = tile
    for c, title in enumerate(col_titles or []):
        x0 = pad + c * (w * scale + pad)
        cv2.putText(grid, title[:14], (x0 + 1, title_h - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.3 * scale,
                    (0, 0, 0), 1, cv2.LINE_AA)
    return grid


def line_plot(series: dict[str, Sequence[float]], title: str = "", xlabel: str = "", ylabel: str = "",
              size: tuple[int, int] = (640, 400), log_y: bool = False, x: Sequence[float] | None = None) -> np.ndarray:
    """Draw named series as lines on axes with ticks -> RGB uint8 (H,W,3)."""
    w, h = size
    img = np.full((h, w, 3), 255, np.uint8)
    left, right, top, bottom = 70, 20, 30, 45
    vals = [np.asarray(v, np.float64) for v in series.values() if len(v)]
    if not vals:
        return img
    allv = np.concatenate(vals)
    allv = allv[np.isfinite(allv)]
    if log_y:
        allv = np.log10(np.clip(allv, 1e-12, None))
    lo, hi = (float(allv.min()), float(allv.max())) if allv.size else (0.0, 1.0)
    if hi - lo < 1e-12:
        lo, hi = lo - 0.5, hi + 0.5
    n_max = max(len(v) for v in vals)
    xs_all = np.asarray(x, np.float64) if x is not None else np.arange(n_max, dtype=np.float64)
    x_lo, x_hi = float(xs_all.min()), float(max(xs_all.max(), xs_all.min() + 1e-9))

    def px(xv, yv):
        return (int(left + (xv - x_lo) / (x_hi - x_lo) * (w - left - right)),
                int(h - bottom - (yv - lo) / (hi - lo) * (h - top - bottom)))

    cv2.rectangle(img, (left, top), (w - right, h - bottom), (0, 0, 0), 1)
    for k in range(5):
        yv = lo + (hi - lo) * k / 4
        _, yp = px(x_lo, yv)
        label = f"{10 ** yv:.3g}" if log_y else f"{yv:.3g}"
        cv2.line(img, (left - 4, yp), (left, yp), (0, 0, 0), 1)
        cv2.putText(img, label, (2, yp + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (0, 0, 0), 1, cv2.LINE_AA)
        xv = x_lo + (x_hi - x_lo) * k / 4
        xp, _ = px(xv, lo)
        cv2.line(img, (xp, h - bottom), (xp, h - bottom + 4), (0, 0, 0), 1)
        cv2.putText(img, f"{xv:.4g}", (xp - 12, h - bottom + 16), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (0, 0, 0), 1,
                    cv2.LINE_AA)
    for i, (name, v) in enumerate(series.items()):
        arr = np.asarray(v, np.float64)
        if not len(arr):
            continue
        if log_y:
            arr = np.log10(np.clip(arr, 1e-12, None))
        xs = xs_all[: len(arr)] if x is not None else np.arange(len(arr))
        pts = np.array([px(a, b) for a, b in zip(xs, arr) if np.isfinite(b)], np.int32)
        color = PALETTE[i % len(PALETTE)]
        if len(pts) > 1:
            cv2.polylines(img, [pts], False, color, 1, cv2.LINE_AA)
        elif len(pts) == 1:
            cv2.circle(img, tuple(int(c) for c in pts[0]), 3, color, -1)
        cv2.putText(img, name, (left + 8, top + 16 + 16 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.45, color, 1, cv2.LINE_AA)
    cv2.putText(img, title, (left, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, xlabel, (w // 2 - 30, h - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, ylabel, (2, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
    return img


def save_grid(path, images: np.ndarray, **kw) -> None:
    write_image(path, image_grid(images, **kw))


def save_line_plot(path, series: dict[str, Sequence[float]], **kw) -> None:
    write_image(path, line_plot(series, **kw))


def box_plot(groups: dict[str, Sequence[float]], title: str = "", xlabel: str = "",
             size: tuple[int, int] = (640, 400), log_x: bool = True) -> np.ndarray:
    """Horizontal box plot, one row per named group -> RGB uint8 (H,W,3).

    Box: 25th to 75th percentile with a line at the median; whiskers: 1st and 99th percentile;
    dots: the min and max when outside the whiskers. log_x puts the value axis on a log10 scale
    (latencies that span orders of magnitude)."""
    w, h = size
    img = np.full((h, w, 3), 255, np.uint8)
    left, right, top, bottom = 130, 20, 30, 45
    names = [k for k, v in groups.items() if len(v)]
    if not names:
        return img

    def tr(v):
        v = np.asarray(v, np.float64)
        return np.log10(np.clip(v, 1e-9, None)) if log_x else v

    allv = np.concatenate([tr(groups[k]) for k in names])
    allv = allv[np.isfinite(allv)]
    lo, hi = float(allv.min()), float(allv.max())
    if hi - lo < 1e-9:
        lo, hi = lo - 0.5, hi + 0.5
    pad = 0.04 * (hi - lo)
    lo, hi = lo - pad, hi + pad

    def xp(v):
        return int(left + (v - lo) / (hi - lo) * (w - left - right))

    cv2.rectangle(img, (left, top), (w - right, h - bottom), (0, 0, 0), 1)
    for k in range(6):
        v = lo + (hi - lo) * k / 5
        x = xp(v)
        cv2.line(img, (x, h - bottom), (x, h - bottom + 4), (0, 0, 0), 1)
        cv2.line(img, (x, top), (x, h - bottom), (225, 225, 225), 1)
        label = f"{10 ** v:.3g}" if log_x else f"{v:.3g}"
        (tw, _), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.38, 1)
        tx = min(max(0, x - tw // 2), w - tw - 2)
        cv2.putText(img, label, (tx, h - bottom + 16), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (0, 0, 0), 1, cv2.LINE_AA)
    row_h = (h - top - bottom) / len(names)
    for i, name in enumerate(names):
        v = tr(groups[name])
        v = v[np.isfinite(v)]
        p1, p25, p50, p75, p99 = np.percentile(v, [1, 25, 50, 75, 99])
        yc = int(top + row_h * (i + 0.5))
        bh = max(3, int(row_h * 0.3))
        color = PALETTE[i % len(PALETTE)]
        cv2.line(img, (xp(p1), yc), (xp(p99), yc), (0, 0, 0), 1)
        for p in (p1, p99):
            cv2.line(img, (xp(p), yc - bh // 2), (xp(p), yc + bh // 2), (0, 0, 0), 1)
        cv2.rectangle(img, (xp(p25), yc - bh), (max(xp(p75), xp(p25) + 1), yc + bh), color, -1)
        cv2.rectangle(img, (xp(p25), yc - bh), (max(xp(p75), xp(p25) + 1), yc + bh), (0, 0, 0), 1)
        cv2.line(img, (xp(p50), yc - bh), (xp(p50), yc + bh), (0, 0, 0), 2)
        for extreme in (v.min(), v.max()):
            if extreme < p1 or extreme > p99:
                cv2.circle(img, (xp(extreme), yc), 2, (0, 0, 0), -1)
        cv2.putText(img, name[:20], (4, yc + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, title, (left, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, xlabel, (w // 2 - 40, h - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
    return img


def stack_panels(panels: Sequence[np.ndarray], vertical: bool = True) -> np.ndarray:
    """Stack RGB uint8 panels into one image (padding the narrower ones with white)."""
    if vertical:
        width = max(p.shape[1] for p in panels)
        padded = [np.pad(p, ((0, 0), (0, width - p.shape[1]), (0, 0)), constant_values=255) for p in panels]
        return np.concatenate(padded, axis=0)
    height = max(p.shape[0] for p in panels)
    padded = [np.pad(p, ((0, height - p.shape[0]), (0, 0), (0, 0)), constant_values=255) for p in panels]
    return np.concatenate(padded, axis=1)
