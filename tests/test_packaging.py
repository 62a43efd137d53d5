"""Packaging: pyproject.toml declares ranges, never pins, and constraints.txt (what CI installs) sits inside them; the
sdist and wheel that `python -m build` makes pass `twine check` and carry their data files and the license; and the
wheel, installed with the LOWEST release of every core and device range into an environment that already has OpenCV's
GUI build (as a camera app does), leaves that OpenCV alone and runs the Predictor, `edgecls info`, `edgecls check` and
edgecls-bench on .onnx, .xml and .tflite files: the lower bounds are real."""

from __future__ import annotations

import subprocess
import sys
import tarfile
import zipfile

import packaging_env as env
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version
from PIL import Image

REPO = env.REPO
PROJECT = env.pyproject()["project"]
# upper bounds are for known breaks only, each with its reason in pyproject.toml; a new one is a decision, made here too
CAPPED = {"cuda-bindings"}  # its major version is the CUDA major, which must be the 13 tensorrt-cu13 is built for


def declared() -> list[tuple[str, Requirement]]:
    """(where, requirement) of the core and every extra, edgecls's references to its own extras left out."""
    out = [("core", Requirement(r)) for r in PROJECT["dependencies"]]
    out += [(extra, Requirement(r)) for extra, reqs in PROJECT["optional-dependencies"].items() for r in reqs]
    return [(w, r) for w, r in out if canonicalize_name(r.name) != "edgecls"]


def test_requirements_are_ranges_with_lower_bounds():
    pinned = [f"{w}: {r}" for w, r in declared() if any(s.operator in ("==", "===") for s in r.specifier)]
    unbounded = [f"{w}: {r}" for w, r in declared() if not any(s.operator == ">=" for s in r.specifier)]
    capped = {canonicalize_name(r.name) for _, r in declared() if any(s.operator in ("<", "<=", "~=", "!=") for s in r.specifier)}
    assert pinned == [] and unbounded == [] and capped == CAPPED, (pinned, unbounded, capped)


def test_the_lock_sits_inside_the_ranges():
    """constraints.txt (make install, CI) names every requirement of the core and the extras CI installs, each at a
    release inside its range: pyproject.toml and the lock cannot drift apart unnoticed."""
    r = subprocess.run([sys.executable, str(REPO / "tools" / "lock.py"), "--check"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def test_opencv_is_no_core_requirement():
    """Two distributions of cv2 in one environment overwrite each other's files: the core leaves the app's OpenCV be."""
    assert not [r for w, r in declared() if w == "core" and canonicalize_name(r.name).startswith("opencv")]
    assert [str(r) for w, r in declared() if w == "opencv"] == ["opencv-python-headless>=4.5.5.64"]


@pytest.mark.slow
def test_sdist_and_wheel_pass_twine_check_and_carry_their_files(dists):
    sdist, wheel = dists
    r = env.run([sys.executable, "-m", "twine", "check", "--strict", sdist, wheel], REPO)
    assert r.stdout.count("PASSED") == 2, r.stdout
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
    for f in ("edgecls/py.typed", "edgecls/runtime/spec.schema.json", "edgecls/report/schema.json", "edgecls/quiet.py"):
        assert f in names, f
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names), sorted(n for n in names if "dist-info" in n)
    assert not [n for n in names if n.startswith("tests/")]
    meta = env.wheel_metadata(wheel)
    assert meta["Requires-Python"] == PROJECT["requires-python"] and meta["License-Expression"] == "Apache-2.0"
    assert not [str(r) for r in env.wheel_requirements(wheel) if "==" in str(r.specifier)]
    with tarfile.open(sdist) as t:
        top = {n.split("/", 1)[1] for n in t.getnames() if "/" in n}
    assert {"LICENSE", "README.md", "pyproject.toml"} <= top


@pytest.mark.slow
def test_the_lowest_versions_run_beside_the_apps_own_opencv(dists, artifacts, photos, tmp_path):
    wheel = dists[1]
    lows = env.lower_bounds(wheel)
    bin_ = env.make_venv(tmp_path / "venv")
    # the camera app, before edgecls: OpenCV's GUI build and numpy, at the oldest releases edgecls accepts
    app = {"opencv-python": lows["opencv-python-headless"], "numpy": lows["numpy"]}
    env.pip_install(bin_, "--only-binary=:all:", *(f"{n}=={v}" for n, v in app.items()))
    lowest = tmp_path / "lowest.txt"
    lowest.write_text("".join(f"{n}=={v}\n" for n, v in lows.items() if n != "opencv-python-headless"))
    env.pip_install(bin_, "--only-binary=:all:", "-c", lowest, f"{wheel}[onnx,openvino,tflite]")
    have = env.installed(bin_)
    got = {n: have.get(n) for n in lows if n != "opencv-python-headless"}
    assert all(v is not None and Version(v) == Version(lows[n]) for n, v in got.items()), (got, lows)
    assert [n for n in have if n.startswith("opencv")] == ["opencv-python"], "a second cv2 distribution was installed"
    assert Version(have["opencv-python"]) == Version(app["opencv-python"]) and Version(have["numpy"]) == Version(app["numpy"])
    env.run([bin_ / "python", "-m", "pip", "check"], tmp_path)
    models = [env.copy_artifact(artifacts[k], tmp_path) for k in ("onnx", "xml", "tflite")]
    Image.fromarray(photos["coffee"]).save(tmp_path / "coffee.jpg")
    assert set(env.device_checks(bin_, tmp_path, models, "coffee.jpg").values()) == {"espresso"}
