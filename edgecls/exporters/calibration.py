"""Calibration inputs for INT8 conversions (TFLite PT2E / ai_edge_quantizer, TensorRT calibrators).

Static INT8 picks one scale per activation tensor from what the calibration images produce, so they must look
like the deployment data. The default, scikit-image's 11 bundled photos, only proves the pipeline works; a
warning says so. Inputs come back in the artifact's own input format (e.g. uint8 NHWC pixels, normalization in
the graph), made by the same reference preprocessing that verification uses.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from ..errors import ExportError
from ..runtime import preprocess as _pre
from ..runtime.spec import InputSpec, ModelSpec

RECOMMENDED_IMAGES = 100  # below this, activation ranges from a few photos are noisy; TF/LiteRT docs suggest 100-500


def calibration_inputs(calibration: Any, spec: ModelSpec, inp: InputSpec, *, what: str, warn: bool = True) -> list[np.ndarray]:
    """-> list of batch-of-one arrays shaped and typed like the artifact input `inp`.

    calibration: None (bundled sample photos), a dict name -> image, a list of RGB uint8 HxWx3 (or HxW) images of
    any size (center-cropped/resized per the spec), or an (N, *inp.shape[1:]) array of already preprocessed inputs.
    """
    if calibration is None:
        from ..data.samples import sample_images

        calibration = sample_images()
    if isinstance(calibration, dict):
        calibration = list(calibration.values())
    art = spec.replace(input=inp)
    want = tuple(inp.shape[1:])
    if isinstance(calibration, np.ndarray) and calibration.ndim == 4 and tuple(calibration.shape[1:]) == want:
        if calibration.dtype != np.dtype(inp.dtype):
            raise ExportError(
                f"{what}: preprocessed calibration inputs must be {inp.dtype} like the artifact input "
                f"{inp.layout} {want}; got {calibration.dtype}. Pass RGB uint8 images instead"
            )
        out = [np.ascontiguousarray(calibration[i : i + 1]) for i in range(len(calibration))]
    else:
        out = []
        for i, img in enumerate(calibration):
            img = np.asarray(img)
            if img.dtype != np.uint8 or img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] not in (1, 3)):
                raise ExportError(
                    f"{what}: calibration item {i} is {img.dtype} {img.shape}; give RGB uint8 HxWx3 images, or an "
                    f"(N, {', '.join(map(str, want))}) {inp.dtype} array of preprocessed inputs"
                )
            rgb = np.repeat(img[..., :1], 3, axis=2) if img.ndim == 3 and img.shape[2] == 1 else img
            out.append(_pre.to_input(_pre.reference_pixels(rgb, "RGB", spec), art, precise=True))
    if not out:
        raise ExportError(f"{what}: calibration is empty; INT8 needs representative images")
    if warn and len(out) < RECOMMENDED_IMAGES:
        warnings.warn(
            f"{what}: calibrating on {len(out)} images; use ~{RECOMMENDED_IMAGES}+ images like the deployment data "
            "(calibration=...) for stable INT8 ranges",
            UserWarning,
            stacklevel=3,
        )
    return out
