"""Multi-label data from CIFAR-10: 2x2 mosaics of training images, labels = the classes present.

Each mosaic draws k in 1..4 distinct classes (uniformly), gives each of them at least one of the four cells, fills the
remaining cells with those same classes, and puts a distinct random image of that class in each cell. Written as PNG
(lossless: the cells stay the JPEGs CIFAR-10 holds) with a labels.csv manifest (`file,labels`, labels joined by ';').
Deterministic for a seed. The train and val mosaics are cut from disjoint source images (different files per class).

    python tools/make_mosaics.py OUT [--train 4000] [--val 1000] [--src-train 2500] [--src-val 500] [--seed 0]
        -> OUT/train/{labels.csv, m00000.png ...}, OUT/val/{...}

`build(src, out, n, seed)` does one split from any ImageFolder (tests use the small CIFAR-10 fixture folders).
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tools import shared_data  # noqa: E402


def _images(src: Path) -> dict[str, list[Path]]:
    out = {d.name: sorted(p for p in d.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
           for d in sorted(src.iterdir()) if d.is_dir()}
    out = {c: files for c, files in out.items() if files}
    if len(out) < 2:
        raise SystemExit(f"{src}: need an ImageFolder with at least two class folders of images")
    return out


def build(src: str | os.PathLike, out: str | os.PathLike, n: int, seed: int = 0, cell: int = 32,
          max_classes: int = 4) -> Path:
    """Write n mosaics of src's class folders into out/ with out/labels.csv; returns out/labels.csv."""
    from PIL import Image

    by_class = _images(Path(src))
    classes = sorted(by_class)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        k = int(rng.integers(1, min(max_classes, len(classes)) + 1))
        present = list(rng.choice(len(classes), size=k, replace=False))
        cells = present + list(rng.choice(present, size=4 - k, replace=True))
        cells = [classes[c] for c in rng.permutation(cells)]
        canvas = Image.new("RGB", (2 * cell, 2 * cell))
        used: dict[str, set[int]] = {}
        for j, name in enumerate(cells):
            pool = by_class[name]
            taken = used.setdefault(name, set())
            pick = int(rng.integers(len(pool)))
            while pick in taken and len(taken) < len(pool):
                pick = int(rng.integers(len(pool)))
            taken.add(pick)
            with Image.open(pool[pick]) as im:
                tile = im.convert("RGB").resize((cell, cell), Image.BILINEAR) if im.size != (cell, cell) else im.convert("RGB")
            canvas.paste(tile, ((j % 2) * cell, (j // 2) * cell))
        name = f"m{i:05d}.png"
        canvas.save(out / name)
        rows.append((name, ";".join(sorted(set(cells)))))
    manifest = out / "labels.csv"
    tmp = manifest.with_name(".labels.csv.tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "labels"])
        w.writerows(rows)
    os.replace(tmp, manifest)
    return manifest


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", help="output folder (gets train/ and val/, each with labels.csv)")
    ap.add_argument("--train", type=int, default=4000, help="training mosaics (default 4000)")
    ap.add_argument("--val", type=int, default=1000, help="validation mosaics (default 1000)")
    ap.add_argument("--src-train", type=int, default=2500, help="CIFAR-10 images per class the training mosaics are cut from")
    ap.add_argument("--src-val", type=int, default=500, help="CIFAR-10 images per class for validation (disjoint from the above)")
    ap.add_argument("--seed", type=int, default=0, help="seed of every draw (same seed, same mosaics)")
    a = ap.parse_args(argv)
    out = Path(a.out)
    cache = shared_data.cache_dir() / "cifar10_mosaic_src"
    src_train = shared_data.extract_cifar10(cache / f"train_{a.src_train}", per_class=a.src_train)
    src_val = shared_data.extract_cifar10(cache / f"val_{a.src_train}_{a.src_val}", per_class=a.src_val, offset=a.src_train)
    build(src_train, out / "train", a.train, a.seed)
    build(src_val, out / "val", a.val, a.seed + 1)
    print(f"wrote {a.train} training and {a.val} validation mosaics under {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
