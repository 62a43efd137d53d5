"""8 threads x 2,000 predictions on ONE Predictor per backend; every result must equal the serial result.

    .venv/bin/python benchmarks/concurrency.py [--threads 8] [--per-thread 2000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

import edgecls
from edgecls.data.samples import sample_images


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--per-thread", type=int, default=2000)
    ap.add_argument("--backends", nargs="+", default=["onnx", "xml", "pt"])
    a = ap.parse_args()
    out = Path(tempfile.mkdtemp(prefix="edgecls-conc-"))
    model, spec = edgecls.create_model("efficientnet_lite0", pretrained=True)
    imgs = list(sample_images().values())
    for b in a.backends:
        pred = edgecls.Predictor(edgecls.export(model, spec, out / f"lite0.{b}").path, threads=2)
        serial = [pred.predict(i, color="RGB") for i in imgs]

        def work(seed: int) -> int:
            mismatches = 0
            for j in np.random.default_rng(seed).integers(0, len(imgs), a.per_thread):
                p = pred.predict(imgs[j], color="RGB")
                mismatches += p.topk != serial[j].topk and not (
                    [t.index for t in p.topk] == [t.index for t in serial[j].topk]
                    and np.allclose([t.score for t in p.topk], [t.score for t in serial[j].topk], atol=1e-6)
                )
            return mismatches

        t0 = time.perf_counter()
        with ThreadPoolExecutor(a.threads) as ex:
            bad = sum(ex.map(work, range(a.threads)))
        dt = time.perf_counter() - t0
        n = a.threads * a.per_thread
        print(f"{pred.backend_name}: {a.threads} threads x {a.per_thread} = {n} predictions in {dt:.0f}s "
              f"({n / dt:.0f}/s); results differing from serial: {bad}")


if __name__ == "__main__":
    main()
