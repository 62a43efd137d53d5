"""A camera box installs only the device runtime: the wheel with `[onnx]` into a fresh virtual environment (no torch, no
training or export tooling, no OpenCV: a device without one adds `[opencv]`, and the error says so) runs the Predictor,
`edgecls info`, `edgecls check` and `edgecls-bench` on an artifact built here. This is what the layering contract is
for, checked end to end by a real install of the wheel `python -m build` makes, at the versions CI locks
(constraints.txt); tests/test_packaging.py installs the lowest versions of the same ranges."""

from __future__ import annotations

import pytest
from packaging_env import REPO, copy_artifact, device_checks, installed, make_venv, pip_install, run
from PIL import Image

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def device_env(dists, tmp_path_factory):
    root = tmp_path_factory.mktemp("device")
    bin_ = make_venv(root / "venv")
    pip_install(bin_, "-c", REPO / "constraints.txt", f"{dists[1]}[onnx]")
    return root, bin_


def test_a_device_install_needs_no_torch_and_asks_for_opencv_only_where_none_is(device_env, dists, artifacts, photos):
    root, bin_ = device_env
    have = installed(bin_)
    assert [m for m in ("torch", "timm", "openvino", "nncf", "onnx", "matplotlib") if m in have] == []
    assert not [n for n in have if n.startswith("opencv")], "the core must not pick an OpenCV build for the app"
    model = copy_artifact(artifacts["onnx"], root)
    Image.fromarray(photos["coffee"]).save(root / "coffee.jpg")
    r = run([bin_ / "python", "-c", f"import edgecls; edgecls.Predictor({model!r}).predict('coffee.jpg')"], root, check=False)
    assert r.returncode != 0 and "BackendUnavailableError" in r.stderr and "pip install 'edgecls[opencv]'" in r.stderr, r.stderr
    r = run([bin_ / "edgecls", "info", model], root, check=False)  # reading the spec needs no OpenCV
    assert r.returncode == 0 and "efficientnet_lite0" in r.stdout, r.stdout + r.stderr

    pip_install(bin_, "-c", REPO / "constraints.txt", f"{dists[1]}[onnx,opencv]")
    run([bin_ / "python", "-m", "pip", "check"], root)
    assert device_checks(bin_, root, [model], "coffee.jpg") == {model: "espresso"}
