"""`edgecls deploy --time-limit` on real photo folders: does the run end on time, and what does the time buy?

    # CIFAR-10, 90 minutes (45,000 training / 5,000 validation images, INT8 on every CPU runtime within 1 point):
    flock /tmp/edgecls-cpu.lock nice -n 5 .venv/bin/python benchmarks/deploy_budget.py cifar10 --limits 90m
    # the budget sweep (three budgets, one after another, each its own deploy folder):
    flock /tmp/edgecls-cpu.lock nice -n 5 .venv/bin/python benchmarks/deploy_budget.py cifar10 --limits 10m 30m 90m
    # hymenoptera, 20 minutes (its own train/ and val/ split: 245 / 153 photos):
    flock /tmp/edgecls-cpu.lock nice -n 5 .venv/bin/python benchmarks/deploy_budget.py hymenoptera --limits 20m

Data: ../shared/data (CIFAR-10's 50,000 training JPEGs, extracted into .data/cifar10, a stratified 10% = 5,000 held
out for validation, seed 0; the hymenoptera folder with its own val/). Each budget is one fresh `edgecls deploy` run
into .data/deploy_budget/<data>-<limit> (deleted first, so nothing is reused). Prints per budget: the wall time
against the limit, the plan (backbone, input side, frozen stages, images, epochs, seeds) and its predicted time, the
float model's validation top-1 with n and its Wilson 95% interval, the seeds' spread, each runtime's FP32 and INT8
top-1 and the INT8 paired test against its FP32; then, for consecutive budgets, the paired test of their float models
on the same validation images (does more time buy accuracy?). The load average is printed before and after: run it
alone, under the lock.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def data_folder(name: str) -> Path:
    from tools import shared_data

    if name == "cifar10":
        return shared_data.extract_cifar10(shared_data.cache_dir() / "cifar10")
    return shared_data.extract_hymenoptera(shared_data.cache_dir())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data", choices=["cifar10", "hymenoptera"])
    ap.add_argument("--limits", nargs="+", default=["90m"], help="time limits, one deploy run each")
    ap.add_argument("--targets", nargs="+", default=["onnxruntime", "openvino", "litert"])
    ap.add_argument("--arch", default="efficientnet_lite0", help="a backbone, or auto (compare the candidates)")
    ap.add_argument("--budget-ms", type=float, default=None)
    ap.add_argument("--max-drop", type=float, default=1.0)
    ap.add_argument("--seeds", type=int, default=None)
    ap.add_argument("--out", type=Path, default=REPO / ".data" / "deploy_budget")
    ap.add_argument("--keep", action="store_true", help="reuse an existing deploy folder (not a timing)")
    a = ap.parse_args(argv)

    import edgecls
    from edgecls import stats
    from edgecls.configfile import format_duration, parse_duration

    data = data_folder(a.data)
    rows = []
    for limit in a.limits:
        out = a.out / f"{a.data}-{limit}-{a.arch}"
        if out.exists() and not a.keep:
            shutil.rmtree(out)
        load0 = os.getloadavg()
        t0 = time.perf_counter()
        settings = dict(targets=a.targets, max_drop=a.max_drop, time_limit=limit, arch=a.arch, out=str(out),
                        val_fraction=0.1, threads=os.cpu_count(), budget_ms=a.budget_ms, seeds=a.seeds)
        r = edgecls.deploy(data, **settings)
        wall = time.perf_counter() - t0
        load1 = os.getloadavg()
        m = r.stages["train"].result
        y = np.load(r.stages["train"].folder / "val_logits.npy").argmax(1)
        truth = np.asarray([row["label"] for row in json.loads((out / "data" / "data.json").read_text())["val"]])
        acc = stats.accuracy(y == truth)
        lim = parse_duration(limit)
        row = {"limit": limit, "limit_s": lim, "wall_s": wall, "over": wall / lim - 1, "val": acc.as_dict(),
               "plan": m.get("plan"), "time": m.get("time"), "seed_spread": m.get("seed_spread"),
               "arch": m.get("arch"), "load_before": load0, "load_after": load1, "correct": (y == truth).tolist(),
               "artifacts": {}}
        for t in a.targets:
            f, q = r.stages.get(f"fp32-{t}"), r.stages.get(f"int8-{t}")
            if f is None:
                row["artifacts"][t] = {"skipped": r.skipped.get(t)}
                continue
            fr = f.result
            cell = {"fp32": [fr["k"], fr["n"], fr["val_interval"]]}
            if q is not None and "artifact" in q.result:
                qr = q.result
                p = stats.paired(np.asarray(fr["val_pred"]) == truth, np.asarray(qr["val_pred"]) == truth)
                cell.update(int8=[qr["k"], qr["n"], qr["val_interval"]], within=qr["within_budget"], paired=p.summary(),
                            method=qr.get("method"))
            row["artifacts"][t] = cell
        rows.append(row)
        plan = m.get("plan") or {}
        print(f"\n=== {a.data}, --time-limit {limit} ({edgecls.__version__}, {os.cpu_count()} cores, load "
              f"{load0[0]:.2f} before, {load1[0]:.2f} after)")
        print(f"wall {format_duration(wall)} = {wall / lim:.1%} of the limit"
              + (f"  (predicted total {format_duration(plan['predicted']['total'])} at planning)" if plan else ""))
        for w in plan.get("why", []):
            print(f"  plan: {w}")
        print(f"float model ({m.get('arch')}): val top-1 {acc.pct()} (n={acc.n})")
        for n, sp in (m.get("seed_spread") or {}).items():
            if sp["n"] > 1:
                print(f"  seeds of {n}: mean {sp['mean']:.4f} [{sp['lo']:.4f}, {sp['hi']:.4f}] (n={sp['n']}), "
                      f"min {sp['min']:.4f} max {sp['max']:.4f}")
        for t, cell in row["artifacts"].items():
            if "skipped" in cell:
                print(f"  {t:12s} skipped: {cell['skipped']}")
                continue
            k, n, (lo, hi) = cell["fp32"]
            line = f"  {t:12s} FP32 {k / n:.2%} [{lo:.2%}, {hi:.2%}]"
            if "int8" in cell:
                k8, n8, (lo8, hi8) = cell["int8"]
                line += (f"  INT8 {k8 / n8:.2%} [{lo8:.2%}, {hi8:.2%}] within {a.max_drop:g} pts: {cell['within']} "
                         f"({cell['paired']})")
            print(line)
        for more in (m.get("time") or {}).get("more_time", []):
            print(f"  more time: {more}")
        print(f"  report: {r.report}")
    if len(rows) > 1:
        print("\nlimit   wall       of limit  val top-1 [95%]            plan")
        for row in rows:
            v = row["val"]
            pl = row["plan"] or {}
            what = "; ".join(r["label"] for r in pl.get("runs", []))
            print(f"{row['limit']:7s} {format_duration(row['wall_s']):10s} {row['wall_s'] / row['limit_s']:7.1%}  "
                  f"{v['value']:.2%} [{v['lo']:.2%}, {v['hi']:.2%}]  {what}, {pl.get('n_train')} images, "
                  f"{pl.get('epochs')} ep x {pl.get('seeds')} seeds")
        for lo_row, hi_row in zip(rows, rows[1:]):
            p = stats.paired(np.asarray(lo_row["correct"]), np.asarray(hi_row["correct"]))
            print(f"{hi_row['limit']} vs {lo_row['limit']}: {p.summary()}")
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / f"{a.data}-{'-'.join(a.limits)}-{a.arch}.json").write_text(json.dumps(rows, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
