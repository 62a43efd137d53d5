"""The data stage: find the training and validation folders, check every file (train/scan.py), split, and remove
from validation the images that are byte-for-byte training images (they would score the model on what it learnt).

Its record (`data/data.json`) lists every file used with its class and SHA-256, every file skipped and why, the
duplicate groups and what was done about them: later stages read the images from this list, and are keyed by its
content (hashes and labels), not by paths or timestamps.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import EdgeclsError
from ..train.data import ArrayDataset, DataError
from ..train.scan import FolderScan, ImageFile, duplicates, scan_folder

VAL_NAMES = ("val", "valid", "validation")


class DeployError(EdgeclsError, ValueError):
    """A deploy setting or input that cannot work (the message says what to change)."""


def find_splits(data: str | os.PathLike, val_dir: str | os.PathLike | None) -> tuple[Path, Path | None, str]:
    """(training root, validation root or None, how they were found). A folder holding train/ and val/ (each with class
    folders) is taken as both, as hymenoptera and many downloaded sets are laid out."""
    root = Path(data)
    if not root.is_dir():
        raise DataError(f"data folder not found: {root}")
    from ..train.manifest import MANIFEST_NAMES

    manifest = next((root / n for n in MANIFEST_NAMES if (root / n).is_file()), None)
    if manifest is not None:
        raise DataError(f"{root} holds a multi-label manifest ({manifest.name}); edgecls deploy takes single-label class "
                        "folders only for now. For multi-label: edgecls train --task multilabel, then edgecls compress "
                        "(INT8 judged in mAP) and edgecls export")
    if val_dir is not None:
        if not Path(val_dir).is_dir():
            raise DataError(f"--val-dir folder not found: {val_dir}")
        return root, Path(val_dir), "given"
    subs = {p.name.lower(): p for p in root.iterdir() if p.is_dir()}
    val = next((subs[n] for n in VAL_NAMES if n in subs), None)
    if "train" in subs and val is not None:
        has_classes = all(any(q.is_dir() for q in d.iterdir()) for d in (subs["train"], val))
        if has_classes:
            return subs["train"], val, f"{root.name}/ holds train/ and {val.name}/: used as the two splits"
    return root, None, "one folder: a stratified validation split is held out"


def listing(*roots: Path | None) -> list:
    """A cheap fingerprint of folders (relative path, size, mtime) to tell whether the scan must run again."""
    out = []
    for r in roots:
        if r is None:
            continue
        rows = []
        for dirpath, _, names in os.walk(r):
            for n in names:
                p = Path(dirpath) / n
                try:
                    st = p.stat()
                except OSError:
                    continue
                rows.append((str(p.relative_to(r)), st.st_size, st.st_mtime_ns))
        out.append([str(r.resolve()), sorted(rows)])
    return out


def _split(scan: FolderScan, fraction: float, seed: int) -> tuple[list[ImageFile], list[ImageFile]]:
    rng = np.random.default_rng(seed)
    labels = np.array([f.label for f in scan.files])
    tr, va = [], []
    for c in range(len(scan.classes)):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n_val = max(1, int(round(len(idx) * fraction))) if len(idx) > 1 else 0
        va += idx[:n_val].tolist()
        tr += idx[n_val:].tolist()
    return [scan.files[i] for i in sorted(tr)], [scan.files[i] for i in sorted(va)]


def scan_data(data, val_dir, *, strict: bool, dedup: bool, val_fraction: float, seed: int,
              progress: Callable[[str, int, int], None] | None = None) -> dict:
    """The data record: classes, train/val file lists, skipped files, duplicates, and a summary for the report."""
    train_root, val_root, how = find_splits(data, val_dir)
    cb = (lambda what: (lambda i, n: progress(what, i, n))) if progress else (lambda what: None)
    train_scan = scan_folder(train_root, strict=strict, progress=cb("checking training images"))
    if val_root is not None:
        val_scan = scan_folder(val_root, classes=train_scan.classes, strict=strict, progress=cb("checking validation images"))
        train_files, val_files = train_scan.files, val_scan.files
        scans = (train_scan, val_scan)
    else:
        train_files, val_files = _split(train_scan, val_fraction, seed)
        scans = (train_scan,)
    classes = train_scan.classes
    if len(classes) < 2:
        raise DataError(f"{train_root} has a single class {list(classes)}; a classifier needs at least two")
    in_val = {f.path for f in val_files}
    groups = duplicates(*scans)
    removed, conflicts, dup_rows = [], [], []
    train_hashes = {f.sha256 for f in train_files}
    for g in groups:
        paths = [p for _, p, _ in g]
        cls = sorted({c for _, _, c in g})
        across = any(p in in_val for p in paths) and any(p not in in_val for p in paths)
        row = {"files": paths, "classes": cls, "across_train_val": across}
        if len(cls) > 1:
            conflicts.append(row)
        dup_rows.append(row)
    if dedup:
        keep = [f for f in val_files if f.sha256 not in train_hashes]
        removed = [f.path for f in val_files if f.sha256 in train_hashes]
        val_files = keep
    if not val_files:
        raise DataError("no validation images are left (every one is a copy of a training image, or the validation folder "
                        "is empty); add validation images or point --val-dir at another folder")
    k = len(classes)
    tc = np.bincount([f.label for f in train_files], minlength=k)
    vc = np.bincount([f.label for f in val_files], minlength=k)
    if (tc == 0).any():
        raise DataError(f"class(es) {[classes[i] for i in np.flatnonzero(tc == 0)]} have no training images left")
    sides = np.array([min(f.width, f.height) for f in train_files + val_files])
    areas = np.array([f.width * f.height for f in train_files + val_files])
    skipped = [{"path": s.path, "reason": s.reason} for sc in scans for s in sc.skipped]
    summary = {
        "train_root": str(train_root), "val_root": str(val_root) if val_root else None, "layout": how,
        "classes": list(classes), "train_counts": tc.tolist(), "val_counts": vc.tolist(),
        "n_train": int(tc.sum()), "n_val": int(vc.sum()),
        "imbalance": float(tc.max() / max(tc.min(), 1)),
        "shorter_side": {"min": int(sides.min()), "median": float(np.median(sides)), "max": int(sides.max())},
        "megapixels": {"min": float(areas.min() / 1e6), "median": float(np.median(areas) / 1e6), "max": float(areas.max() / 1e6)},
        "skipped": skipped, "converted": [{"path": f.path, "how": f.converted} for f in train_files + val_files if f.converted],
        "suspect": [{"path": f.path, "why": f.suspect} for f in train_files + val_files if f.suspect],
        "duplicates": dup_rows, "label_conflicts": conflicts, "dedup": dedup, "removed_from_val": removed,
        "val_split": "folder" if val_root else f"stratified {val_fraction:.0%} of each class, seed {seed}",
    }
    return {"classes": list(classes), "summary": summary,
            "train": [_row(f) for f in train_files], "val": [_row(f) for f in val_files]}


def _row(f: ImageFile) -> dict:
    return {"path": f.path, "label": f.label, "sha256": f.sha256, "width": f.width, "height": f.height}


def content_digest(record: dict) -> dict:
    """What later stages depend on: classes and (hash, label) of every train/val image, not their paths or times."""
    return {"classes": record["classes"], "train": [(r["sha256"], r["label"]) for r in record["train"]],
            "val": [(r["sha256"], r["label"]) for r in record["val"]]}


def datasets(record: dict) -> tuple[ArrayDataset, ArrayDataset]:
    classes = tuple(record["classes"])

    def ds(rows):
        return ArrayDataset([r["path"] for r in rows], np.asarray([r["label"] for r in rows], np.int64), classes)

    return ds(record["train"]), ds(record["val"])


def read_record(folder: Path) -> dict:
    return json.loads((folder / "data.json").read_text())


__all__ = ["DeployError", "content_digest", "datasets", "find_splits", "listing", "read_record", "scan_data"]
