"""OpenCV's diffusion fills of 64x64 holes: the classical baselines (`edgefill evaluate`'s telea and
ns rows, the no-GAN refiner's training fills) and the Telea channels of the refiner that sees both
fills (runtime.imaging.images.refiner_input). One call, so all of them fill alike."""
from __future__ import annotations

import cv2
import numpy as np

INPAINT_RADIUS = 3
DIFFUSION_METHODS = {"telea": cv2.INPAINT_TELEA, "ns": cv2.INPAINT_NS}


def opencv_inpaint(images: np.ndarray, masks: np.ndarray, method: str) -> np.ndarray:
    """cv2.inpaint with radius INPAINT_RADIUS, image by image. images uint8 (N,H,W,3) RGB (what
    lies in the hole is ignored), masks uint8 (N,H,W), >= 128 = fill -> uint8 (N,H,W,3) RGB, the
    known pixels kept."""
    flag = DIFFUSION_METHODS[method]
    if len(images) == 0:
        return np.zeros_like(images, dtype=np.uint8)
    return np.stack([cv2.inpaint(np.ascontiguousarray(images[i]), (masks[i] >= 128).astype(np.uint8) * 255,
                                 INPAINT_RADIUS, flag) for i in range(len(images))])
