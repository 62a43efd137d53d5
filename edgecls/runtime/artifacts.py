"""Files on disk: atomic writes and the `<artifact>.json` sidecar (edgecls's own `.pt` format is edgecls.models.pt).

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

from ..errors import ModelFileError, SpecError
from .spec import ModelSpec


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
