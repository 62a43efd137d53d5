"""What every compression step shares: the data splits, the output folder, and one way to measure accuracy.

Multi-label data (multi-hot labels) is measured in mAP: rows carry `val_map` instead of `val_top1`, and `correct()`
returns each image's per-label sigmoid scores, which budget.multilabel_decision compares."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class Context:
    cfg: Any  # CompressConfig
    console: Any
    out: Path
    splits: Any  # data.Splits
    val: Any  # the validation images budgets are judged on
    test: Any | None  # reported only

    @property
    def multilabel(self) -> bool:
        return np.ndim(self.val.labels) == 2

    @property
    def metric(self) -> str:
        return "val_map" if self.multilabel else "val_top1"

    def _top1(self, logits: np.ndarray, ds) -> float:
        """top-1; multi-label data: mAP of the sigmoid scores."""
        if np.ndim(ds.labels) == 2:
            from ..evaluation.multilabel import mean_ap
            from ..runtime.scores import sigmoid

            return mean_ap(ds.labels.astype(bool), sigmoid(logits))
        return float((logits.argmax(1) == ds.labels).mean())

    def evaluate_torch(self, model, spec, label: str) -> dict:
        from ..train.loop import predict_logits
        from .prune import measure

        size = measure(model, spec)
        row = {"artifact": label, self.metric: self._top1(predict_logits(model, self.val, spec), self.val),
               "macs": size.macs, "params": size.params}
        if self.test is not None:
            row["test_top1"] = self._top1(predict_logits(model, self.test, spec), self.test)
        return row

    def correct(self, path: Path) -> np.ndarray:
        """Per-image correctness of an artifact on the validation images (in their fixed order): paired tests.
        Multi-label: per-image sigmoid scores (N, labels) instead, for the paired mAP bootstrap."""
        from .data import predict_logits

        logits = predict_logits(path, self.val, threads=self.cfg.threads)
        if self.multilabel:
            from ..runtime.scores import sigmoid

            return sigmoid(logits)
        return logits.argmax(1) == self.val.labels

    def evaluate_artifact(self, path: Path, *, test: bool = True, correct: np.ndarray | None = None) -> dict:
        from .. import stats
        from ..runtime.runtimes import artifact_files

        measured = self.correct(path) if correct is None else correct
        files = {"file_mb": round(sum(p.stat().st_size for p in artifact_files(Path(path))) / 1e6, 3)}
        if self.multilabel:
            from ..evaluation.multilabel import mean_ap

            y = self.val.labels.astype(bool)
            value, lo, hi = stats.bootstrap(lambda i: mean_ap(y[i], measured[i]), np.arange(len(y)), n_boot=500)
            return {"artifact": str(path), "val_map": value, "val_interval": [lo, hi], "n": len(y), **files}
        acc = stats.accuracy(measured)
        row = {"artifact": str(path), "val_top1": acc.value, "val_interval": [acc.lo, acc.hi], "n": acc.n, **files}
        if test and self.test is not None:
            from .data import predict_logits

            row["test_top1"] = self._top1(predict_logits(path, self.test, threads=self.cfg.threads), self.test)
        return row

