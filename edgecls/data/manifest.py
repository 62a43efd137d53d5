"""Multi-label data: image files plus a manifest saying which labels each one has.

The manifest sits in the image folder (or anywhere, given as `manifest:`), named `labels.csv` or `labels.json`:

    labels.csv                          labels.json
    file,labels                         {"img/0001.jpg": ["cat", "dog"],
    img/0001.jpg,cat;dog                 "img/0002.jpg": ["car"],
    img/0002.jpg,car                     "img/0003.jpg": []}
    img/0003.jpg,

File paths are relative to the manifest's folder; labels are separated by `;` in the CSV. An empty label set (a
picture showing none of the classes) is refused unless allowed (allow_empty_labels), so a forgotten label is not
silently read as "nothing here". The class list is the sorted union of the labels, or the given `classes` (then every
label must be one of them, and in that order). Every file is decoded once here, as an image folder is (scan.py).
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigError, ManifestError
from .datasets import ArrayDataset

MANIFEST_NAMES = ("labels.csv", "labels.json")
SEPARATOR = ";"
MAX_MANIFEST_BYTES = 256 * 2**20
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Manifest:
    path: Path
    files: tuple[str, ...]  # as written, relative to path.parent
    labels: tuple[tuple[str, ...], ...]  # per file, in the order written


def find_manifest(folder: str | os.PathLike) -> Path:
    """labels.csv or labels.json in `folder` (exactly one of them)."""
    d = Path(folder)
    if not d.is_dir():
        raise ManifestError(f"{d} is not a folder; multi-label data is a folder of images with a labels.csv or "
                            "labels.json manifest (see the README, 'Multi-label')")
    found = [d / n for n in MANIFEST_NAMES if (d / n).is_file()]
    if not found:
        raise ManifestError(f"{d} has no manifest: put a labels.csv (`file,labels`, labels separated by ';') or a "
                            "labels.json ({\"file\": [\"label\", ...]}) in it, or give its path (manifest: PATH)")
    if len(found) > 1:
        raise ManifestError(f"{d} holds both labels.csv and labels.json; keep one manifest (or give its path)")
    return found[0]


def _label_list(where: str, raw: list) -> tuple[str, ...]:
    out = []
    for x in raw:
        if not isinstance(x, str):
            raise ManifestError(f"{where}: label {x!r} is not a string")
        name = x.strip()
        if not name:
            raise ManifestError(f"{where}: an empty label name (two separators in a row, or a trailing one)")
        if _CONTROL.search(name) or len(name) > 512:
            raise ManifestError(f"{where}: label {name[:40]!r} holds a control character or is over 512 characters")
        out.append(name)
    dup = sorted({x for x in out if out.count(x) > 1})
    if dup:
        raise ManifestError(f"{where}: label(s) {dup} listed twice for the same file")
    return tuple(out)


def _parse_csv(path: Path, text: str) -> list[tuple[str, tuple[str, ...]]]:
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or [c.strip().lower() for c in rows[0]] != ["file", "labels"]:
        raise ManifestError(f"{path}: the first line must be the header `file,labels`; got "
                            f"{','.join(rows[0]) if rows else 'an empty file'!r}")
    out = []
    for n, row in enumerate(rows[1:], start=2):
        if not row or all(not c.strip() for c in row):
            continue  # a blank line
        if len(row) != 2:
            raise ManifestError(f"{path} line {n}: {len(row)} fields, expected 2 (file,labels); quote a file name that "
                                "holds a comma, and separate labels with ';'")
        file, labels = row[0].strip(), row[1].strip()
        if not file:
            raise ManifestError(f"{path} line {n}: the file field is empty")
        out.append((file, _label_list(f"{path} line {n}", labels.split(SEPARATOR)) if labels else ()))
    return out


def _parse_json(path: Path, text: str) -> list[tuple[str, tuple[str, ...]]]:
    def no_duplicate_keys(pairs):
        keys = [k for k, _ in pairs]
        dup = sorted({k for k in keys if keys.count(k) > 1})
        if dup:
            raise ManifestError(f"{path}: file(s) {dup[:5]} listed twice")
        return dict(pairs)

    try:
        data = json.loads(text, object_pairs_hook=no_duplicate_keys)
    except ValueError as exc:
        if isinstance(exc, ManifestError):
            raise
        raise ManifestError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ManifestError(f"{path} must hold one JSON object {{\"file\": [\"label\", ...]}}, got {type(data).__name__}")
    out = []
    for file, labels in data.items():
        if not isinstance(labels, list):
            raise ManifestError(f"{path}: {file!r} maps to {labels!r}; each file maps to a list of labels (possibly [])")
        if not file.strip():
            raise ManifestError(f"{path}: an empty file name")
        out.append((file.strip(), _label_list(f"{path}: {file!r}", labels)))
    return out


def read_manifest(path: str | os.PathLike) -> Manifest:
    """Parse a labels.csv / labels.json (format errors only; files and classes are checked by load_multilabel)."""
    p = Path(path)
    if not p.is_file():
        raise ManifestError(f"manifest {p} does not exist; give a labels.csv or labels.json")
    if p.stat().st_size > MAX_MANIFEST_BYTES:
        raise ManifestError(f"manifest {p} is over {MAX_MANIFEST_BYTES >> 20} MiB; it is not a label list")
    try:
        text = p.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"manifest {p} cannot be read as UTF-8 text: {exc}") from None
    if p.suffix.lower() == ".csv":
        entries = _parse_csv(p, text)
    elif p.suffix.lower() == ".json":
        entries = _parse_json(p, text)
    else:
        raise ManifestError(f"manifest {p}: use a .csv (file,labels) or .json file")
    if not entries:
        raise ManifestError(f"manifest {p} lists no images")
    files = [f for f, _ in entries]
    dup = sorted({f for f in files if files.count(f) > 1}) if len(set(files)) != len(files) else []
    if dup:
        raise ManifestError(f"{p}: file(s) {dup[:5]} listed more than once; give each image one row with all its labels")
    return Manifest(p, tuple(files), tuple(labels for _, labels in entries))


def load_multilabel(source: str | os.PathLike, *, classes: tuple[str, ...] | list[str] | None = None,
                    allow_empty: bool = False, strict: bool = False, hashes: bool = False) -> ArrayDataset:
    """A multi-label dataset: `source` is a folder holding labels.csv/labels.json, or the manifest itself.

    Returns an ArrayDataset whose labels are a (N, classes) uint8 multi-hot matrix. Unreadable images are skipped and
    listed (strict: an error); a file the manifest names that does not exist is always an error. `ds.files` holds each
    kept image's scan record (size, conversion, SHA-256 with hashes=True), as scan_folder's do."""
    from .scan import Skipped, check_file

    src = Path(source)
    path = src if src.is_file() else find_manifest(src)
    m = read_manifest(path)
    root = path.parent
    for f, labels in zip(m.files, m.labels):
        if not labels and not allow_empty:
            raise ManifestError(f"{path}: {f} has no labels. If it truly shows none of the classes (a background "
                                "picture), set allow_empty_labels: true; otherwise add its labels")
    if classes is not None:
        classes = tuple(classes)
        if not classes or len(set(classes)) != len(classes):
            raise ManifestError(f"classes {list(classes)}: give a non-empty list of distinct class names")
        known = set(classes)
        for f, labels in zip(m.files, m.labels):
            bad = [x for x in labels if x not in known]
            if bad:
                raise ManifestError(f"{path}: {f} has label(s) {bad} that are not in the class list "
                                    f"({', '.join(classes[:20])}{' ...' if len(classes) > 20 else ''}); fix the label, or "
                                    "add it to classes")
    else:
        classes = tuple(sorted({x for labels in m.labels for x in labels}))
        if not classes:
            raise ManifestError(f"{path}: no image has a label; a multi-label model needs at least one class")
    missing = [f for f in m.files if not (root / f).is_file()]
    if missing:
        raise ManifestError(f"{path} names {len(missing)} file(s) that do not exist under {root}, e.g. "
                            f"{missing[:3]}; paths are relative to the manifest's folder")
    index = {c: i for i, c in enumerate(classes)}
    paths, rows, skipped, files = [], [], [], []
    for f, labels in zip(m.files, m.labels):
        got = check_file(root / f, 0, hashes=hashes)
        if isinstance(got, Skipped):
            skipped.append(got)
            continue
        files.append(got)
        paths.append(str(root / f))
        row = np.zeros(len(classes), np.uint8)
        row[[index[x] for x in labels]] = 1
        rows.append(row)
    if skipped and strict:
        raise ManifestError(f"{len(skipped)} image(s) of {path} cannot be used: "
                            + "; ".join(f"{s.path}: {s.reason}" for s in skipped[:5]))
    if not paths:
        raise ManifestError(f"{path}: none of its {len(m.files)} images can be read")
    ds = ArrayDataset(paths, np.stack(rows), classes)
    ds.skipped = skipped
    ds.files = files
    return ds


def random_split(ds: ArrayDataset, val_fraction: float, seed: int) -> tuple[ArrayDataset, ArrayDataset]:
    """A seeded random train/val split of a multi-label set (label sets do not stratify like classes)."""
    if not 0.0 < val_fraction < 1.0:
        raise ConfigError(f"val_fraction={val_fraction} must be in (0, 1)")
    idx = np.random.default_rng(seed).permutation(len(ds))
    n_val = max(1, int(round(len(ds) * val_fraction)))
    return ds.subset(np.sort(idx[n_val:])), ds.subset(np.sort(idx[:n_val]))


__all__ = ["MANIFEST_NAMES", "Manifest", "ManifestError", "find_manifest", "load_multilabel", "random_split", "read_manifest"]
