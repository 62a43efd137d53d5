"""Runs inside the arm64 root (tools/arm64_check.sh), with edgecls's device install only (no torch): every artifact of
a case folder made by `tools/arm64_artifacts.py build` on x86, on the x86 input tensors and on the raw photos, then
`edgecls check`, `edgecls info` and `edgecls-bench` on them. It records what it sees; the judging is done on the host
(`tools/arm64_artifacts.py judge`), so this file decides nothing.

    python arm64_probe.py CASE RESULTS.json [--cpu NAME] [--bench-runs 3]
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def _cli(*args: str, timeout: float = 3600) -> dict:
    t = time.perf_counter()
    r = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout)
    return {"rc": r.returncode, "stdout": r.stdout[-20000:], "stderr": r.stderr[-4000:],
            "seconds": round(time.perf_counter() - t, 1)}


def probe(case: Path, art: dict, threads: int) -> dict:
    from edgecls import Predictor

    path = case / art["file"]
    x86_inputs = np.load(case / art["inputs"])
    out: dict = {"name": art["name"]}
    t = time.perf_counter()
    with Predictor(path, threads=threads) as pred:
        out["load_seconds"] = round(time.perf_counter() - t, 1)
        out["backend"] = pred.backend_name
        t = time.perf_counter()
        same = np.concatenate([pred.infer(x86_inputs[i : i + 1]) for i in range(len(x86_inputs))])
        out["same_tensor_seconds"] = round(time.perf_counter() - t, 1)
        np.save(case / f"arm_{art['name']}_same.npy", same)
        arm_inputs, raw = [], []
        for photo in art["photos"]:
            x = pred.preprocess(str(case / photo), color=None)
            arm_inputs.append(x)
            raw.append(pred.infer(x))
        np.save(case / f"arm_{art['name']}_inputs.npy", np.concatenate(arm_inputs))
        np.save(case / f"arm_{art['name']}_raw.npy", np.concatenate(raw))
    out["check"] = _cli("edgecls", "check", str(path), "--json", "--threads", str(threads))
    out["info"] = _cli("edgecls", "info", str(path))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("case", type=Path)
    ap.add_argument("results", type=Path)
    ap.add_argument("--cpu", default="")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--bench-runs", type=int, default=3)
    a = ap.parse_args()
    t0 = time.perf_counter()
    manifest = json.loads((a.case / "manifest.json").read_text())
    from edgecls.runtime import cpuinfo

    res = {"machine": platform.machine(), "python": platform.python_version(), "qemu_cpu": a.cpu,
           "cpu": cpuinfo.describe(), "artifacts": []}
    try:
        import torch  # noqa: F401

        res["torch_installed"] = True
    except ImportError:
        res["torch_installed"] = False
    for art in manifest["artifacts"]:
        t = time.perf_counter()
        try:
            row = probe(a.case, art, a.threads)
        except Exception as exc:  # noqa: BLE001 - recorded, judged on the host
            row = {"name": art["name"], "error": f"{type(exc).__name__}: {str(exc)[:1000]}"}
        row["seconds"] = round(time.perf_counter() - t, 1)
        print(f"{art['name']}: {row['seconds']} s" + (f" ERROR {row['error']}" if "error" in row else ""), flush=True)
        res["artifacts"].append(row)
    bench_dir = a.case / f"bench-{a.cpu or 'default'}"
    files = [str(a.case / art["file"]) for art in manifest["artifacts"]]
    res["bench"] = _cli("edgecls-bench", *files, "--runs", str(a.bench_runs), "--warmup", "1", "--threads", str(a.threads),
                        "--no-cold", "-o", str(bench_dir))
    bench_json = bench_dir / "bench.json"
    res["bench"]["result"] = json.loads(bench_json.read_text()) if bench_json.is_file() else None
    res["seconds"] = round(time.perf_counter() - t0, 1)
    a.results.write_text(json.dumps(res, indent=1))
    print(f"{a.results}: {res['seconds']} s", flush=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
