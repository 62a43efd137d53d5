"""The latency gate of `--arch auto`: does each candidate backbone's INT8 artifact fit --budget-ms on the targets?

Latency depends on the graph, not on what its weights learnt, so it is measured before training: each candidate,
with its ImageNet weights and the data's number of classes, at its own input side or the configured one (the
largest the planner may choose: a smaller one is only faster), exported for each target and built to INT8 the way the target stage builds
it (calibrated on a few training images: the scales do not change the speed), then timed end to end (decode
excluded) by edgecls-bench as the pick later times the trained artifacts. A candidate meets the budget when its INT8
artifact does on at least one target. Without --budget-ms the first target is timed only, so the report can show
each candidate's latency beside its accuracy. The trained pick's own artifacts are benchmarked again after training.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

GATE_RUNS, GATE_WARMUP, GATE_CALIBRATION = 30, 5, 16


def measure_latency(arch: str, classes, calib_px: list, targets: list[str], *, threads: int, input_size: int | None = None,
                    say=lambda s: None) -> dict:
    """{target: {"ms": e2e p50, "precision": "int8"} or {"error": why}} for `arch` with a fresh `classes` head."""
    from ..bench.runner import BenchOptions, bench_artifact
    from ..compress.targets import TARGETS, Int8Job
    from ..errors import EdgeclsError
    from ..models import create_model
    from ..runtime import preprocess as _pre
    from ..runtime.artifacts import read_sidecar

    model, spec = create_model(arch, labels=classes, pretrained=True, input_size=input_size)
    out = {}
    with tempfile.TemporaryDirectory(prefix="edgecls-gate-") as tmp:
        for name in targets:
            t = TARGETS[name]
            why = t.unavailable()
            if why:
                out[name] = {"error": why}
                continue
            t0 = time.perf_counter()
            try:
                fpath = Path(tmp) / f"{arch}-{name}-fp32{t.suffix}"
                t.export_float(model, spec, fpath, None)
                fspec = read_sidecar(fpath)
                calib = np.concatenate([_pre.to_input(_pre.fast_pixels(px, "RGB", spec), fspec) for px in calib_px])
                qpath = Path(tmp) / f"{arch}-{name}-int8{t.suffix}"
                t.build_int8(Int8Job(model, spec, fpath, fspec, calib, qpath))
                rows = bench_artifact(qpath, BenchOptions(warmup=GATE_WARMUP, runs=GATE_RUNS, threads=[threads],
                                                          cold_start=False, power=False))
                e2e = rows[0].get("end_to_end_ms") or rows[0]["model_ms"]
                out[name] = {"ms": float(e2e["p50"]), "precision": "int8", "seconds": time.perf_counter() - t0}
            except (EdgeclsError, RuntimeError, ValueError) as exc:
                out[name] = {"error": f"{type(exc).__name__}: {str(exc)[:200]}"}
            say(f"  {arch} INT8 on {name}: " + (f"{out[name]['ms']:.2f} ms end to end" if "ms" in out[name] else out[name]["error"]))
    return out


def gate(archs: list[str], classes, calib_px: list, targets: list[str], budget_ms: float | None, *, threads: int,
         input_size: int | None = None, say=lambda s: None) -> dict:
    """{arch: {"latency": {target: ...}, "best_ms", "best_target", "eligible", "note"}}: the budget check of each
    candidate (without a budget every candidate is eligible and only the first target is timed)."""
    timed = targets if budget_ms is not None else targets[:1]
    res = {}
    for a in archs:
        lat = measure_latency(a, classes, calib_px[:GATE_CALIBRATION], timed, threads=threads, input_size=input_size, say=say)
        ok = {t: v["ms"] for t, v in lat.items() if "ms" in v}
        best_t = min(ok, key=ok.get) if ok else None
        best = ok.get(best_t) if best_t else None
        eligible = budget_ms is None or (best is not None and best <= budget_ms)
        note = ("no budget" if budget_ms is None else
                f"INT8 {best:.2f} ms on {best_t} {'within' if eligible else 'over'} the {budget_ms:g} ms budget"
                if best is not None else "no INT8 artifact could be timed")
        res[a] = {"latency": lat, "best_ms": best, "best_target": best_t, "eligible": eligible, "note": note}
    return res


__all__ = ["gate", "measure_latency"]
