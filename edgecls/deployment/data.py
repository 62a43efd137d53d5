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

from ..data.datasets import ArrayDataset
from ..data.scan import FolderScan, ImageFile, duplicates, scan_folder
from ..errors import DataError, DeployError

VAL_NAMES = ("val", "valid", "validation")


def find_splits(data: str | os.PathLike, val_dir: str | os.PathLike | None) -> tuple[Path, Path | None, str]:
    """(training root, validation root or None, how they were found). A folder holding train/ and val/ (each with class
    folders) is taken as both, as hymenoptera and many downloaded sets are laid out. A folder holding a labels.csv /
    labels.json manifest is multi-label data (how = "multilabel"; validation: val_dir's own manifest, else a split)."""
    root = Path(data)
    if not root.is_dir():
        raise DataError(f"data folder not found: {root}")
    from ..data.manifest import MANIFEST_NAMES

    if any((root / n).is_file() for n in MANIFEST_NAMES):
        if val_dir is not None and not Path(val_dir).is_dir():
            raise DataError(f"--val-dir folder not found: {val_dir}")
        return root, Path(val_dir) if val_dir is not None else None, "multilabel"
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
    if how == "multilabel":
        return scan_multilabel(train_root, val_root, strict=strict, dedup=dedup, val_fraction=val_fraction, seed=seed)
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
    skipped = [{"path": s.path, "reason": s.reason} for sc in scans for s in sc.skipped]
    summary = {
        "train_root": str(train_root), "val_root": str(val_root) if val_root else None, "layout": how,
        "classes": list(classes), "train_counts": tc.tolist(), "val_counts": vc.tolist(),
        "n_train": int(tc.sum()), "n_val": int(vc.sum()),
        "imbalance": float(tc.max() / max(tc.min(), 1)),
        **_file_facts(train_files + val_files), "skipped": skipped,
        "duplicates": dup_rows, "label_conflicts": conflicts, "dedup": dedup, "removed_from_val": removed,
        "val_split": "folder" if val_root else f"stratified {val_fraction:.0%} of each class, seed {seed}",
    }
    return {"classes": list(classes), "summary": summary,
            "train": [_row(f) for f in train_files], "val": [_row(f) for f in val_files]}


def _file_facts(files: list[ImageFile]) -> dict:
    sides = np.array([min(f.width, f.height) for f in files])
    areas = np.array([f.width * f.height for f in files])
    return {"shorter_side": {"min": int(sides.min()), "median": float(np.median(sides)), "max": int(sides.max())},
            "megapixels": {"min": float(areas.min() / 1e6), "median": float(np.median(areas) / 1e6), "max": float(areas.max() / 1e6)},
            "converted": [{"path": f.path, "how": f.converted} for f in files if f.converted],
            "suspect": [{"path": f.path, "why": f.suspect} for f in files if f.suspect]}


