"""Calibration images when no labelled set of the model's domain is at hand (an ImageNet model, offline).

Random resized crops and flips of the bundled real photos: real image statistics, many framings. It is a stand-in:
calibrating on a few hundred of the user's own images is better, and the lineage says which was used.
"""

from __future__ import annotations

import numpy as np


def photo_crops(n: int = 300, seed: int = 0, size: int = 320) -> list[np.ndarray]:
    import cv2

    from ..samples import sample_images

    photos = list(sample_images().values())
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        img = photos[k % len(photos)]
        h, w = img.shape[:2]
        scale = rng.uniform(0.25, 1.0)
        ch, cw = max(16, int(h * np.sqrt(scale))), max(16, int(w * np.sqrt(scale)))
        y, x = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
        crop = img[y : y + ch, x : x + cw]
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        out.append(cv2.resize(np.ascontiguousarray(crop), (size, size), interpolation=cv2.INTER_AREA))
    return out
