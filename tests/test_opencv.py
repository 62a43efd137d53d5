"""OpenCV is the app's (edgecls installs none in the core): any cv2 >= 4.5.5 is used, and where none can be imported
the error says which extra adds one, at the first frame, not at import."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from edgecls.runtime.opencv import MIN_VERSION, load_cv2, version_tuple

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("text, want", [("4.5.5", (4, 5, 5)), ("4.10.0-dev", (4, 10, 0)), ("5.0.0-pre", (5, 0, 0)),
                                        ("3.4.18", (3, 4, 18)), ("4.8.0.76", (4, 8, 0)), ("", ())])
def test_version_tuple(text, want):
    assert version_tuple(text) == want


def test_the_installed_opencv_is_accepted():
    import cv2

    assert load_cv2() is cv2 and version_tuple(cv2.__version__) >= MIN_VERSION


def test_without_opencv_the_first_frame_says_which_extra_adds_one(tmp_path):
    """cv2 blocked in a child process (as in an environment without it): importing edgecls and reading a spec work;
    preprocessing a frame raises BackendUnavailableError naming `edgecls[opencv]`."""
    code = ("import sys; sys.modules['cv2'] = None\n"
            "import numpy as np, edgecls\n"
            "from edgecls.runtime.preprocess import fast_pixels\n"
            "from edgecls.runtime.spec import ModelSpec\n"
            "spec = ModelSpec(arch='a', labels=('x', 'y'))\n"
            "try:\n"
            "    fast_pixels(np.zeros((480, 640, 3), np.uint8), 'RGB', spec)\n"
            "except edgecls.BackendUnavailableError as exc:\n"
            "    print(exc)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=tmp_path,
                       env={**os.environ, "PYTHONPATH": str(REPO)})
    assert r.returncode == 0, r.stderr
    assert "OpenCV (cv2) is not installed" in r.stdout and "pip install 'edgecls[opencv]'" in r.stdout, r.stdout
