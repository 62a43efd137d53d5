"""CIFAR-10 on a CPU: pretrained EfficientNet-Lite0, partial fine-tuning on cached activations, then INT8 everywhere.

    PYTHONPATH=. nice -n 19 .venv/bin/python benchmarks/cifar10_recipe.py --config benchmarks/cifar10_lite0.yaml

Data: ../shared/data/cifar10-train.tar.gz (CIFAR-10's 50,000 training images; the test split is not used), extracted
into .data/cifar10. Validation: the trainer's stratified split (val_fraction 0.1, seed 0) = 5,000 images, 500 per
class, never trained on; every figure below is on it.

Prints, per stage, wall time, CPU time (all threads) and images/s, with the load average around it (the machine
is shared; CPU seconds / cores is what an idle machine would take, at best). Then the FP32 and INT8 artifacts for
ONNX Runtime, OpenVINO and LiteRT: top-1 with n and a Wilson 95% interval, and each INT8 against its own FP32 on
the same images: drop in points, discordant pairs and the exact McNemar p-value. A JSON report goes to --out.
`--model best.pt` skips training (INT8 and evaluation of an existing model).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from edgecls.stats import mcnemar_exact, wilson  # noqa: E402


# --- timing ----------------------------------------------------------------------------------------------------
class Stage:
    """Wall and CPU seconds (this process, all threads) of a block, with the 1-minute load average before/after."""

    rows: list[dict] = []

    def __init__(self, name: str, images: int | None = None):
        self.name, self.images = name, images

    def __enter__(self):
        self.t0, self.c0, self.load0 = time.perf_counter(), time.process_time(), os.getloadavg()[0]
        print(f"--- {self.name} (load average {self.load0:.1f})", flush=True)
        return self

    def __exit__(self, *exc):
        wall, cpu = time.perf_counter() - self.t0, time.process_time() - self.c0
        row = {"stage": self.name, "wall_s": round(wall, 1), "cpu_s": round(cpu, 1), "images": self.images,
               "images_per_s": round(self.images / wall, 1) if self.images else None,
               "load_before": round(self.load0, 1), "load_after": round(os.getloadavg()[0], 1)}
        Stage.rows.append(row)
        print(f"    {self.name}: {wall:.0f}s wall, {cpu:.0f}s CPU" + (f", {self.images / wall:.1f} img/s" if self.images else ""), flush=True)


# --- stages ----------------------------------------------------------------------------------------------------
def data_folder() -> Path:
    from tools import shared_data

    dest = shared_data.cache_dir() / "cifar10"
    with Stage("extract CIFAR-10 (50,000 JPEGs)"):
        shared_data.extract_cifar10(dest)
    return dest


def train_model(cfg_path: Path, data: Path, out: Path, overrides: dict) -> tuple[Path, dict]:
    import yaml

    from edgecls.train import TrainConfig, train

    d = yaml.safe_load(cfg_path.read_text())
    d.update(data=str(data), out_dir=str(out / "train"), **overrides)
    cfg = TrainConfig.from_dict(d)
    with Stage("train (feature cache + epochs + final evaluation)"):
        result = train(cfg)
    m = result.metrics
    cache = m.get("feature_cache") or {}
    for part in ("train", "val"):
        if part in cache:
            c = cache[part]
            Stage.rows.append({"stage": f"  feature cache, {part} ({c['runtime']}, {c['views']} view(s))", "wall_s": round(c["seconds"], 1),
                               "cpu_s": round(c["cpu_seconds"], 1), "images": c["images"] * c["views"],
                               "images_per_s": round(c["images_per_s"], 1)})
    for h in m["history"]:
        Stage.rows.append({"stage": f"  epoch {h['epoch']} (val top-1 {h['val_top1']:.4f})", "wall_s": round(h["seconds"], 1),
                           "cpu_s": None, "images": None, "images_per_s": round(h["images_per_s"], 1)})
    return result.best_path, m


def build_artifacts(model_path: Path, train_ds, out: Path, n_calib: int, verify_images: dict) -> dict[str, Path]:
    """FP32 and INT8 for ONNX Runtime, OpenVINO and LiteRT, all calibrated on the same training images."""
    import edgecls
    from edgecls.compress.data import dataset_calibration, subset
    from edgecls.compress.ptq import quantize_file
    from edgecls.models.pt import load_pt

    model, spec = load_pt(model_path)
    d = out / "artifacts"
    d.mkdir(parents=True, exist_ok=True)
    paths = {}
    with Stage("export FP32 (ONNX, OpenVINO, TFLite), verified"):
        for fmt, name in (("onnxruntime", "fp32.onnx"), ("openvino", "fp32.xml"), ("litert", "fp32.tflite")):
            paths[(fmt, "fp32")] = edgecls.export(model, spec, d / name, images=verify_images).path
    calib_ds = subset(train_ds, n_calib, seed=1)
    for fmt, name in (("onnxruntime", "int8.onnx"), ("openvino", "int8.xml")):
        src = paths[(fmt, "fp32")]
        src_spec = edgecls.Predictor(src).spec
        with Stage(f"INT8 PTQ {fmt} ({n_calib} calibration images)"):
            calib = dataset_calibration(calib_ds, src_spec, n_calib)
            quantize_file("onnx" if fmt == "onnxruntime" else "openvino", src, d / name, src_spec, calib)
        paths[(fmt, "int8")] = d / name
    with Stage(f"INT8 TFLite (PT2E, {n_calib} calibration images), verified"):
        imgs = [calib_ds.pixels(i) for i in range(len(calib_ds))]
        paths[("litert", "int8")] = edgecls.export(model, spec, d / "int8.tflite", precision="int8", calibration=imgs,
                                                   images=verify_images).path
    return paths


def evaluate(paths: dict, val_ds, threads: int) -> dict:
    from edgecls.compress.data import predict_logits

    correct = {}
    for key, path in paths.items():
        with Stage(f"evaluate {key[0]} {key[1]} on {len(val_ds)} val images", len(val_ds)):
            logits = predict_logits(path, val_ds, threads=threads)
        correct[key] = logits.argmax(1) == val_ds.labels
    return correct


def report(correct: dict, n: int) -> list[dict]:
    rows = []
    print(f"\n{'runtime':12s} {'precision':9s} {'top-1':>7s} {'95% CI (Wilson)':>17s} {'n':>5s}   INT8 vs its FP32")
    for (fmt, prec), ok in correct.items():
        k = int(ok.sum())
        w = wilson(k, n)
        lo, hi = w.lo, w.hi
        row = {"runtime": fmt, "precision": prec, "top1": k / n, "correct": k, "n": n, "ci95": [lo, hi]}
        cmp = ""
        if prec == "int8" and (fmt, "fp32") in correct:
            ref = correct[(fmt, "fp32")]
            b, c = int((ref & ~ok).sum()), int((~ref & ok).sum())  # FP32 right/INT8 wrong, and the reverse
            row.update(drop_pts=round((ref.sum() - k) / n * 100, 3), fp32_only=b, int8_only=c, mcnemar_p=mcnemar_exact(b, c))
            cmp = f"drop {row['drop_pts']:+.2f} pts (FP32-only right {b}, INT8-only right {c}, McNemar exact p={row['mcnemar_p']:.3g})"
        print(f"{fmt:12s} {prec:9s} {k / n:7.4f} [{lo:.4f}, {hi:.4f}] {n:5d}   {cmp}")
        rows.append(row)
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", type=Path, default=REPO / "benchmarks" / "cifar10_lite0.yaml", help="the TrainConfig YAML of the recipe")
    ap.add_argument("--out", type=Path, default=REPO / "runs" / "cifar10_recipe", help="output folder (training run, artifacts, report.json)")
    ap.add_argument("--model", type=Path, default=None, help="an edgecls .pt trained on this split: skip training")
    ap.add_argument("--calibration", type=int, default=300, help="training images used to calibrate every INT8 build")
    ap.add_argument("--limit-train", type=int, default=None, help="train on a stratified subset (a quick look, not the figure)")
    ap.add_argument("--limit-val", type=int, default=None, help="validate on a stratified subset (a quick look, not the figure)")
    ap.add_argument("--threads", type=int, default=2, help="runtime threads for training and evaluation")
    ap.add_argument("--epochs", type=int, default=None, help="override the recipe's epochs (a quick look, not the figure)")
    a = ap.parse_args(argv)

    import yaml

    import edgecls
    from edgecls.data.datasets import stratified_split
    from edgecls.data.scan import load_image_folder

    def limit(ds, n):  # the trainer's rule for limit_train/limit_val: a stratified sample of ~n images
        return ds if n is None or n >= len(ds) else stratified_split(ds, n / len(ds), seed)[1]

    data = data_folder()
    a.out.mkdir(parents=True, exist_ok=True)
    overrides = {k: v for k, v in (("limit_train", a.limit_train), ("limit_val", a.limit_val), ("threads", a.threads), ("epochs", a.epochs)) if v is not None}
    metrics = None
    if a.model is None:
        model_path, metrics = train_model(a.config, data, a.out, overrides)
    else:
        model_path = a.model
    cfg = yaml.safe_load(a.config.read_text())
    seed, frac = cfg.get("seed", 0), cfg.get("val_fraction", 0.1)
    train_ds, val_ds = stratified_split(load_image_folder(data), frac, seed)
    train_ds, val_ds = limit(train_ds, a.limit_train), limit(val_ds, a.limit_val)
    print(f"validation: {len(val_ds)} images ({np.bincount(val_ds.labels).tolist()} per class), training: {len(train_ds)}")
    verify = {f"val{i}": val_ds.pixels(i) for i in range(0, len(val_ds), max(1, len(val_ds) // 32))}
    paths = build_artifacts(model_path, train_ds, a.out, a.calibration, verify)
    correct = evaluate(paths, val_ds, a.threads)

    print("\nstage                                                      wall s    CPU s    img/s   load")
    for r in Stage.rows:
        load = f"{r.get('load_before', '')}->{r.get('load_after', '')}" if "load_before" in r else ""
        print(f"{r['stage'][:56]:56s} {r['wall_s']:8.0f} {r['cpu_s'] if r['cpu_s'] is not None else '':>8} "
              f"{r['images_per_s'] if r['images_per_s'] else '':>8} {load:>10}")
    if metrics:
        s = metrics["summary"]
        print(f"\ntrained model (PyTorch, whole network on the images): val top-1 {s['val_top1']:.4f}, best epoch {s['best_epoch']}")
    rows = report(correct, len(val_ds))
    out = {"edgecls": edgecls.__version__, "config": cfg, "val_images": len(val_ds), "model": str(model_path),
           "stages": Stage.rows, "artifacts": rows, "train_summary": metrics["summary"] if metrics else None,
           "history": metrics["history"] if metrics else None, "cpu_count": os.cpu_count()}
    (a.out / "report.json").write_text(json.dumps(out, indent=2, default=str))
    print(f"\nreport: {a.out / 'report.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
