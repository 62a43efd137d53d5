"""Multi-label on CIFAR-10 mosaics: train, INT8 on every CPU runtime under an mAP budget, print the figures.

    nice -n 19 python benchmarks/multilabel_mosaics.py [--train 3000] [--val 1000] [--size 128] [--freeze 5]
        [--epochs 6] [--max-drop 1.0] [--out .data/multilabel_run]
    # with the time planner (backbone, input side, frozen stages, epochs and seeds chosen to fit; issue 26):
    flock /tmp/edgecls-cpu.lock nice -n 5 python benchmarks/multilabel_mosaics.py --train 10000 --val 1000 \
        --time-limit 45m --arch efficientnet_lite0 --out .data/multilabel_budget

1. tools/make_mosaics.py: 2x2 mosaics (1-4 distinct classes each, labels = the classes present), train and val cut
   from disjoint CIFAR-10 training files.
2. `edgecls train` settings: pretrained EfficientNet-Lite0, stem + first `--freeze` stages frozen with their
   activations cached (the CPU-feasible partial fine-tune), BCE, best epoch by val mAP, per-label max-F1 thresholds.
3. `edgecls compress` quantize step on ONNX Runtime, OpenVINO and LiteRT: each INT8 build judged against its own
   FP32 artifact on the same validation mosaics in mAP (paired bootstrap), thresholds refit per INT8 artifact.
4. ExecuTorch FP32 (.pte), when installed: the same mAP through its Predictor.
Prints val mAP with its 95% interval and n, micro/macro F1, and per runtime FP32/INT8 mAP and the paired drop.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tools import shared_data  # noqa: E402
from tools.make_mosaics import main as make_mosaics  # noqa: E402


def map_of(path, val) -> tuple[float, float, float, np.ndarray]:
    from edgecls import stats
    from edgecls.compress.data import predict_logits
    from edgecls.evaluation.multilabel import mean_ap
    from edgecls.runtime.scores import sigmoid

    y = val.labels.astype(bool)
    s = sigmoid(predict_logits(path, val))
    est, lo, hi = stats.bootstrap(lambda i: mean_ap(y[i], s[i]), np.arange(len(y)), n_boot=1000)
    return est, lo, hi, s


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--train", type=int, default=3000)
    ap.add_argument("--val", type=int, default=1000)
    ap.add_argument("--size", type=int, default=None, help="model input side (the 64 px mosaics are upscaled; default "
                                                           "128, or the planner's choice under --time-limit)")
    ap.add_argument("--time-limit", default=None, help="train under this wall-clock budget (45m): the planner chooses")
    ap.add_argument("--arch", default="efficientnet_lite0", help="backbone, or auto (compare the candidates)")
    ap.add_argument("--freeze", type=int, default=5, help="freeze_stages (cached); Lite0 has 7")
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--max-drop", type=float, default=1.0, help="INT8 budget in mAP points (x 100)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(shared_data.cache_dir() / "multilabel_run"))
    a = ap.parse_args()
    warnings.simplefilter("ignore")
    out = Path(a.out)
    data = out / "mosaics"
    t0 = time.perf_counter()
    if not (data / "val" / "labels.csv").is_file():
        make_mosaics([str(data), "--train", str(a.train), "--val", str(a.val)])
    print(f"data: {time.perf_counter() - t0:.0f}s")

    from edgecls.data.manifest import load_multilabel
    from edgecls.train import TrainConfig, train

    t1 = time.perf_counter()
    size = a.size or (None if a.time_limit else 128)
    cfg = TrainConfig(task="multilabel", data=str(data / "train"), val_dir=str(data / "val"), arch=a.arch,
                      pretrained=True, input_size=size, freeze_stages=a.freeze, cache_features=True, epochs=a.epochs,
                      batch_size=64, lr=a.lr, warmup_epochs=0.5, weight_decay=1e-4, ema=False, threads=a.threads,
                      out_dir=str(out / "train"), time_limit=a.time_limit, mistakes=0)
    result = train(cfg)
    train_s = time.perf_counter() - t1
    s = result.metrics["summary"]
    v = result.metrics["val"]
    print(f"\ntrain: {train_s / 60:.1f} min; best epoch {s['best_epoch']}")
    for w in (result.metrics.get("plan") or {}).get("why", []):
        print(f"  plan: {w}")
    for n, sp in (result.metrics.get("seed_spread") or {}).items():
        if sp["n"] > 1:
            print(f"  seeds of {n}: mean mAP {sp['mean']:.4f} [{sp['lo']:.4f}, {sp['hi']:.4f}] (n={sp['n']})")
    print(f"val mAP {v['map']['value']:.4f} [95% {v['map']['interval'][0]:.4f}, {v['map']['interval'][1]:.4f}] n={v['n']} "
          f"(labels per image {v['labels_per_image']:.2f}); micro F1 {v['micro_f1']['value']:.4f} "
          f"[{v['micro_f1']['interval'][0]:.4f}, {v['micro_f1']['interval'][1]:.4f}], macro F1 {v['macro_f1']['value']:.4f} "
          "(thresholds fitted on these images: optimistic)")

    from edgecls.compress import CompressConfig, run
    from edgecls.compress.pipeline import CompressError

    t2 = time.perf_counter()
    ccfg = CompressConfig.from_dict({
        "model": str(result.best_path), "data": str(data / "train"), "val_dir": str(data / "val"),
        "out_dir": str(out / "compress"), "threads": a.threads,
        "steps": [{"quantize": {"backends": ["onnx", "openvino", "litert"], "max_drop": a.max_drop, "calibration": 300}}]})
    try:
        rows = run(ccfg)["steps"][0]["rows"]
    except CompressError as exc:
        print(f"compress: {exc}")
        rows = exc.rows
    print(f"\nINT8 (compress, {time.perf_counter() - t2:.0f}s): per runtime, vs its own FP32 artifact on the same {v['n']} mosaics")
    floats = {r["backend"]: r for r in rows if r["precision"] == "fp32"}
    summary = {"val": {"map": v["map"], "micro_f1": v["micro_f1"], "macro_f1": v["macro_f1"], "n": v["n"]}, "runtimes": {}}
    for r in rows:
        if r["precision"] != "int8" or not r.get("final"):
            continue
        f = floats[r["backend"]]
        lo, hi = r.get("drop_interval") or (float("nan"), float("nan"))
        print(f"  {r['backend']:9s} FP32 mAP {f['val_map']:.4f}  INT8 mAP {r['val_map']:.4f}  drop {r['drop_pts'] / 100:+.4f} "
              f"[95% {lo / 100:+.4f}, {hi / 100:+.4f}]  {'within' if r['within_budget'] else 'OVER'} {a.max_drop / 100:.3f}  "
              f"float={r['keep_float'] or 'none'}  thresholds refit (max change {r.get('thresholds', {}).get('max_change', float('nan')):.3f})")
        summary["runtimes"][r["backend"]] = {k: r.get(k) for k in ("val_map", "drop_pts", "drop_interval", "within_budget",
                                                                     "keep_float", "thresholds")} | {"fp32_map": f["val_map"]}
    try:
        import executorch  # noqa: F401
    except ImportError:
        print("  executorch: not installed (pip install 'edgecls[executorch]')")
    else:
        import edgecls

        pte = edgecls.export(result.model, result.spec, out / "export" / "model.pte").path
        val = load_multilabel(data / "val", classes=result.spec.labels)
        est, lo, hi, _ = map_of(pte, val)
        print(f"  executorch FP32 mAP {est:.4f} [95% {lo:.4f}, {hi:.4f}]")
        summary["runtimes"]["executorch_fp32"] = {"val_map": est, "interval": [lo, hi]}
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    print(f"total {(time.perf_counter() - t0) / 60:.1f} min; summary: {out / 'summary.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
