"""INT8 on this CPU, on labelled images: EfficientNet-Lite0 fine-tuned on CIFAR-10; per CPU runtime (ONNX Runtime,
OpenVINO, LiteRT) the INT8 that `edgecls deploy`'s INT8 stage builds under a 1-point budget, judged against that
runtime's FP32 on 1,100 validation images; ONNX Runtime's INT8 as edgecls built it before issue 27, on the same
model and images; the FP32/INT8 latency ratios of every runtime in one run, and the pick that follows.

    PYTHONPATH=. flock /tmp/edgecls-cpu.lock nice -n 5 .venv/bin/python benchmarks/int8_cifar10.py \\
        [-o .data/int8_cifar10] [--train-per-class 500] [--val-per-class 110] [--rounds 5] [--target-cpu this]

Data: ../shared/data/cifar10-train.tar.gz, files 0..499 of each class for training, 500..609 for validation (1,100
images never trained on). Training: benchmarks/cifar10_lite0.yaml's recipe (ImageNet Lite0, stages 0-4 frozen on
cached activations, 3 epochs, 224 px); the model is reused when -o already holds it. INT8: the deploy INT8 stage's
own code (compress.budget.ladder over compress.targets: the target's forms, then float fallbacks), calibrated on 300
training images (seed 0), each attempt judged by McNemar's exact test and Newcombe's interval of the paired drop.

"before": what edgecls built for ONNX Runtime on this CPU before issue 27: the ONNX export with TF-'SAME' padding
computed at run time, 7-bit weights everywhere (overflow_fix auto on a CPU without VNNI), no bias correction, then
the same ladder of float fallbacks under the same budget, on the same calibration and validation images.

Latency: model-only p50, batch 1, each runtime's default threads; all artifacts timed in alternating chunks of ten
calls (edgecls.runtime.timing.time_interleaved), --rounds rounds; the FP32/INT8 ratio per round and its median. The
pick: edgecls deploy's rule (deployment.pick) on these accuracies and latencies. Run it under the CPU lock with load
< 1.5 at the start: the load is printed before and after.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

RECIPE = {"arch": "efficientnet_lite0", "pretrained": True, "freeze_stages": 5, "cache_features": True,
          "augment": "crop_flip", "epochs": 3, "batch_size": 64, "optimizer": "adamw", "lr": 0.001, "min_lr": 1e-5,
          "weight_decay": 0.05, "warmup_epochs": 0.3, "label_smoothing": 0.1, "grad_clip": 2.0, "ema": True,
          "ema_decay": 0.999, "seed": 0, "eval_test": False}


def prepare(out: Path, train_n: int, val_n: int) -> tuple[Path, Path]:
    from tools.shared_data import extract_cifar10

    train, val = out / "data" / "train", out / "data" / "val"
    if not train.is_dir():
        extract_cifar10(train, per_class=train_n)
    if not val.is_dir():
        extract_cifar10(val, per_class=val_n, offset=train_n)
    return train, val


def trained(out: Path, train: Path, val: Path):
    from edgecls.models.pt import load_pt
    from edgecls.train import TrainConfig
    from edgecls.train import train as fit

    best = out / "train" / "best.pt"
    if not best.is_file():
        t = time.perf_counter()
        fit(TrainConfig.from_dict({**RECIPE, "data": str(train), "val_dir": str(val), "out_dir": str(out / "train"),
                                   "threads": os.cpu_count()}))
        print(f"training: {(time.perf_counter() - t) / 60:.1f} min", flush=True)
    return load_pt(best)


def int8_stage(name: str, model, spec, splits, out: Path, max_drop: float, target_cpu: str | None, before: bool = False):
    """FP32 export and the INT8 ladder of one runtime, as deploy's stages run them; before=True: the pre-issue-27 way."""
    import edgecls.exporters.same_padding as same
    from edgecls.compress.budget import ladder
    from edgecls.compress.data import dataset_calibration, predict_logits
    from edgecls.compress.targets import TARGETS, Int8Job

    t = TARGETS[name]
    work = out / (name + ("_before" if before else ""))
    work.mkdir(parents=True, exist_ok=True)
    fpath = work / f"fp32{t.suffix}"
    kept = same._modules
    if before:
        same._modules = lambda m: []  # the export as it was: padding computed from the input's shape at run time
        t = replace(t, forms=lambda job: [])  # no other all-INT8 form: straight to float layers, as before
    try:
        fspec = t.export_float(model, spec, fpath, None)
    finally:
        same._modules = kept
    labels = splits.val.labels

    def correct(path: Path) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return predict_logits(path, splits.val).argmax(1) == labels

    fcorrect = correct(fpath)
    calib = dataset_calibration(splits.train, fspec, 300, seed=0)
    options = {"overflow_fix": "enable", "bias_correction": False} if before else {"target_cpu": target_cpu}
    job = Int8Job(model, spec, fpath, fspec, calib, work / "int8", (), options, None)
    tag = f"{name}{' (before)' if before else ''}"
    rows = ladder(t, job, correct, fcorrect, max_drop, work, log=lambda s: print(f"  {tag}: {s}", flush=True))
    return fpath, fcorrect, [r for r in rows if r["method"] != "sensitivity probe"]


