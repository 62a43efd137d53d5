"""Stages that resume by content hash, and publish their outputs whole.

A stage is a small function with declared inputs (a JSON-able dict: settings, and the digests of what earlier stages
produced) and one output folder. Its key is the SHA-256 of (stage name, STAGE_FORMAT, edgecls version, inputs). A finished stage
leaves `<folder>/.stage.json`: the key, the SHA-256 of every file it wrote, and its JSON result. Rerunning:

- same key and every file still hashes the same: the stage is reused, not run;
- otherwise it runs again, into a fresh staging folder beside the final one (`.<name>.<pid>.staging`), and only
  when the function returned is that folder renamed into place (the old one renamed away first and deleted after).
  A kill -9 at any moment leaves either the previous complete folder (whose key no longer matches: redone) or
  nothing at the final path: never half an artifact. Staging folders of dead processes are removed on the next run.

Long stages get a work folder keyed by their inputs (`.deploy/work/<name>-<key>`) that survives a kill: training
keeps its per-epoch checkpoint there, so a rerun after kill -9 continues from the last finished epoch. The digest
of a stage (what later stages name as their input) covers its files and result, not its run time: a stage redone
with identical outputs does not invalidate the stages after it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..runtime.artifacts import atomic_write_bytes, file_sha256, fsync_dir, pid_alive

STAGE_FORMAT = "edgecls.deploy-stage/1"
MANIFEST = ".stage.json"


def digest(obj: Any) -> str:
    """SHA-256 of a JSON-able object in canonical form (sorted keys, no whitespace)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str).encode()).hexdigest()


def stage_key(name: str, inputs: dict) -> str:
    """The key of a stage: its name, this format, the edgecls version (a new release redoes the work) and its inputs."""
    from ..version import package_version

    return digest({"stage": name, "format": STAGE_FORMAT, "edgecls": package_version(), "inputs": inputs})


@dataclass(frozen=True)
class StageResult:
    name: str
    key: str
    folder: Path
    result: dict  # what the stage function returned (JSON)
    files: dict  # relative path -> sha256
    reused: bool
    seconds: float  # time of the run that produced it (not of this reuse)
    cpu_seconds: float

    @property
    def digest(self) -> str:
        return digest({"files": self.files, "result": self.result})

    def path(self, rel: str) -> Path:
        return self.folder / rel


def _hash_folder(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): file_sha256(p) for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != MANIFEST}


def _clear_dead_staging(folder: Path) -> None:
    for p in folder.parent.glob(f".{folder.name}.*.staging"):
        pid = p.name[len(folder.name) + 2 :].split(".", 1)[0]
        if pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(p, ignore_errors=True)
    for p in folder.parent.glob(f".{folder.name}.*.old"):
        shutil.rmtree(p, ignore_errors=True)


def read_manifest(folder: Path) -> dict | None:
    try:
        m = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return m if isinstance(m, dict) and m.get("format") == STAGE_FORMAT else None


class Stages:
    """Runs stages under `root` (the deploy output folder); `state` (root/.deploy) holds work folders."""

    def __init__(self, root: Path, log: Callable[[str], None] = print, verify_files: bool = True):
        self.root = Path(root)
        self.state = self.root / ".deploy"
        self.log = log
        self.verify_files = verify_files
        self.done: dict[str, StageResult] = {}

    def fresh(self, name: str, folder: Path, inputs: dict) -> StageResult | None:
        """The finished stage at `folder` if it was made from these inputs and its files are intact."""
        key = stage_key(name, inputs)
        m = read_manifest(folder)
        if m is None or m.get("key") != key:
            return None
        if self.verify_files and _hash_folder(folder) != m.get("files"):
            self.log(f"{name}: files in {folder} changed since it was made; redoing it")
            return None
        return StageResult(name, key, folder, m["result"], m["files"], True, m.get("seconds", 0.0), m.get("cpu_seconds", 0.0))

    def run(self, name: str, folder: Path, inputs: dict, fn: Callable[[Path, Path], dict]) -> StageResult:
        """fn(staging_folder, work_folder) -> JSON result; its files go in staging_folder."""
        folder = Path(folder)
        have = self.fresh(name, folder, inputs)
        if have is not None:
            self.done[name] = have
            return have
        key = stage_key(name, inputs)
        folder.parent.mkdir(parents=True, exist_ok=True)
        _clear_dead_staging(folder)
        staging = folder.parent / f".{folder.name}.{os.getpid()}.staging"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        work = self.state / "work" / f"{name}-{key[:16]}"
        work.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(work / "inputs.json", json.dumps(inputs, indent=1, sort_keys=True, default=str).encode())
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            result = fn(staging, work)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        files = _hash_folder(staging)
        manifest = {"format": STAGE_FORMAT, "stage": name, "key": key, "inputs": inputs, "files": files,
                    "result": result, "seconds": round(seconds, 2), "cpu_seconds": round(cpu, 2),
                    "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        atomic_write_bytes(staging / MANIFEST, json.dumps(manifest, indent=1, default=str).encode())
        _publish_folder(staging, folder)
        shutil.rmtree(work, ignore_errors=True)
        out = StageResult(name, key, folder, json.loads(json.dumps(result, default=str)), files, False, seconds, cpu)
        self.done[name] = out
        return out


def _publish_folder(staging: Path, folder: Path) -> None:
    """Put a finished staging folder at `folder`: the old one is renamed away first (so the final path never holds a
    mix), then the new one renamed in (atomic on one filesystem), then the old one deleted."""
    for p in staging.rglob("*"):
        if p.is_file():
            with open(p, "rb+") as fh:
                os.fsync(fh.fileno())
    old = None
    if folder.exists():
        old = folder.parent / f".{folder.name}.{os.getpid()}.old"
        os.replace(folder, old)
    os.replace(staging, folder)
    fsync_dir(folder.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


__all__ = ["MANIFEST", "STAGE_FORMAT", "StageResult", "Stages", "digest", "file_sha256", "read_manifest", "stage_key"]
