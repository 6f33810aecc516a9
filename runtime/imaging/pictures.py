"""Image grids and side-by-side strips, drawn with OpenCV (no plotting library needed).
All images are RGB uint8 HWC. Plots with axes live in runtime.imaging.plots (matplotlib)."""
from __future__ import annotations

import math
from typing import Sequence

import cv2
import numpy as np

from .images import write_image

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


def save_grid(path, images: np.ndarray, **kw) -> None:
    write_image(path, image_grid(images, **kw))


def stack_panels(panels: Sequence[np.ndarray], vertical: bool = True, gap: int = 0) -> np.ndarray:
    """Stack RGB uint8 panels into one image (padding the narrower ones with white), `gap` white
    pixels between two panels."""
    axis = 0 if vertical else 1
    across = max(p.shape[1 - axis] for p in panels)
    padded = []
    for i, p in enumerate(panels):
        pad = [(0, 0), (0, 0), (0, 0)]
        pad[axis] = (0, gap if i < len(panels) - 1 else 0)
        pad[1 - axis] = (0, across - p.shape[1 - axis])
        padded.append(np.pad(p, pad, constant_values=255))
    return np.concatenate(padded, axis=axis)
