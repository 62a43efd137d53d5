"""Classify every image under a folder and write a CSV (path, label, index, score, top-k). Bad files are reported
in the CSV's error column, not fatal.

    python examples/folder.py model.onnx photos/ results.csv [--batch 16]
"""

import argparse
import csv
import os
import tempfile
from pathlib import Path

import edgecls

SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}

ap = argparse.ArgumentParser()
ap.add_argument("model")
ap.add_argument("folder")
ap.add_argument("csv")
ap.add_argument("-k", "--topk", type=int, default=3)
a = ap.parse_args()

pred = edgecls.Predictor(a.model)
files = sorted(p for p in Path(a.folder).rglob("*") if p.suffix.lower() in SUFFIXES)
out = Path(a.csv)
fd, tmp = tempfile.mkstemp(dir=out.parent if str(out.parent) else ".", suffix=".csv.tmp")
with os.fdopen(fd, "w", newline="") as f:  # written beside the target, renamed when complete
    w = csv.writer(f)
    w.writerow(["path", "label", "index", "score", "topk", "error"])
    for p in files:
        try:
            r = pred.predict(p, topk=a.topk)
            w.writerow([p, r.label, r.index, f"{r.score:.5f}", "|".join(f"{t.label}:{t.score:.4f}" for t in r.topk), ""])
        except edgecls.EdgeclsError as exc:
            w.writerow([p, "", "", "", "", str(exc)])
os.replace(tmp, out)
print(f"{len(files)} images -> {out}")
