"""Masked temporal flicker (DESIGN section 5; the flow warping error of Lai et al., ECCV 2018):

    E = mean over t of  sum_x M_t(x) |O_t(x) - O_{t+1}(x + F_t(x))|^2 / sum_x M_t(x)

F_t: the optical flow from SOURCE frame t to t+1 (cv2.DISOpticalFlow, medium preset, on gray
frames); O in [0,1] RGB; M_t: inside frame t's hole AND not occluded (forward-backward check:
|F_t(x) + B_t(x + F_t(x))| <= 0.01 |F|^2 + 0.5 px, B the backward flow). Reported as a ratio:
E of the output / E of the source video on the same pixels (1.0: as steady as the real video).
Frames are optionally downscaled (`scale`) for speed; flows are computed once per pair and
shared by every video measured (output, source, Telea, ...).
"""
from __future__ import annotations

import cv2
import numpy as np


class FlickerMeter:
    """Feed frames in order with add(source, masks, **outputs); result() -> {name: E, ...}."""

    def __init__(self, scale: float = 0.5):
        self.scale = scale
        self.dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        self.prev = None
        self.sums: dict[str, list[float]] = {}

    def _small(self, img: np.ndarray, interp=cv2.INTER_AREA) -> np.ndarray:
        if self.scale == 1.0:
            return img
        h, w = img.shape[:2]
        return cv2.resize(img, (max(1, int(w * self.scale)), max(1, int(h * self.scale))), interpolation=interp)

    def add(self, source: np.ndarray, mask: np.ndarray | None, **outputs: np.ndarray) -> None:
        """source RGB uint8 (H,W,3); mask uint8 (H,W) 255 = hole (None: no hole this frame, the
        pair is skipped); outputs: name -> RGB uint8 (H,W,3). 'source' is measured too."""
        cur = {"source": self._small(source), **{k: self._small(v) for k, v in outputs.items()}}
        gray = cv2.cvtColor(cur["source"], cv2.COLOR_RGB2GRAY)
        m = None if mask is None else self._small(mask, cv2.INTER_NEAREST) >= 128
        if self.prev is not None and self.prev[2] is not None:
            pgray, pframes, pmask = self.prev
            fwd = self.dis.calc(pgray, gray, None)
            bwd = self.dis.calc(gray, pgray, None)
            h, w = gray.shape
            gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
            mx, my = gx + fwd[..., 0], gy + fwd[..., 1]
            bwd_at = cv2.remap(bwd, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=1e4)
            diff = fwd + bwd_at
            ok = (diff ** 2).sum(-1) <= 0.01 * (fwd ** 2).sum(-1) + 0.5
            inside = (mx >= 0) & (mx <= w - 1) & (my >= 0) & (my <= h - 1)
            valid = pmask & ok & inside
            if valid.any():
                for name, frame in cur.items():
                    if name not in pframes:
                        continue
                    warped = cv2.remap(frame, mx, my, cv2.INTER_LINEAR).astype(np.float32) / 255.0
                    err = ((pframes[name].astype(np.float32) / 255.0 - warped) ** 2).sum(-1)
                    self.sums.setdefault(name, []).append(float(err[valid].mean()))
        self.prev = (gray, cur, m)

    def result(self) -> dict:
        """{"E": {name: mean E}, "ratio": {name: E / E_source}, "pairs": n}."""
        e = {k: float(np.mean(v)) for k, v in self.sums.items() if v}
        src = e.get("source")
        return {"E": e, "ratio": {k: (v / src if src else None) for k, v in e.items() if k != "source"},
                "pairs": len(self.sums.get("source", []))}