def scan_multilabel(train_root: Path, val_root: Path | None, *, strict: bool, dedup: bool, val_fraction: float,
                    seed: int) -> dict:
    """The data record of multi-label data (a folder with a labels.csv/labels.json manifest): rows carry `labels` (the
    label indices of each image) instead of `label`; counts are images holding each label; the split is a seeded
    random one (label sets do not stratify like classes), or val_root's own manifest."""
    from ..data.manifest import load_multilabel

    full = load_multilabel(train_root, strict=strict, hashes=True)
    classes = full.classes
    rows = [_ml_row(f, y) for f, y in zip(full.files, full.labels)]
    skipped = [{"path": s.path, "reason": s.reason} for s in full.skipped]
    if val_root is not None:
        val = load_multilabel(val_root, classes=classes, strict=strict, hashes=True, allow_empty=True)
        val_rows = [_ml_row(f, y) for f, y in zip(val.files, val.labels)]
        skipped += [{"path": s.path, "reason": s.reason} for s in val.skipped]
        train_rows, split = rows, "folder (its own manifest)"
    else:
        idx = np.random.default_rng(seed).permutation(len(rows))
        n_val = max(1, int(round(len(rows) * val_fraction)))
        val_rows, train_rows = [rows[i] for i in np.sort(idx[:n_val])], [rows[i] for i in np.sort(idx[n_val:])]
        split = f"random {val_fraction:.0%} of the images, seed {seed} (multi-label sets are not stratified)"
    by_hash: dict[str, list[tuple[str, tuple]]] = {}
    in_val = {r["path"] for r in val_rows}
    for r in train_rows + val_rows:
        by_hash.setdefault(r["sha256"], []).append((r["path"], tuple(r["labels"])))
    dup_rows, conflicts = [], []
    for g in (g for g in by_hash.values() if len(g) > 1):
        sets = sorted({"+".join(classes[i] for i in ls) or "(none)" for _, ls in g})
        row = {"files": [p for p, _ in g], "classes": sets,
               "across_train_val": any(p in in_val for p, _ in g) and any(p not in in_val for p, _ in g)}
        dup_rows.append(row)
        if len(sets) > 1:
            conflicts.append(row)
    removed = []
    if dedup:
        train_hashes = {r["sha256"] for r in train_rows}
        removed = [r["path"] for r in val_rows if r["sha256"] in train_hashes]
        val_rows = [r for r in val_rows if r["sha256"] not in train_hashes]
    if not val_rows or not train_rows:
        raise DataError(f"{train_root}: {len(train_rows)} training and {len(val_rows)} validation images are left; a "
                        "multi-label deploy needs both (add images, or give --val-dir with its own manifest)")
    k = len(classes)
    tc = np.bincount([i for r in train_rows for i in r["labels"]], minlength=k)
    vc = np.bincount([i for r in val_rows for i in r["labels"]], minlength=k)
    if (tc == 0).any():
        raise DataError(f"label(s) {[classes[i] for i in np.flatnonzero(tc == 0)]} are on no training image")
    summary = {
        "task": "multilabel", "train_root": str(train_root), "val_root": str(val_root) if val_root else None,
        "layout": f"multi-label: {train_root.name}/ holds a labels manifest", "classes": list(classes),
        "train_counts": tc.tolist(), "val_counts": vc.tolist(), "n_train": len(train_rows), "n_val": len(val_rows),
        "labels_per_image": float(np.mean([len(r["labels"]) for r in train_rows + val_rows])),
        "imbalance": float(tc.max() / max(tc.min(), 1)),
        **_file_facts([f for f in full.files] + (list(val.files) if val_root is not None else [])),
        "skipped": skipped, "duplicates": dup_rows, "label_conflicts": conflicts, "dedup": dedup,
        "removed_from_val": removed, "val_split": split,
    }
    return {"task": "multilabel", "classes": list(classes), "summary": summary, "train": train_rows, "val": val_rows}


def _row(f: ImageFile) -> dict:
    return {"path": f.path, "label": f.label, "sha256": f.sha256, "width": f.width, "height": f.height}


def _ml_row(f: ImageFile, y: np.ndarray) -> dict:
    return {"path": f.path, "labels": np.flatnonzero(y).tolist(), "sha256": f.sha256, "width": f.width, "height": f.height}


def is_multilabel(record: dict) -> bool:
    return record.get("task") == "multilabel"


def truth(record: dict, split: str = "val") -> np.ndarray:
    """The validation truth: class indices (N,), or a multi-hot (N, labels) boolean matrix for multi-label data."""
    rows = record[split]
    if is_multilabel(record):
        y = np.zeros((len(rows), len(record["classes"])), bool)
        for i, r in enumerate(rows):
            y[i, r["labels"]] = True
        return y
    return np.asarray([r["label"] for r in rows], np.int64)


def content_digest(record: dict) -> dict:
    """What later stages depend on: classes and (hash, label) of every train/val image, not their paths or times."""
    key = "labels" if is_multilabel(record) else "label"
    return {"classes": record["classes"], "train": [(r["sha256"], r[key]) for r in record["train"]],
            "val": [(r["sha256"], r[key]) for r in record["val"]]}


def datasets(record: dict) -> tuple[ArrayDataset, ArrayDataset]:
    classes = tuple(record["classes"])

    def ds(split):
        y = truth(record, split)
        return ArrayDataset([r["path"] for r in record[split]], y.astype(np.uint8) if y.ndim == 2 else y, classes)

    return ds("train"), ds("val")


def read_record(folder: Path) -> dict:
    return json.loads((folder / "data.json").read_text())


__all__ = ["DeployError", "content_digest", "datasets", "find_splits", "is_multilabel", "listing", "read_record", "scan_data",
           "scan_multilabel", "truth"]
