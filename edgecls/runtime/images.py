"""Turn whatever the caller hands us (path, encoded bytes, PIL image, numpy frame) into a validated uint8 HxWxC array.

An image file (a path or its bytes) is read the one way edgecls reads every file, in training, evaluation,
fit-reference and here (decode.read_rgb): EXIF rotation applied, grayscale/palette/CMYK/16-bit/alpha converted to
RGB. The file's format says what its pixels are, so nothing is guessed, and the photo a model was trained on is
classified as it was trained. Arrays and PIL images come from the app's own code instead: nothing is guessed
silently there, a numpy frame must say whether it is RGB or BGR (OpenCV frames are BGR), and grayscale, alpha,
16-bit, float and empty images are refused with the conversion to apply.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError

MAX_PIXELS = 100_000_000  # larger than any camera frame; refuses decompression bombs and absurd arrays

_GRAY_HINT = "convert it first (cv2.cvtColor(img, cv2.COLOR_GRAY2RGB) or PIL img.convert('RGB'))"


def _check_array(a: np.ndarray, channels: int, what: str) -> np.ndarray:
    if a.dtype != np.uint8:
        if a.dtype == np.uint16:
            hint = "scale it to 8 bits first, e.g. (img >> 8).astype(np.uint8) or cv2.convertScaleAbs(img, alpha=255/65535)"
        elif np.issubdtype(a.dtype, np.floating):
            hint = "if it holds [0, 1] values use (np.clip(img, 0, 1) * 255).round().astype(np.uint8); edgecls normalizes itself"
        else:
            hint = "convert it to uint8 pixels (0-255)"
        raise InputError(f"{what} has dtype {a.dtype}; edgecls expects uint8 pixels: {hint}")
    if a.size == 0 or a.ndim not in (2, 3) or min(a.shape[:2]) == 0:
        raise InputError(f"{what} has shape {a.shape}; expected a non-empty HxWx3 (or HxW for grayscale models) image")
    if a.shape[0] * a.shape[1] > MAX_PIXELS:
        raise InputError(f"{what} has {a.shape[0]}x{a.shape[1]} pixels, over the {MAX_PIXELS:,} limit; downscale it first")
    c = 1 if a.ndim == 2 else a.shape[2]
    if channels == 3:
        if c == 1:
            raise InputError(f"{what} is grayscale (shape {a.shape}) but the model expects 3-channel color; {_GRAY_HINT}")
        if c == 4:
            raise InputError(
                f"{what} has 4 channels (alpha, shape {a.shape}); drop the alpha channel first "
                "(cv2.cvtColor(img, cv2.COLOR_BGRA2BGR) / COLOR_RGBA2RGB, or PIL img.convert('RGB'))"
            )
        if c != 3:
            raise InputError(f"{what} has {c} channels (shape {a.shape}); expected 3 (HxWx3)")
    else:
        if c not in (1, 3):
            raise InputError(f"{what} has {c} channels (shape {a.shape}); this grayscale model takes HxW or HxWx3 images")
    return a


def _from_file(src: Path | bytes | bytearray | memoryview, channels: int, what: str, **limits: Any) -> np.ndarray:
    from .decode import open_image, to_rgb

    im = open_image(src, **limits)  # EXIF orientation applied; a truncated or non-image file is an InputError here
    if channels == 1 and im.mode in ("L", "1"):
        return _check_array(np.asarray(im.convert("L")), channels, what)  # a grayscale model keeps the file's own gray
    return _check_array(to_rgb(im), channels, what)


def _from_pil(im: Any, channels: int, what: str) -> np.ndarray:
    mode = im.mode
    if mode in ("P", "CMYK", "YCbCr", "LAB", "HSV") and "transparency" not in im.info:
        im = im.convert("RGB")  # colour images in another encoding: lossless intent, no channel is guessed
        mode = "RGB"
    if mode.startswith("I;16") or mode in ("I", "F"):
        raise InputError(f"{what} is a {mode} (16/32-bit) image; edgecls expects 8-bit pixels: convert it to 8-bit RGB first")
    if mode in ("RGBA", "LA", "PA", "P", "RGBa", "La"):
        raise InputError(f"{what} has an alpha channel (mode {mode}); drop it first, e.g. img.convert('RGB')")
    if mode == "1":
        im = im.convert("L")
        mode = "L"
    if mode not in ("RGB", "L"):
        raise InputError(f"{what} has PIL mode {mode}; convert it to 'RGB' first")
    return _check_array(np.asarray(im), channels, what)


def image_from_bytes(data: bytes | bytearray | memoryview, *, channels: int = 3, formats: tuple[str, ...] | None = None,
                     max_pixels: int | None = None) -> np.ndarray:
    """Encoded image bytes from an untrusted sender (a network request) -> uint8 HxWx3 RGB (HxW for a grayscale model
    given a gray file), as load_image reads bytes, but only `formats` are tried (ImageFormatError) and the pixel count is
    checked from the header before decoding (ImageTooLargeError); see decode.open_image."""
    return _from_file(data, channels, "image bytes", formats=formats, max_pixels=max_pixels)


def load_image(x: Any, *, color: str | None, channels: int = 3) -> tuple[np.ndarray, str]:
    """Return (uint8 array, channel order 'RGB'|'BGR') without copying a numpy frame."""
    if isinstance(x, (str, os.PathLike)):
        p = Path(x)
        return _from_file(p, channels, f"image {p}"), "RGB"
    if isinstance(x, (bytes, bytearray, memoryview)):  # an encoded file (JPEG/PNG/...) from a socket or a request
        return _from_file(x, channels, "image bytes"), "RGB"
    if isinstance(x, np.ndarray):
        if x.ndim == 3 and x.shape[2] == 3 and color is None:
            raise InputError(
                "a numpy frame needs its channel order: predict(frame, color='BGR') for OpenCV frames, "
                "color='RGB' for PIL/imageio/skimage arrays (or set Predictor(..., color='BGR') once)"
            )
        if color not in (None, "RGB", "BGR"):
            raise InputError(f"color={color!r} is not valid; use 'RGB' or 'BGR'")
        return _check_array(x, channels, "frame"), (color or "RGB")
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - pillow is a core dependency
        Image = None
    if Image is not None and isinstance(x, Image.Image):
        from .decode import upright

        return _from_pil(upright(x), channels, "PIL image"), "RGB"  # Image.open() leaves EXIF rotation unapplied
    raise InputError(
        f"cannot use a {type(x).__name__} as an image; pass a numpy HxWx3 uint8 frame, a PIL image, a file path "
        "or the bytes of an image file"
    )
