"""Labelled images for compression: calibration inputs and top-1 of any artifact, through the Predictor's own path.

Every accuracy the compression steps compare (float vs INT8, before vs after pruning) is measured the same way:
the artifact's Predictor, `preprocess.fast`, batches of the artifact's own input tensor.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..runtime import preprocess as _pre
from ..runtime.spec import ModelSpec

MIN_CALIBRATION = 300  # below this, INT8 ranges come from too few activations (NNCF's default subset is 300)


@dataclass(frozen=True)
class Splits:
    """train (fine-tuning, calibration), val (every budget decision), test (reported only, never used to decide)."""

    train: object
    val: object
    test: object | None


def load_splits(data: str = "fashion-mnist", *, val_fraction: float = 0.1, seed: int = 0, data_root: str | None = None,
                val_dir: str | None = None, spec: ModelSpec | None = None) -> Splits:
    """The same split the trainer makes (TrainConfig's stratified val split with the same seed). A multi-label model
    (spec.task) reads the folder's labels manifest, with the model's labels as the class list."""
    from ..data.datasets import load_fashion_mnist, stratified_split
    from ..data.scan import load_image_folder

    if spec is not None and spec.multilabel:
        from ..data.manifest import load_multilabel, random_split

        full = load_multilabel(data, classes=spec.labels, allow_empty=True)
        if val_dir:
            return Splits(full, load_multilabel(val_dir, classes=spec.labels, allow_empty=True), None)
        train, val = random_split(full, val_fraction, seed)
        return Splits(train, val, None)

    if data.lower() in ("fashion-mnist", "fashion_mnist", "fashionmnist"):
        train, val = stratified_split(load_fashion_mnist("train", data_root), val_fraction, seed)
        return Splits(train, val, load_fashion_mnist("test", data_root))
    full = load_image_folder(data)
    if val_dir:
        return Splits(full, load_image_folder(val_dir), None)
    train, val = stratified_split(full, val_fraction, seed)
    return Splits(train, val, None)


def subset(ds, n: int | None, seed: int = 0):
    """A fixed, class-mixed subset of n images (all when n is None or larger than the set)."""
    if n is None or n >= len(ds):
        return ds
    return ds.subset(np.sort(np.random.default_rng(seed).permutation(len(ds))[:n]))


def inputs(ds, spec: ModelSpec) -> np.ndarray:
    """All images of `ds` as one batch of the artifact's input tensor (its layout, dtype, normalization)."""
    return np.concatenate([_pre.fast(ds.pixels(i), "RGB", spec) for i in range(len(ds))])


def dataset_calibration(ds, spec: ModelSpec, n: int = MIN_CALIBRATION, seed: int = 0) -> np.ndarray:
    if len(ds) < n or n < MIN_CALIBRATION:
        warnings.warn(f"calibrating INT8 on {min(n, len(ds))} images; fewer than {MIN_CALIBRATION} gives unstable "
                      "activation ranges (use more of your own images)", stacklevel=2)
    return inputs(subset(ds, n, seed), spec)


def predict_logits(path: str | Path, ds, *, batch: int = 64, threads: int | None = None) -> np.ndarray:
    from ..runtime.predictor import Predictor

    with Predictor(path, threads=threads) as pred:
        step = pred.max_batch or batch
        out = []
        for s in range(0, len(ds), step):
            x = np.concatenate([_pre.fast(ds.pixels(i), "RGB", pred.spec) for i in range(s, min(len(ds), s + step))])
            out.append(pred.infer(x))
    return np.concatenate(out)


def top1(path: str | Path, ds, **kw) -> float:
    return float((predict_logits(path, ds, **kw).argmax(1) == ds.labels).mean())
