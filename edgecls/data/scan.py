"""A look at every file of an ImageFolder before training on it: what can be read, what cannot and why, what had to be
converted, how large the pictures are, and which files are byte-for-byte the same (train/val leakage).

Real photo folders are messy: a `.DS_Store`, a README, a truncated download, a GIF placeholder saved as a photo, a
grayscale scan, a CMYK print file, a PNG with alpha. Unreadable and non-image files are skipped with the reason
(`strict=True` makes any of them an error); readable ones in other modes are converted to RGB (decode.py) and
listed; pictures that look like graphics rather than photos are flagged (kept: only the user can tell).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import DataError, InputError
from ..runtime.artifacts import file_sha256
from ..runtime.decode import IMAGE_SUFFIXES
from .datasets import ArrayDataset

IGNORED_NAMES = ("thumbs.db", "desktop.ini")  # OS litter: skipped quietly, still listed
MIN_SIDE = 8  # smaller than this is an icon or a broken thumbnail, not a training picture
FLAT_SHARE = 0.4  # one exact colour over this share of a thumbnail's pixels: a graphic (JPEG noise prevents it in photos)


@dataclass
class ImageFile:
    path: str
    label: int
    width: int
    height: int
    mode: str
    format: str
    bytes: int
    sha256: str = ""
    converted: str | None = None  # what decode.to_rgb does to it
    suspect: str | None = None  # why it may not be a photo (kept)


@dataclass
class Skipped:
    path: str
    reason: str


@dataclass
class FolderScan:
    root: str
    classes: tuple[str, ...]
    files: list[ImageFile]
    skipped: list[Skipped] = field(default_factory=list)

    def dataset(self) -> ArrayDataset:
        return ArrayDataset([f.path for f in self.files], np.asarray([f.label for f in self.files], np.int64), self.classes)

    def counts(self) -> dict[str, int]:
        c = np.bincount([f.label for f in self.files], minlength=len(self.classes))
        return {name: int(n) for name, n in zip(self.classes, c)}

    def to_dict(self) -> dict:
        return {"root": self.root, "classes": list(self.classes), "files": [asdict(f) for f in self.files],
                "skipped": [asdict(s) for s in self.skipped]}

    @classmethod
    def from_dict(cls, d: dict) -> FolderScan:
        return cls(d["root"], tuple(d["classes"]), [ImageFile(**f) for f in d["files"]], [Skipped(**s) for s in d["skipped"]])


def flat_graphic(rgb: np.ndarray) -> str | None:
    """Why a picture looks like a graphic (placeholder, icon, screenshot), or None. One exact colour covering a large
    share of a nearest-neighbour thumbnail: camera noise and JPEG make that rare in photos."""
    step = max(1, min(rgb.shape[0], rgb.shape[1]) // 64)
    thumb = rgb[::step, ::step].reshape(-1, rgb.shape[-1] if rgb.ndim == 3 else 1)
    colours, counts = np.unique(thumb, axis=0, return_counts=True)
    share = counts.max() / counts.sum()
    if share >= FLAT_SHARE and len(colours) < 256:
        return f"looks like a graphic, not a photo: {len(colours)} colours, one covers {share:.0%} of it"
    return None


def check_file(path: Path, label: int, hashes: bool = True) -> ImageFile | Skipped:
    """Decode one file fully (reduced-size JPEG decoding: the whole stream is still read) and describe it."""
    from ..runtime.decode import conversion, open_image, to_rgb

    name = path.name.lower()
    if name.startswith(".") or name in IGNORED_NAMES:
        return Skipped(str(path), "hidden or system file")
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        return Skipped(str(path), f"not an image file (suffix {path.suffix or 'none'}; images are {', '.join(IMAGE_SUFFIXES)})")
    try:
        size = path.stat().st_size
        if size == 0:
            return Skipped(str(path), "empty file (0 bytes)")
        from PIL import Image

        with Image.open(path) as head:  # the stored size and mode, before any reduced decoding
            width, height, mode, fmt = head.width, head.height, head.mode, head.format or "?"
            frames = getattr(head, "n_frames", 1)
            if head.getexif().get(0x0112, 1) in (5, 6, 7, 8):  # EXIF rotation by 90 degrees: report the upright size
                width, height = height, width
        if min(width, height) < MIN_SIDE:
            return Skipped(str(path), f"{width}x{height} pixels: too small to be a training picture")
        im = open_image(path, draft=(max(64, width // 8), max(64, height // 8)))
        rgb = to_rgb(im)
    except InputError as exc:
        return Skipped(str(path), str(exc).replace(str(path), "").strip(" :") or "cannot be decoded")
    except OSError as exc:
        return Skipped(str(path), f"cannot be read ({exc})")
    note = conversion(im)
    if frames > 1:
        note = (note + "; " if note else "") + f"first of {frames} frames"
    return ImageFile(str(path), label, int(width), int(height), mode, fmt, int(size),
                     file_sha256(path) if hashes else "", note, flat_graphic(rgb))


def scan_folder(root: str | os.PathLike, *, classes: tuple[str, ...] | None = None, strict: bool = False,
                hashes: bool = True, threads: int = 2, progress: Callable[[int, int], None] | None = None) -> FolderScan:
    """Check every file under root/<class>/ (recursively). classes: the class list to map folders onto (a validation
    folder uses the training classes; a class folder there that training lacks is an error).

    strict: any skipped file is an error (DataError listing them) instead of a listed skip."""
    root, given = Path(root), classes
    if not root.is_dir():
        raise DataError(f"image folder not found: {root}")
    found = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not found:
        raise DataError(f"{root} has no class sub-folders; expected {root}/<class name>/<images>")
    if classes is not None:
        extra = [c for c in found if c not in classes]
        if extra:
            raise DataError(f"{root} has class folder(s) {extra} that the training data lacks (training classes: "
                            f"{list(classes)}); add training images for them or remove them from {root}")
    else:
        classes = tuple(found)
    loose = sorted(p for p in root.iterdir() if p.is_file() and not p.name.startswith("."))
    jobs = [(p, classes.index(c)) for c in found for p in sorted((root / c).rglob("*")) if p.is_file()]
    results: list[ImageFile | Skipped] = []
    with ThreadPoolExecutor(max(1, threads)) as pool:  # PIL decodes without the GIL
        for i, r in enumerate(pool.map(lambda job: check_file(job[0], job[1], hashes), jobs)):
            results.append(r)
            if progress:
                progress(i + 1, len(jobs))
    files = [r for r in results if isinstance(r, ImageFile)]
    skipped = [r for r in results if isinstance(r, Skipped)]
    skipped += [Skipped(str(p), "file outside the class folders") for p in loose]
    scan = FolderScan(str(root), tuple(classes), files, skipped)
    if strict and skipped:
        listing = "; ".join(f"{s.path}: {s.reason}" for s in skipped[:10])
        raise DataError(f"{len(skipped)} file(s) in {root} cannot be used (strict mode): {listing}"
                        f"{' ...' if len(skipped) > 10 else ''}. Remove them, or run without --strict to skip them")
    if not files:
        raise DataError(f"{root} has class folders {list(found)[:5]} but no images it can read ({', '.join(IMAGE_SUFFIXES)})"
                        + (f"; skipped: {skipped[0].path}: {skipped[0].reason}" if skipped else ""))
    if given is None:
        empty = [c for c, n in scan.counts().items() if n == 0]
        if empty:
            raise DataError(f"{root}: class folder(s) {empty} hold no images that can be read; remove them or add images")
        if len(classes) < 2:
            raise DataError(f"{root} has a single class {list(classes)}; a classifier needs at least two")
    return scan


def duplicates(*scans: FolderScan) -> list[list[tuple[int, str, str]]]:
    """Groups of byte-identical files across the scans: each group lists (scan index, path, class)."""
    by_hash: dict[str, list[tuple[int, str, str]]] = {}
    for k, s in enumerate(scans):
        for f in s.files:
            if f.sha256:
                by_hash.setdefault(f.sha256, []).append((k, f.path, s.classes[f.label]))
    return [g for g in by_hash.values() if len(g) > 1]


__all__ = ["FolderScan", "ImageFile", "Skipped", "check_file", "duplicates", "flat_graphic", "scan_folder"]


def load_image_folder(root: str | os.PathLike, *, strict: bool = False, classes: tuple[str, ...] | None = None) -> ArrayDataset:
    """root/<class>/<image>; classes sorted by name (or the given training classes, for a validation folder).

    Every file is decoded once here (scan.py): unreadable and non-image files are skipped and listed in
    `dataset.skipped` (strict=True: a DataError instead); files in other modes are converted when read."""
    scan = scan_folder(root, classes=classes, strict=strict, hashes=False)
    ds = scan.dataset()
    ds.skipped = scan.skipped
    return ds
