"""`edgecls deploy` on the hymenoptera ants/bees photos (../shared/data/hymenoptera.tar), the whole journey timed.

    nice -n 19 .venv/bin/python benchmarks/deploy_hymenoptera.py [-o .data/deploy_hymenoptera] [--budget-ms MS]

Prints the figures issue 13 asks for: FP32 validation top-1 with n and its 95% interval; per runtime, INT8 top-1 and
the exact McNemar p against that runtime's FP32 artifact (not significantly below: p > 0.05, or INT8 not lower);
the wall time and the CPU time of the run (this process and its children: on a shared machine the CPU time, divided
by the cores, is what the run would take alone) and the training throughput; the pick. The report is in the output
folder. Rerunning reuses every finished stage: delete the folder (or use a new -o) for a full timing.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-o", "--out", default=str(REPO / ".data" / "deploy_hymenoptera"))
    ap.add_argument("--targets", nargs="+", default=["onnxruntime", "openvino", "litert", "tensorrt"])
    ap.add_argument("--max-drop", type=float, default=1.0)
    ap.add_argument("--budget-ms", type=float)
    ap.add_argument("--bench-runs", type=int, default=100)
    ap.add_argument("--train", nargs="*", default=[], help="TrainConfig overrides KEY=VALUE (default: the chosen recipe)")
    a = ap.parse_args()

    import yaml

    import edgecls
    from tools.shared_data import cache_dir, extract_hymenoptera

    data = extract_hymenoptera(cache_dir())
    train = {k: yaml.safe_load(v) for k, v in (x.split("=", 1) for x in a.train)}
    t0 = time.perf_counter()
    r = edgecls.deploy(data, targets=a.targets, max_drop=a.max_drop, budget_ms=a.budget_ms, out=a.out,
                       bench_runs=a.bench_runs, train=train, threads=os.cpu_count())
    wall = time.perf_counter() - t0
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime

    rep = json.loads((Path(a.out) / "report.json").read_text())["sections"]
    f = rep["summary"]["float_val_top1"]
    print(f"\nhymenoptera, {edgecls.__version__}, {os.cpu_count()} cores")
    print(f"FP32 (PyTorch) val top-1: {100 * f['value']:.2f}% [{100 * f['lo']:.1f}, {100 * f['hi']:.1f}] ({f['k']}/{f['n']})")
    for t, st in ((t, r.stages.get(f"fp32-{t}")) for t in a.targets):
        if st is None:
            print(f"{t:12s} skipped: {r.skipped.get(t, '?')}")
            continue
        q = r.stages[f"int8-{t}"].result
        d = rep["int8"].get(t, {})
        p = d.get("paired", {})
        fr = st.result
        print(f"{t:12s} FP32 {100 * fr['val_top1']:.2f}% ({fr['k']}/{fr['n']})  INT8 "
              + (f"{100 * q['val_top1']:.2f}% ({q['k']}/{q['n']}), lost {p.get('ref_only')} gained {p.get('other_only')}, "
                 f"McNemar p={p.get('p_value', float('nan')):.3g}, within {a.max_drop:g} pts: {d.get('within')}"
                 if "artifact" in q else f"not built: {q.get('error')}"))
    m = r.stages["train"].result
    stage_cpu = sum(s.cpu_seconds for s in r.stages.values() if not s.reused)
    print(f"training: {m['epochs_run']} epochs, best {m['summary']['best_epoch']}, {m['train_images_per_s']:.1f} img/s")
    print(f"run: {wall / 60:.1f} min wall, {cpu / 60:.1f} min CPU (process + children; stages {stage_cpu / 60:.1f} min) "
          f"-> about {cpu / 60 / (os.cpu_count() or 1):.1f} min on {os.cpu_count()} idle cores"
          + ("" if not any(s.reused for s in r.stages.values()) else "  [some stages were reused: not a full run]"))
    print(f"pick: {r.picks['overall']['why'] if r.picks.get('overall') else 'none'}")
    print(f"report: {r.report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
