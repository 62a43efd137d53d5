"""Helpers for the tests that install edgecls the way a user does: build the sdist and wheel from the tracked source,
make fresh virtual environments, install with pip, read the wheel's declared ranges, and run the device commands."""

from __future__ import annotations

import email
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parent.parent
DEVICE_EXTRAS = ("opencv", "onnx", "openvino", "tflite")  # the extras whose lower bounds the lowest-versions test runs


def pyproject() -> dict:
    try:
        import tomllib
    except ImportError:  # Python 3.10: the dev extra brings tomli
        import tomli as tomllib
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def run(args: list, cwd: Path, timeout: int = 600, check: bool = True) -> subprocess.CompletedProcess:
    r = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if check:
        assert r.returncode == 0, f"{args}: rc {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


def tracked_copy(dst: Path) -> Path:
    """The tracked (and untracked, not ignored) files of the repository, copied to `dst`: what a clone holds."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True, text=True,
                           check=True).stdout.split("\n")
    for f in filter(None, files):
        if (REPO / f).is_file():
            (dst / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / f, dst / f)
    return dst


def build(root: Path) -> tuple[Path, Path]:
    """`python -m build` on a copy of the source: the sdist, then the wheel built from that sdist (so a file missing
    from the sdist is missing from the wheel too). Returns (sdist, wheel)."""
    src = tracked_copy(root / "src")
    out = root / "dist"
    run([sys.executable, "-m", "build", "--outdir", out, src], root, timeout=900)
    (sdist,), (wheel,) = out.glob("*.tar.gz"), out.glob("*.whl")
    return sdist, wheel


def make_venv(path: Path) -> Path:
    """A fresh venv with pip; returns its bin/ folder."""
    venv.EnvBuilder(with_pip=True, clear=True).create(path)
    return path / "bin"


def pip_install(bin_: Path, *args, timeout: int = 1500) -> subprocess.CompletedProcess:
    return run([bin_ / "python", "-m", "pip", "install", "-q", "--disable-pip-version-check", *args], bin_.parent,
               timeout=timeout)


def installed(bin_: Path) -> dict[str, str]:
    """name -> version of every distribution in the venv."""
    code = ("import json, importlib.metadata as m; "
            "print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))")
    import json

    return {canonicalize_name(k): v for k, v in json.loads(run([bin_ / "python", "-c", code], bin_.parent).stdout).items()}


def wheel_requirements(wheel: Path) -> list[Requirement]:
    with zipfile.ZipFile(wheel) as z:
        meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        msg = email.message_from_bytes(z.read(meta))
    return [Requirement(r) for r in msg.get_all("Requires-Dist") or []]


def wheel_metadata(wheel: Path):
    with zipfile.ZipFile(wheel) as z:
        meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        return email.message_from_bytes(z.read(meta))


def lower_bounds(wheel: Path, extras: tuple[str, ...] = DEVICE_EXTRAS) -> dict[str, str]:
    """name -> the `>=` bound the wheel declares, for the core requirements and those of `extras` (not edgecls's own
    extras that point at other extras). Every one must have a lower bound: a range without one is untested below."""
    out = {}
    for req in wheel_requirements(wheel):
        extra = next((e for e in extras if req.marker is not None and req.marker.evaluate({"extra": e})), None)
        if req.marker is not None and extra is None or canonicalize_name(req.name) == "edgecls":
            continue
        lows = [s.version for s in req.specifier if s.operator == ">="]
        assert lows, f"{req} (in {'the core' if extra is None else extra}) has no lower bound"
        out[canonicalize_name(req.name)] = lows[0]
    return out


def device_checks(bin_: Path, folder: Path, models: list[str], photo: str) -> dict[str, str]:
    """In `folder`: Predictor with its self-check on `photo`, `edgecls info`, `edgecls check` and edgecls-bench for each
    model; returns model -> the top-1 label. Asserts that no training/export tooling is imported by the Predictor."""
    labels = {}
    for model in models:
        code = (
            "import sys, edgecls\n"
            f"p = edgecls.Predictor({model!r}, self_check=True)\n"
            f"r = p.predict({photo!r})\n"
            "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'timm', 'onnx', 'matplotlib'))\n"
            "tooling = sorted(m for m in sys.modules if m.startswith('edgecls.') and not m.startswith(('edgecls.runtime', "
            "'edgecls.errors', 'edgecls.version')))\n"
            "print(r.label, loaded, tooling)\n"
        )
        r = run([bin_ / "python", "-c", code], folder)
        label, rest = r.stdout.strip().split(" ", 1)
        assert rest == "[] []", f"{model}: the Predictor imported {rest}"
        labels[model] = label
        info = run([bin_ / "edgecls", "info", model], folder)
        assert "efficientnet_lite0" in info.stdout, info.stdout
        check = run([bin_ / "edgecls", "check", model], folder)
        assert "PASS" in check.stdout, check.stdout
        out = folder / f"bench_{Path(model).suffix[1:]}"
        run([bin_ / "edgecls-bench", model, "--runs", "5", "--warmup", "1", "--no-cold", "-o", out], folder)
        assert (out / "bench.json").is_file()
    return labels


def copy_artifact(path: Path, folder: Path) -> str:
    """Copy an artifact with its companions (.bin) and sidecar into `folder`; returns its file name."""
    from edgecls.runtime.artifacts import sidecar_path
    from edgecls.runtime.runtimes import artifact_files

    for f in [*artifact_files(path), sidecar_path(path)]:
        shutil.copy2(f, folder / f.name)
    return Path(path).name
