"""Files on disk: atomic writes, the `<artifact>.json` sidecar, and edgecls's own `.pt` format.

Atomic means: write to a temporary file in the same folder, fsync, then os.replace; a crash leaves either the old
file or the new one at the final path, never half of one.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Iterator

from .errors import BackendUnavailableError, ModelFileError, SpecError, require
from .spec import ModelSpec

PT_FORMAT = "edgecls.pt/1"


def fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not every filesystem lets a folder be opened
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def pid_alive(pid: int) -> bool:
    """Whether a process with this id runs (a staging folder's writer)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clear_dead_temporaries(final: Path, kind: str) -> None:
    """Remove `.<name>.<pid>.*<kind>` leftovers of killed writers (their pid is gone); live writers keep theirs."""
    for p in final.parent.glob(f".{final.name}.*{kind}*"):
        pid = p.name[len(final.name) + 2 :].split(".", 1)[0]
        if pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path` (same suffix); on success it replaces `path` atomically."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    clear_dead_temporaries(final, ".tmp")
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.{os.getpid()}.", suffix=f".tmp{final.suffix}", dir=final.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; a published artifact gets the usual mode
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, final)
        fsync_dir(final.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_with(path: str | os.PathLike, write: Callable[[Path], None]) -> None:
    with atomic_path(path) as tmp:
        write(tmp)


@contextlib.contextmanager
def staging(final: str | os.PathLike) -> Iterator[Path]:
    """Yield `<staging folder>/<final name>` beside `final` to build an artifact in; the folder is always removed.

    The folder is `.<name>.<pid>.*.staging`, so the next writer clears what a killed one left behind.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    clear_dead_temporaries(final, ".staging")
    stage = Path(tempfile.mkdtemp(prefix=f".{final.name}.{os.getpid()}.", suffix=".staging", dir=final.parent))
    try:
        yield stage / final.name
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def publish(staged: Path, final: Path, spec: ModelSpec | None = None) -> None:
    """Move a staged artifact, its companions (same stem: .bin) and its sidecar into place as one transaction.

    The sidecar is written into the staging folder first; companions and sidecar move first, the main file last, so
    the main file's rename commits: a crash before it leaves the old artifact at the final path (an OpenVINO .bin
    already replaced is caught at load by the weights checksum in the .xml, see exporters/openvino.py).
    Only files named after the artifact move: a caller's staging folder may hold more.
    """
    if spec is not None:
        write_sidecar(staged, spec)
    files = [p for p in staged.parent.iterdir() if p.is_file() and p.name.startswith(staged.stem + ".")]
    for f in sorted(files, key=lambda p: p == staged):  # companions first, the main file last
        with open(f, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(f, final.parent / f.name)
    fsync_dir(final.parent)


def missing_model_file(path: str | os.PathLike) -> ModelFileError:
    return ModelFileError(f"model file not found: {path}; check the path (edgecls export writes the model file and its "
                          ".json sidecar side by side)")


def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def sidecar_path(artifact: str | os.PathLike) -> Path:
    p = Path(artifact)
    return p.with_name(p.name + ".json")


def write_sidecar(artifact: str | os.PathLike, spec: ModelSpec) -> Path:
    side = sidecar_path(artifact)
    atomic_write_bytes(side, spec.to_json().encode())
    return side


def read_sidecar(artifact: str | os.PathLike) -> ModelSpec | None:
    side = sidecar_path(artifact)
    if not side.is_file():
        return None
    try:
        return ModelSpec.from_json(side.read_bytes())
    except SpecError as exc:
        raise SpecError(f"{side}: {exc}") from exc


# --- edgecls .pt: a state dict plus the spec, loadable with weights_only=True (no pickled code) -------------
TORCH_FLOOR = (2, 6)  # torch.load(weights_only=True) is the safe loader only from 2.6 (CVE-2025-32434 before it)


def require_torch():
    """torch, at a version whose weights_only loader is safe, or BackendUnavailableError saying what to install."""
    torch = require("torch", "torch")
    check_torch_version(torch.__version__)
    return torch


def check_torch_version(version: str) -> None:
    parts = version.split("+")[0].split(".")
    try:
        have = (int(parts[0]), int(parts[1]))
    except (IndexError, ValueError):
        return  # a development build without a plain version: trust it
    if have < TORCH_FLOOR:
        raise BackendUnavailableError(
            f"torch {version} is installed, but edgecls loads .pt files only with torch >= "
            f"{'.'.join(map(str, TORCH_FLOOR))}, whose weights_only loader cannot run code hidden in a file. "
            "Upgrade it: pip install 'torch>=2.6' (or pip install 'edgecls[torch]')"
        )


def save_pt(model, spec: ModelSpec, path: str | os.PathLike) -> Path:
    """Write model + spec as an edgecls .pt and its sidecar, staged and published together."""
    torch = require_torch()
    spec = spec.replace(artifact={"format": "pt", "precision": "fp32"}) if not spec.artifact else spec
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    payload = {"format": PT_FORMAT, "spec": spec.to_json(indent=None), "state_dict": state}
    final = Path(path)
    with staging(final) as staged:
        torch.save(payload, staged)
        publish(staged, final, spec)
    return final


def embed_pt_spec(path: str | os.PathLike, spec: ModelSpec) -> None:
    torch = require_torch()
    payload = read_pt(path)
    payload["spec"] = spec.to_json(indent=None)
    atomic_write_with(path, lambda tmp: torch.save(payload, tmp))


def read_pt(path: str | os.PathLike) -> dict:
    import pickle
    import zipfile

    torch = require_torch()
    p = Path(path)
    if not p.is_file():
        raise missing_model_file(p)
    try:
        payload = torch.load(p, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as exc:
        raise ModelFileError(
            f"{p} is not a readable edgecls .pt file ({type(exc).__name__}: {str(exc)[:200]}); it is truncated, "
            "corrupt, or holds pickled code, which edgecls never loads. Re-save it with edgecls.save()"
        ) from exc
    if not isinstance(payload, dict) or payload.get("format") != PT_FORMAT:
        raise ModelFileError(f"{p} is a PyTorch file but not an edgecls model (no '{PT_FORMAT}' header); save it with edgecls.save()")
    if not isinstance(payload.get("spec"), str) or not isinstance(payload.get("state_dict"), dict):
        raise ModelFileError(f"{p} has an edgecls header but no spec/state_dict; the file is damaged, re-save it")
    return payload


def load_pt(path: str | os.PathLike, spec: ModelSpec | None = None, payload: dict | None = None):
    """Rebuild the model from the registry and load its weights: returns (model, spec). payload: read_pt(path), if read."""
    payload = payload if payload is not None else read_pt(path)
    spec = spec or ModelSpec.from_json(payload["spec"])
    from .models import create_model

    from .models.structure import fit_to_state_dict

    model, _ = create_model(spec.arch, num_classes=spec.num_classes, in_chans=spec.input.channels)
    if any(s.step == "prune" for s in spec.lineage):  # channels were removed: resize the modules to the weights
        fit_to_state_dict(model, payload["state_dict"])
    try:
        model.load_state_dict(payload["state_dict"], strict=True)
    except RuntimeError as exc:
        raise ModelFileError(f"{path}: weights do not fit arch {spec.arch!r} with {spec.num_classes} classes: {str(exc)[:300]}") from exc
    return model.eval(), spec
