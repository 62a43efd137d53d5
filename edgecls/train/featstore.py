"""Cached activations on disk: one float16 memmap per (frozen prefix, images, views), filled in order, resumable.

50,000 CIFAR-10 images and their mirror images at 224 px after EfficientNet-Lite0's stage 4 are 4.4 GB of float16:
held in RAM beside a training process on a 24 GB machine shared with other work that is too much, on disk it is
not. The operating system's page cache keeps what fits, and the training set reads rows at random as from memory.

A store is a folder: `features.f16` (the raw array, shape in the metadata) and `store.json` (its key, shape and how
many images are done). Rows are written in image order and `done` is advanced only after they are flushed, so a run
killed at any moment resumes at the last committed row; a store whose key differs (other weights, split, input
size, preprocessing, images or views) is started afresh, never reused.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np

from ..runtime.artifacts import atomic_write_bytes

FORMAT = "edgecls.feature-store/1"
DATA, META = "features.f16", "store.json"


def dataset_key(ds) -> str:
    """Identity of a dataset's images and labels: paths with size and modification time for files decoded lazily,
    the bytes themselves for arrays held in memory."""
    h = hashlib.sha256()
    if isinstance(ds.images, np.ndarray):
        h.update(np.ascontiguousarray(ds.images).data)
    else:
        for p in ds.images:
            st = os.stat(p)
            h.update(f"{p}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    h.update(np.ascontiguousarray(ds.labels).data)
    return h.hexdigest()


class FeatureStore:
    """float16 (N, views, *shape) on disk. `open()` creates or resumes; `write()` rows in order; `commit()` makes
    them count; `array` reads everything written so far."""

    def __init__(self, folder: Path, key: str, n: int, views: int, shape: tuple[int, ...], done: int):
        self.folder, self.key, self.n, self.views, self.shape, self.done = folder, key, n, views, tuple(shape), done
        self._mm = np.memmap(folder / DATA, np.float16, "r+", shape=(n, views, *self.shape))

    @classmethod
    def open(cls, folder: str | os.PathLike, key: str, n: int, views: int, shape: tuple[int, ...]) -> FeatureStore:
        folder = Path(folder)
        meta = _read_meta(folder)
        if meta and meta["key"] == key and meta["shape"] == [n, views, *shape] and (folder / DATA).is_file() \
                and (folder / DATA).stat().st_size == n * views * int(np.prod(shape)) * 2:
            return cls(folder, key, n, views, shape, int(meta["done"]))
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        with open(folder / DATA, "wb") as fh:  # sparse: blocks are allocated as rows are written
            fh.truncate(n * views * int(np.prod(shape)) * 2)
        store = cls(folder, key, n, views, shape, 0)
        store.commit(0)
        return store

    @staticmethod
    def peek(folder: str | os.PathLike, key: str) -> int:
        """Images already committed in the store at `folder` for `key` (0 when there is none or it is another's)."""
        meta = _read_meta(Path(folder))
        return int(meta["done"]) if meta and meta["key"] == key else 0

    def write(self, start: int, rows: np.ndarray) -> None:
        self._mm[start : start + len(rows)] = rows

    def commit(self, done: int) -> None:
        self._mm.flush()
        self.done = done
        atomic_write_bytes(self.folder / META, json.dumps({"format": FORMAT, "key": self.key, "done": done,
                                                           "shape": [self.n, self.views, *self.shape]}).encode())

    @property
    def complete(self) -> bool:
        return self.done >= self.n

    @property
    def array(self) -> np.ndarray:
        """The rows written so far, read-only, backed by the file."""
        return np.memmap(self.folder / DATA, np.float16, "r", shape=(self.n, self.views, *self.shape))[: self.done]

    @property
    def nbytes(self) -> int:
        return self.n * self.views * int(np.prod(self.shape)) * 2


def _read_meta(folder: Path) -> dict | None:
    try:
        m = json.loads((folder / META).read_text())
    except (OSError, ValueError):
        return None
    return m if isinstance(m, dict) and m.get("format") == FORMAT else None


__all__ = ["FeatureStore", "dataset_key"]
