"""OpenCV, which preprocessing needs and edgecls does not install: a camera app already has one (opencv-python with
its GUI, opencv-contrib-python, JetPack's or Raspberry Pi OS's build with GStreamer/CUDA), and pip cannot express "any
one of these", so depending on one distribution would put a second `cv2` beside the app's (both write the same
folder, and removing either breaks the other). `pip install 'edgecls[opencv]'` adds the headless build where none is.
"""

from __future__ import annotations

import functools

from ..errors import BackendUnavailableError

MIN_VERSION = (4, 5, 5)  # the oldest release tests/test_packaging.py runs the Predictor with
INSTALL = ("pip install 'edgecls[opencv]' (the headless build, for a device or server), or opencv-python if the app shows "
           "windows; edgecls uses whichever OpenCV the environment has")


def version_tuple(text: str) -> tuple[int, ...]:
    """'4.8.0' / '4.10.0-dev' / '5.0.0-pre' -> (4, 8, 0): the leading numbers."""
    out = []
    for part in text.split("-", 1)[0].split(".")[:3]:
        digits = "".join(c for c in part if c.isdigit())
        if not digits:
            break
        out.append(int(digits))
    return tuple(out)


@functools.lru_cache(maxsize=1)  # on the per-frame path: looked up once
def load_cv2():
    """The cv2 module, or BackendUnavailableError saying how to get one (none installed, or one older than 4.5.5)."""
    try:
        import cv2 as module
    except ImportError as exc:
        raise BackendUnavailableError(f"OpenCV (cv2) is not installed or does not load ({exc}); edgecls resizes and "
                                      f"converts frames with it. {INSTALL}") from exc
    found = getattr(module, "__version__", "0")
    if version_tuple(found) < MIN_VERSION:
        raise BackendUnavailableError(f"OpenCV {found} is installed; edgecls needs "
                                      f"{'.'.join(map(str, MIN_VERSION))} or newer. {INSTALL}")
    return module


__all__ = ["INSTALL", "MIN_VERSION", "load_cv2", "version_tuple"]
