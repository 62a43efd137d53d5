"""Preprocessing, defined once as data (spec.Preprocess) and executed two ways.

`reference()` is the definition: PIL's antialiased resize of the whole picture, then a center crop, then
normalization in float64, exactly as torchvision/timm evaluate. `fast()` is what the Predictor runs: it computes
which source pixels the crop keeps, reduces that region (a view, never copied) by exact 2x box filters (OpenCV
INTER_AREA, its SIMD path) while more than 2.2x the target remains, then does one final resize. No full-frame
copy or colour conversion is made; channel order is fixed on the small result. tests/test_preprocess.py holds
the two to each other.

For bicubic models the 2x box steps stop once less than 2.2x remains, and a last factor of 1.5x or more is done
bilinear: at about 2x its two taps are the box an antialiased filter needs, while OpenCV's bicubic neither
antialiases nor is cheap. A 1080p frame then takes one 2x box and one bilinear step instead of two 2x boxes and
a bicubic one: 4.1x -> 3.6x the time of one copy of the crop box on a loaded 2-core machine, and closer to the
reference (mean |diff| 1.93 -> 1.09 grey levels on the photos upscaled to 1080p; issue 18, benchmarks/framepath.py).
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import InputError
from .opencv import load_cv2
from .spec import InputSpec, ModelSpec, Preprocess


def resized_size(h: int, w: int, pre: Preprocess, inp: InputSpec) -> tuple[int, int]:
    """Size the whole picture is scaled to before cropping (torchvision Resize semantics)."""
    if pre.resize_mode == "stretch":
        return inp.height, inp.width
    th, tw = math.floor(inp.height / pre.crop_pct), math.floor(inp.width / pre.crop_pct)
    if th == tw:  # torchvision Resize(int): the shorter side becomes `th`, the longer keeps the aspect (truncated)
        return (th, int(th * w / h)) if h <= w else (int(th * h / w), th)
    s = max(th / h, tw / w)
    return max(th, round(h * s)), max(tw, round(w * s))


def crop_offsets(rh: int, rw: int, inp: InputSpec) -> tuple[int, int]:
    return int(round((rh - inp.height) / 2.0)), int(round((rw - inp.width) / 2.0))


def source_box(h: int, w: int, pre: Preprocess, inp: InputSpec) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) of the source pixels that end up in the model input."""
    if pre.resize_mode == "stretch":
        return 0, 0, h, w
    rh, rw = resized_size(h, w, pre, inp)
    top, left = crop_offsets(rh, rw, inp)
    sy, sx = h / rh, w / rw
    y0, x0 = round(top * sy), round(left * sx)
    y1, x1 = min(h, round((top + inp.height) * sy)), min(w, round((left + inp.width) * sx))
    return y0, x0, max(y1, y0 + 1), max(x1, x0 + 1)


# --- reference -------------------------------------------------------------------------------------------
def reference(img: np.ndarray, order: str, spec: ModelSpec) -> np.ndarray:
    """The definition of the model input for one image: returns a batch of one, per spec.input."""
    return to_input(reference_pixels(img, order, spec), spec, precise=True)


