"""Real photos shipped by scikit-image (no download needed): what exports are verified on, what the demo classifies,
and random crops of them as INT8 calibration when no labelled set of the model's domain is at hand."""

from __future__ import annotations

import numpy as np

from ..errors import DataError, require
from ..runtime.opencv import load_cv2

COLOR = ("chelsea", "coffee", "astronaut", "rocket", "immunohistochemistry", "hubble_deep_field", "retina", "colorwheel")
GRAY = ("camera", "coins", "moon")  # grayscale photos, replicated to RGB on purpose


def sample_images(names: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
    """name -> RGB uint8 HxWx3 array. EDGECLS_SAMPLE_PHOTOS=file.npz (name -> array, e.g. written by
    tools/fetch_gpu_wheels.sh) serves them on an offline machine without scikit-image."""
    import os

    if os.environ.get("EDGECLS_SAMPLE_PHOTOS"):
        with np.load(os.environ["EDGECLS_SAMPLE_PHOTOS"]) as z:
            return {n: z[n] for n in (names or COLOR + GRAY)}
    data = require("skimage.data", "torch")
    out = {}
    for name in names or COLOR + GRAY:
        if name not in COLOR + GRAY:
            raise DataError(f"unknown sample {name!r}; choose from {', '.join(COLOR + GRAY)}")
        a = getattr(data, name)()
        out[name] = np.repeat(a[..., None], 3, axis=2) if a.ndim == 2 else np.ascontiguousarray(a[..., :3])
    return out


def photo_crops(n: int = 300, seed: int = 0, size: int = 320) -> list[np.ndarray]:
    """Random resized crops and flips of the bundled photos: real image statistics, many framings. A stand-in for
    calibration: a few hundred of the user's own images are better, and the lineage says which was used."""
    cv2 = load_cv2()

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
