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
    known pixels kept. Rows with the same known pixels and hole (the K samples of one face) are
    filled once: the fill reads nothing else."""
    flag = DIFFUSION_METHODS[method]
    if len(images) == 0:
        return np.zeros_like(images, dtype=np.uint8)
    holes = np.asarray(masks) >= 128
    known = np.where(holes[..., None], np.uint8(0), np.asarray(images, np.uint8))
    filled: dict[bytes, np.ndarray] = {}
    out = []
    for i in range(len(images)):
        key = known[i].tobytes() + holes[i].tobytes()
        if key not in filled:
            filled[key] = cv2.inpaint(np.ascontiguousarray(known[i]), holes[i].astype(np.uint8) * 255,
                                      INPAINT_RADIUS, flag)
        out.append(filled[key])
    return np.stack(out)