def reference_pixels(img: np.ndarray, order: str, spec: ModelSpec) -> np.ndarray:
    """Resized, cropped uint8 pixels in the model's channel order, by the definition (PIL, antialiased)."""
    from PIL import Image

    pre, inp = spec.preprocess, spec.input
    rgb = img if img.ndim == 2 or order == "RGB" else img[..., ::-1]
    pil = Image.fromarray(np.ascontiguousarray(rgb))
    pil = pil.convert("L") if inp.channels == 1 else pil.convert("RGB")
    filters = {"nearest": Image.NEAREST, "bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC, "area": Image.BOX}
    rh, rw = resized_size(pil.height, pil.width, pre, inp)
    pil = pil.resize((rw, rh), filters[pre.interpolation])
    top, left = crop_offsets(rh, rw, inp)
    pil = pil.crop((left, top, left + inp.width, top + inp.height))
    px = np.asarray(pil)
    if inp.channels == 3 and pre.color == "BGR":
        px = px[..., ::-1]
    return px


# --- fast path -------------------------------------------------------------------------------------------
_CV_INTERP = {"nearest": 6, "bilinear": 1, "bicubic": 2, "area": 3}  # cv2.INTER_* (6: NEAREST_EXACT, as PIL)
LAST_STEP_MAX = 2.2  # bicubic models: the 2x box steps leave a last factor below this...
LINEAR_FROM = 1.5  # ...done bilinear from this factor up (OpenCV's bicubic does not antialias), below as the spec says


def fast_pixels(img: np.ndarray, order: str, spec: ModelSpec) -> np.ndarray:
    """Resize/crop with OpenCV; returns uint8 HxWxC in the model's channel order."""
    cv2 = load_cv2()

    pre, inp = spec.preprocess, spec.input
    y0, x0, y1, x1 = source_box(img.shape[0], img.shape[1], pre, inp)
    roi = img[y0:y1, x0:x1]
    bicubic = pre.interpolation == "bicubic"
    if pre.interpolation != "nearest":
        k = LAST_STEP_MAX if bicubic else 2.0  # halve while the remaining factor is at least k
        while roi.shape[0] >= k * inp.height and roi.shape[1] >= k * inp.width:
            h2, w2 = roi.shape[0] // 2, roi.shape[1] // 2
            roi = cv2.resize(roi[: 2 * h2, : 2 * w2], (w2, h2), interpolation=cv2.INTER_AREA)
    if roi.shape[:2] != (inp.height, inp.width):
        factor = max(roi.shape[0] / inp.height, roi.shape[1] / inp.width)
        interp = cv2.INTER_LINEAR if bicubic and factor >= LINEAR_FROM else _CV_INTERP[pre.interpolation]
        roi = cv2.resize(roi, (inp.width, inp.height), interpolation=interp)
    if inp.channels == 1:
        if roi.ndim == 3:
            roi = cv2.cvtColor(roi, cv2.COLOR_RGB2GRAY if order == "RGB" else cv2.COLOR_BGR2GRAY)
        return roi
    if order != pre.color:
        return cv2.cvtColor(roi, cv2.COLOR_BGR2RGB)  # a channel swap, SIMD; a [..., ::-1] view costs 10x more to copy
    return roi


def fast(img: np.ndarray, order: str, spec: ModelSpec) -> np.ndarray:
    return to_input(fast_pixels(img, order, spec), spec)


# --- shared last step ------------------------------------------------------------------------------------
def to_input(px: np.ndarray, spec: ModelSpec, precise: bool = False) -> np.ndarray:
    """uint8 HxW[xC] pixels in model channel order -> batch-of-one tensor in the artifact's layout and dtype."""
    inp, pre = spec.input, spec.preprocess
    if px.ndim == 2:
        px = px[..., None]
    if inp.normalized_in_graph:
        x = px.transpose(2, 0, 1) if inp.layout == "NCHW" else px
        return np.ascontiguousarray(x[None])
    mean, std = np.asarray(pre.mean), np.asarray(pre.std)
    if precise:
        x = ((px.astype(np.float64) / 255.0 - mean) / std).astype(np.float32)
        x = x.transpose(2, 0, 1) if inp.layout == "NCHW" else x
    elif inp.layout == "NCHW":
        # per plane, straight into the NCHW buffer: 6x faster than a float HWC array plus a transpose copy
        x = np.empty((px.shape[2], px.shape[0], px.shape[1]), np.float32)
        for c in range(px.shape[2]):
            np.multiply(px[..., c], np.float32(1.0 / (255.0 * std[c])), out=x[c], casting="unsafe")
            x[c] += np.float32(-mean[c] / std[c])
    else:
        x = px.astype(np.float32) * (1.0 / (255.0 * std)).astype(np.float32) + (-mean / std).astype(np.float32)
    if inp.dtype == "float16":
        x = x.astype(np.float16)
    return np.ascontiguousarray(x[None])


def check_input_batch(x: np.ndarray, spec: ModelSpec) -> np.ndarray:
    """Validate an already-preprocessed batch given to predict_tensor()."""
    inp = spec.input
    want = inp.shape[1:]
    if not isinstance(x, np.ndarray) or x.ndim != 4 or tuple(x.shape[1:]) != want:
        shape = getattr(x, "shape", None)
        raise InputError(f"a preprocessed batch must have shape (N, {', '.join(map(str, want))}), got {shape}; "
                         "make it with predictor.preprocess()")
    if np.issubdtype(x.dtype, np.floating) and not np.isfinite(x).all():
        raise InputError("the input batch contains NaN or infinity; check the code that produced it")
    return x
