"""The deploy report's closing sections: the commands that reproduce the run (whole, training alone, the latency
table on a device) and what each stage cost."""

from __future__ import annotations

import shlex
from pathlib import Path

from ..document import Section


def _quote(v) -> str:
    """A path as a shell word: a folder with a space in it must still paste into a shell."""
    return shlex.quote(str(v))


def reproduce_section(ctx: dict) -> Section:
    cfg = ctx["config"]
    out = ctx["out"]
    s = Section("reproduce", "Reproduce")
    cmd = ["edgecls", "deploy", _quote(cfg["data"])]
    if cfg["val_dir"]:
        cmd += ["--val-dir", _quote(cfg["val_dir"])]
    cmd += ["--targets", *cfg["targets"], "--max-drop", f"{cfg['max_drop']:g}"]
    if cfg["budget_ms"]:
        cmd += ["--budget-ms", f"{cfg['budget_ms']:g}"]
    cmd += ["--arch", cfg["arch"]]
    if cfg["recipe"]:
        cmd += ["--recipe", _quote(cfg["recipe"])]
    for k, v in cfg["train"].items():
        cmd += ["--train", f"{k}={v}"]
    for k, flag in (("calibration", "--calibration"), ("bench_runs", "--bench-runs"), ("seed", "--seed"),
                    ("val_fraction", "--val-fraction"), ("verify_images", "--verify-images")):
        if cfg[k] != ctx["config_defaults"][k]:
            cmd += [flag, str(cfg[k])]
    if cfg["strict"]:
        cmd.append("--strict")
    if not cfg["dedup"]:
        cmd.append("--no-dedup")
    if not cfg["bench_cold"]:
        cmd.append("--no-bench-cold")
    if cfg["bench_threads"] != [0]:
        cmd += ["--bench-threads", *map(str, cfg["bench_threads"])]
    cmd += ["-o", _quote(out)]
    arts = [f"{out}/{t}/{p}/{st.result['artifact']}" for t, per in ctx["artifacts"].items() for p, st in per.items()
            if "artifact" in st.result]
    s.p("The whole run (rerunning it in the same folder reuses every finished stage):")
    s.code(" ".join(cmd))
    s.p("Training alone, with the recipe this run chose:")
    s.code(f"edgecls train --config {out}/recipe/recipe.yaml --out-dir runs/retrain")
    if arts:
        s.p("The latency table alone (or on the device, with these files copied there):")
        s.code("edgecls-bench " + " ".join(arts) + f" --runs {cfg['bench_runs']}"
               + (f" --budget-ms {cfg['budget_ms']:g}" if cfg["budget_ms"] else "") + " -o bench_again")
    s.data = {"deploy": " ".join(cmd)}
    return s


def run_section(ctx: dict) -> Section:
    s = Section("run", "Run")
    rows = []
    for name, st in ctx["stages"].items():
        rows.append([name, "reused" if st.reused else "ran", f"{st.seconds:.0f}", f"{st.cpu_seconds:.0f}",
                     str(st.folder.relative_to(Path(ctx["out"])))])
    s.table(["stage", "this run", "seconds (when made)", "CPU seconds", "folder"], rows)
    m = ctx["model"].result
    s.p(f"This run: {ctx['wall_seconds']:.0f} s wall, {ctx['cpu_seconds']:.0f} s CPU in this process (benchmark "
        f"children and reused stages not counted). Training: {m['train_images_per_s']:.1f} images/s.")
    s.data = {"stages": {n: {"reused": st.reused, "seconds": st.seconds, "cpu_seconds": st.cpu_seconds} for n, st in ctx["stages"].items()},
              "wall_seconds": ctx["wall_seconds"], "cpu_seconds": ctx["cpu_seconds"]}
    return s


__all__ = ["reproduce_section", "run_section"]