def latency(paths: dict[str, Path], rounds: int) -> dict[str, list[float]]:
    from edgecls import Predictor
    from edgecls.runtime.timing import time_interleaved

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        preds = {k: Predictor(p) for k, p in paths.items()}
    xs = {k: np.zeros((1, *p.spec.input.shape[1:]), p.spec.input.dtype) for k, p in preds.items()}
    out: dict[str, list[float]] = {k: [] for k in paths}
    for _ in range(rounds):
        ms = time_interleaved({k: (lambda p, x: lambda: p.infer(x))(p, xs[k]) for k, p in preds.items()}, 20, 200, None)
        for k, v in ms.items():
            out[k].append(statistics.median(v))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-o", "--out", default=str(REPO / ".data" / "int8_cifar10"))
    ap.add_argument("--train-per-class", type=int, default=500)
    ap.add_argument("--val-per-class", type=int, default=110)
    ap.add_argument("--max-drop", type=float, default=1.0)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--target-cpu", default="this")
    ap.add_argument("--targets", nargs="+", default=["onnxruntime", "openvino", "litert"])
    ap.add_argument("--no-before", action="store_true")
    a = ap.parse_args()
    from edgecls import stats
    from edgecls.compress.data import load_splits
    from edgecls.deployment.pick import _choose
    from edgecls.runtime.cpuinfo import describe_text

    print(f"load before: {os.getloadavg()}; {describe_text()}", flush=True)
    out = Path(a.out)
    train, val = prepare(out, a.train_per_class, a.val_per_class)
    model, spec = trained(out, train, val)
    splits = load_splits(str(train), val_dir=str(val))
    runs = [(t, False) for t in a.targets] + ([("onnxruntime", True)] if "onnxruntime" in a.targets and not a.no_before else [])
    results, paths = {}, {}
    for name, before in runs:
        t0 = time.perf_counter()
        key = name + (" (before)" if before else "")
        fpath, fcorrect, rows = int8_stage(name, model, spec, splits, out, a.max_drop, a.target_cpu, before)
        chosen = next(r for r in rows if r["final"])
        results[key] = (fcorrect, chosen, rows, time.perf_counter() - t0)
        paths[f"{key} fp32"], paths[f"{key} int8"] = fpath, Path(chosen["artifact"])
    print(f"\nCIFAR-10, EfficientNet-Lite0 fine-tuned ({spec.input.height} px), {len(splits.val)} validation images; "
          f"budget {a.max_drop:g} top-1 point")
    for key, (fcorrect, c, rows, secs) in results.items():
        from edgecls.compress.data import predict_logits

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ok = predict_logits(c["artifact"], splits.val).argmax(1) == splits.val.labels
        d, f, q = stats.budget(fcorrect, ok, a.max_drop), stats.accuracy(fcorrect), stats.accuracy(ok)
        cmp = d.comparison
        print(f"{key:22s} FP32 {f.pct()}  INT8 {q.pct()}  drop {d.drop_pts:+.2f} pts, 95% [{-100 * cmp.hi:+.2f}, "
              f"{-100 * cmp.lo:+.2f}], lost {cmp.ref_only} gained {cmp.other_only}, McNemar p={cmp.p_value:.3g}, "
              f"within: {d.within}; {c['method']}; float: {c['keep_float'] or 'none'}; {len(rows)} attempt(s), "
              f"{secs / 60:.1f} min")
    print(f"\nlatency, all artifacts in one run; load {os.getloadavg()}", flush=True)
    lat = latency(paths, a.rounds)
    cands = []
    for key, (fcorrect, c, _, _) in results.items():
        fp, q = lat[f"{key} fp32"], lat[f"{key} int8"]
        ratios = [b / x for b, x in zip(fp, q)]
        print(f"{key:22s} FP32 p50 {statistics.median(fp):6.2f} ms  INT8 {statistics.median(q):6.2f} ms  FP32/INT8 "
              f"{statistics.median(ratios):.2f}x (rounds {', '.join(f'{v:.2f}' for v in ratios)})")
        if "before" not in key:
            cands += [{"target": key, "precision": "fp32", "path": str(paths[f"{key} fp32"]), "acceptable": True,
                       "latency_ms": statistics.median(fp), "val_top1": float(np.mean(fcorrect)), "file_mb": 0},
                      {"target": key, "precision": "int8", "path": str(paths[f"{key} int8"]),
                       "acceptable": bool(c["within_budget"]), "latency_ms": statistics.median(q), "val_top1": c["val_top1"],
                       "file_mb": 0, "speedup": round(statistics.median(fp) / statistics.median(q), 3)}]
    print(f"load after: {os.getloadavg()}")
    pick = _choose(cands, None, "model-only p50", a.max_drop)
    print(f"pick (deploy's rule): {pick['why'] if pick else 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
