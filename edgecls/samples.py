"""Real photos shipped by scikit-image, used to verify exports and in the demo (no download needed)."""

from __future__ import annotations

import numpy as np

from .errors import require

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
            raise ValueError(f"unknown sample {name!r}; choose from {', '.join(COLOR + GRAY)}")
        a = getattr(data, name)()
        out[name] = np.repeat(a[..., None], 3, axis=2) if a.ndim == 2 else np.ascontiguousarray(a[..., :3])
    return out
