"""A camera box installs only the device runtime: `pip install 'edgecls[onnx]'` into a fresh virtual environment
(no torch, no training or export tooling) runs the Predictor, `edgecls info`, `edgecls check` and `edgecls-bench` on
an artifact built here. This is what the layering contract is for, checked end to end by a real install."""

from __future__ import annotations

import shutil
import subprocess
import venv
from pathlib import Path

import pytest
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def _run(args: list, cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    r = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"{args}: rc {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


@pytest.fixture(scope="module")
def device_env(tmp_path_factory) -> Path:
    """A fresh venv with edgecls[onnx] installed from a copy of the tracked source (not editable, no build files
    left in the repository)."""
    root = tmp_path_factory.mktemp("device")
    src = root / "src"
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True, text=True,
                           check=True).stdout.split()
    for f in files:
        if (REPO / f).is_file():
            (src / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / f, src / f)
    venv.EnvBuilder(with_pip=True, clear=True).create(root / "venv")
    py = root / "venv" / "bin" / "python"
    _run([py, "-m", "pip", "install", "-q", "--disable-pip-version-check", f"{src}[onnx]"], root, timeout=1200)
    return root


def test_device_only_install_has_no_torch(device_env):
    py = device_env / "venv" / "bin" / "python"
    r = _run([py, "-c", "import importlib.util as u; print([m for m in ('torch', 'timm', 'openvino', 'nncf') if u.find_spec(m)])"],
             device_env)
    assert r.stdout.strip() == "[]"


def test_device_only_install_runs_predictor_info_check_and_bench(device_env, artifacts, photos):
    py, bin_ = device_env / "venv" / "bin" / "python", device_env / "venv" / "bin"
    model = device_env / "lite0.onnx"
    shutil.copy2(artifacts["onnx"], model)
    shutil.copy2(str(artifacts["onnx"]) + ".json", str(model) + ".json")
    Image.fromarray(photos["coffee"]).save(device_env / "coffee.jpg")
    code = (
        "import sys, edgecls\n"
        "p = edgecls.Predictor('lite0.onnx', self_check=True)\n"
        "r = p.predict('coffee.jpg')\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'timm', 'onnx', 'matplotlib'))\n"
        "tooling = sorted(m for m in sys.modules if m.startswith('edgecls.') and not m.startswith(('edgecls.runtime', "
        "'edgecls.errors', 'edgecls.version')))\n"
        "print(r.label, loaded, tooling)\n"
    )
    r = _run([py, "-c", code], device_env)
    label, rest = r.stdout.strip().split(" ", 1)
    assert label == "espresso" and rest == "[] []", r.stdout
    info = _run([bin_ / "edgecls", "info", "lite0.onnx"], device_env)
    assert "efficientnet_lite0" in info.stdout and "onnxruntime" in info.stdout
    check = _run([bin_ / "edgecls", "check", "lite0.onnx"], device_env)
    assert "PASS" in check.stdout
    _run([bin_ / "edgecls-bench", "lite0.onnx", "--runs", "5", "--warmup", "1", "--no-cold", "-o", "bench"], device_env)
    assert (device_env / "bench" / "bench.json").is_file()
