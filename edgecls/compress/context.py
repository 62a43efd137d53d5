"""What every compression step shares: the data splits, the output folder, and one way to measure accuracy."""

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

    def _top1(self, logits: np.ndarray, ds) -> float:
        return float((logits.argmax(1) == ds.labels).mean())

    def evaluate_torch(self, model, spec, label: str) -> dict:
        from ..train.loop import predict_logits
        from .prune import measure

        size = measure(model, spec)
        row = {"artifact": label, "val_top1": self._top1(predict_logits(model, self.val, spec), self.val),
               "macs": size.macs, "params": size.params}
        if self.test is not None:
            row["test_top1"] = self._top1(predict_logits(model, self.test, spec), self.test)
        return row

    def correct(self, path: Path) -> np.ndarray:
        """Per-image correctness of an artifact on the validation images (in their fixed order): paired tests."""
        from .data import predict_logits

        return predict_logits(path, self.val, threads=self.cfg.threads).argmax(1) == self.val.labels

    def evaluate_artifact(self, path: Path, *, test: bool = True, correct: np.ndarray | None = None) -> dict:
        from .. import stats
        from ..bench.runner import artifact_files

        acc = stats.accuracy(self.correct(path) if correct is None else correct)
        row = {"artifact": str(path), "val_top1": acc.value, "val_interval": [acc.lo, acc.hi], "n": acc.n,
               "file_mb": round(sum(p.stat().st_size for p in artifact_files(Path(path))) / 1e6, 3)}
        if test and self.test is not None:
            from .data import predict_logits

            row["test_top1"] = self._top1(predict_logits(path, self.test, threads=self.cfg.threads), self.test)
        return row

