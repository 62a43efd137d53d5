"""Datasets as uint8 HxWxC arrays + integer labels: Fashion-MNIST from IDX files, and ImageFolder trees.

Images stay uint8 until the transform: a 60k-image dataset is 47 MB in memory, decoded once.
"""

from __future__ import annotations

import gzip
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DataError

FASHION_MNIST_LABELS = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
FASHION_MNIST_DIRS = ("/usr/share/datasets/fashion-mnist",)  # Debian package dataset-fashion-mnist


@dataclass
class ArrayDataset:
    """images: uint8 (N, H, W, C) — or a list of paths decoded lazily; labels: int64 (N,)."""

    images: np.ndarray | list
    labels: np.ndarray
    classes: tuple[str, ...]
    skipped: list = field(default_factory=list)  # scan.Skipped: files of the folder that were left out, and why

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, idx) -> ArrayDataset:
        idx = np.asarray(idx)
        imgs = self.images[idx] if isinstance(self.images, np.ndarray) else [self.images[i] for i in idx]
        return ArrayDataset(imgs, self.labels[idx], self.classes)

    def image(self, i: int) -> np.ndarray:
        x = self.images[i]
        if isinstance(x, np.ndarray):
            return x
        from ..runtime.decode import read_rgb

        return read_rgb(x)  # EXIF orientation applied, any mode to RGB: as the Predictor reads files

    def pixels(self, i: int) -> np.ndarray:
        """image(i) as the Predictor and preprocessing take it: grey HxW (not HxWx1) or RGB HxWx3."""
        img = self.image(int(i))
        return img[..., 0] if img.ndim == 3 and img.shape[2] == 1 else img


def _read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as exc:
        raise DataError(f"{path} cannot be read ({exc}); the file is truncated or not gzip/IDX") from exc
    if len(data) < 8:
        raise DataError(f"{path} is too short to be an IDX file")
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype_code != 0x08 or ndim not in (1, 3):
        raise DataError(f"{path} is not a uint8 IDX file (header {data[:4].hex()})")
    dims = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
    body = np.frombuffer(data, np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise DataError(f"{path}: header says {dims} but holds {body.size} bytes; the file is truncated")
    return body.reshape(dims)


def find_fashion_mnist(root: str | os.PathLike | None = None) -> Path:
    candidates = [Path(root)] if root else [Path(d) for d in FASHION_MNIST_DIRS]
    for d in candidates:
        if (d / "train-images-idx3-ubyte.gz").is_file() or (d / "train-images-idx3-ubyte").is_file():
            return d
    raise DataError(
        f"Fashion-MNIST IDX files not found in {', '.join(map(str, candidates))}. "
        "Install them with `apt-get install dataset-fashion-mnist` (Debian/Ubuntu) or pass the folder holding "
        "train-images-idx3-ubyte.gz and friends"
    )


def load_fashion_mnist(split: str = "train", root: str | os.PathLike | None = None) -> ArrayDataset:
    if split not in ("train", "test"):
        raise ConfigError(f"split={split!r}: use 'train' or 'test'")
    d = find_fashion_mnist(root)
    prefix = "train" if split == "train" else "t10k"

    def pick(name: str) -> Path:
        gz = d / f"{prefix}-{name}-ubyte.gz"
        return gz if gz.is_file() else d / f"{prefix}-{name}-ubyte"

    images = _read_idx(pick("images-idx3"))
    labels = _read_idx(pick("labels-idx1")).astype(np.int64)
    if len(images) != len(labels):
        raise DataError(f"Fashion-MNIST {split}: {len(images)} images but {len(labels)} labels")
    return ArrayDataset(images[..., None], labels, FASHION_MNIST_LABELS)


def stratified_split(ds: ArrayDataset, val_fraction: float, seed: int) -> tuple[ArrayDataset, ArrayDataset]:
    if not 0.0 < val_fraction < 1.0:
        raise ConfigError(f"val_fraction={val_fraction} must be in (0, 1)")
    rng = np.random.default_rng(seed)
    train_idx, val_idx = [], []
    for c in np.unique(ds.labels):
        idx = rng.permutation(np.flatnonzero(ds.labels == c))
        n_val = max(1, int(round(len(idx) * val_fraction))) if len(idx) > 1 else 0
        val_idx += idx[:n_val].tolist()
        train_idx += idx[n_val:].tolist()
    return ds.subset(sorted(train_idx)), ds.subset(sorted(val_idx))


def class_weights(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Inverse-frequency weights, mean 1, for a weighted loss or sampler on imbalanced data."""
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    w = np.where(counts > 0, counts.sum() / np.maximum(counts, 1) / num_classes, 0.0)
    return w / w[counts > 0].mean()
