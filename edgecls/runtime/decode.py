"""Image files (a path or bytes) to pixels, one way everywhere: training, evaluation, calibration, the Predictor.

Two rules every input path shares:
- EXIF orientation is applied (`upright`): a phone photo stored sideways with an orientation tag is the picture a
  viewer shows, in training, in evaluation and on the device (file path, bytes and PIL images alike).
- `to_rgb` turns every PIL mode a photo folder holds into RGB uint8: grayscale and 1-bit (channels repeated),
  palette, CMYK, YCbCr, LAB, HSV (colour conversion), RGBA/LA/PA and palette transparency (composited over white,
  what a viewer shows), 16/32-bit integer and float images (scaled to 8 bits, see `_to_8bit`).

Image files are converted the same way wherever they are read: dataset folders (the data report lists what was
converted) and the Predictor's file and bytes inputs (images.py). The Predictor's array checks stay strict: an
app's numpy frame with an alpha channel is refused rather than guessed.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ImageFormatError, ImageTooLargeError, InputError

# the image files edgecls reads from folders (training, calibration, evaluation), by suffix
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif")
ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")
COLOUR_MODES = ("P", "CMYK", "YCbCr", "LAB", "HSV")
WIDE_MODES = ("I", "F")  # plus every "I;16*"


def upright(im: Any) -> Any:
    """The image as a viewer shows it: EXIF orientation applied (a no-op when there is no tag or it is 1)."""
    from PIL import ImageOps

    try:
        orientation = im.getexif().get(0x0112, 1)
    except Exception:  # noqa: BLE001 - a damaged EXIF block is no orientation, not an unreadable image
        return im
    return ImageOps.exif_transpose(im) if orientation not in (None, 1) else im


def open_image(src: str | os.PathLike | bytes | bytearray | memoryview, *, draft: tuple[int, int] | None = None,
               formats: tuple[str, ...] | None = None, max_pixels: int | None = None) -> Any:
    """Decode a file or its bytes fully (a truncated file fails here, not later), EXIF orientation applied.

    draft: let the JPEG decoder reduce the image to about this (width, height) while decoding (much faster for a
    check of a large photo); the whole stream is still read, so a truncated file still fails.
    formats: the only PIL formats tried (e.g. ("JPEG", "PNG", "WEBP") for bytes from a network: an EPS upload then
    never reaches Ghostscript); another format is an ImageFormatError.
    max_pixels: width x height read from the header, checked before any pixel is decoded (a 20000x20000 PNG of a few
    KB would take 1.2 GB); over it is an ImageTooLargeError.
    """
    from PIL import Image, UnidentifiedImageError

    if isinstance(src, (bytes, bytearray, memoryview)):
        what, fh = "image bytes", io.BytesIO(bytes(src))
    else:
        p = Path(src)
        if not p.is_file():
            raise InputError(f"image file not found: {p}; check the path")
        what, fh = str(p), p
    try:
        with Image.open(fh, formats=formats) as im:
            if max_pixels is not None and im.width * im.height > max_pixels:
                raise ImageTooLargeError(f"{what}: the image is {im.width}x{im.height}, over the {max_pixels:,}-pixel "
                                         "limit; downscale it")
            if draft is not None and im.format == "JPEG":
                im.draft("RGB" if im.mode in ("RGB", "YCbCr") else im.mode, draft)
            im.load()
            return upright(im)
    except InputError:  # the pixel limit above (a ValueError, which the last clause would call corrupt)
        raise
    except UnidentifiedImageError as exc:
        if formats is not None:
            named = f"{', '.join(formats[:-1])} or {formats[-1]}" if len(formats) > 1 else formats[0]
            raise ImageFormatError(f"{what} is not a {named} image (the formats accepted here); send one of those") from exc
        raise InputError(f"{what} is not an image file PIL can read (corrupt or unsupported format); convert it to JPEG or PNG") from exc
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(f"{what} is too large to decode safely ({exc}); downscale it first") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:  # truncated/corrupt data
        raise InputError(f"{what} could not be decoded ({exc}); the file is truncated or corrupt: save it again from the original") from exc


def _to_8bit(a: np.ndarray) -> np.ndarray:
    """16/32-bit integer or float pixels -> uint8: 16-bit range scaled by 255/65535 (what viewers do), [0, 1] floats
    by 255, anything else by its own maximum (a mode "I" image holding 0-4095 from a 12-bit sensor keeps contrast)."""
    a = a.astype(np.float64)
    hi = float(np.nanmax(a)) if a.size else 0.0
    if np.issubdtype(a.dtype, np.floating) and hi <= 1.0 and float(np.nanmin(a)) >= 0.0:
        scale = 255.0
    elif hi <= 255.0:
        scale = 1.0
    elif hi <= 65535.0:
        scale = 255.0 / 65535.0
    else:
        scale = 255.0 / hi
    return np.clip(np.nan_to_num(a) * scale + 0.5, 0, 255).astype(np.uint8)


def conversion(im: Any) -> str | None:
    """What to_rgb does to this image, in words (None: it is 8-bit RGB already)."""
    mode = im.mode
    if mode == "RGB":
        return None
    if mode in ALPHA_MODES or (mode in ("P", "L", "RGB") and "transparency" in im.info):
        return f"{mode} with transparency composited over white"
    if mode.startswith("I;16") or mode in WIDE_MODES:
        return f"{mode} ({'float' if mode == 'F' else '16/32-bit'}) scaled to 8 bits"
    if mode in ("L", "1"):
        return f"grayscale ({mode}) to RGB"
    return f"{mode} to RGB"


def to_rgb(im: Any) -> np.ndarray:
    """Any PIL image -> RGB uint8 HxWx3 (see the module docstring for each mode)."""
    from PIL import Image

    mode = im.mode
    if mode == "RGB" and "transparency" not in im.info:
        return np.array(im)  # a writable copy: torch.from_numpy in training warns on PIL's read-only buffer
    if mode in ALPHA_MODES or "transparency" in im.info:
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.array(Image.alpha_composite(white, rgba).convert("RGB"))
    if mode.startswith("I;16") or mode in WIDE_MODES:
        g = _to_8bit(np.asarray(im))
        return np.repeat(g[..., None], 3, axis=2) if g.ndim == 2 else g[..., :3]
    return np.array(im.convert("RGB"))


def read_rgb(src: str | os.PathLike | bytes) -> np.ndarray:
    """A file (or its bytes) as upright RGB uint8 HxWx3, whatever its mode: what training and evaluation see."""
    return to_rgb(open_image(src))


__all__ = ["conversion", "open_image", "read_rgb", "to_rgb", "upright"]
