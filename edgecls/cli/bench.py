"""`edgecls-bench MODEL [MODEL ...]`: latency, cold start, throughput and accuracy of deployable artifacts."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import BackendUnavailableError, ConfigError, EdgeclsError, ModelFileError
from ..runtime.runtimes import artifact_suffixes
from .render import HelpFormatter

SUFFIXES = artifact_suffixes()  # the runtime table's suffixes (.engine/.trt/.plan included)


def parse_cpus(text: str) -> list[int]:
    """taskset -c syntax: "0-3", "4,6", "0-1,4"."""
    cpus: set[int] = set()
    try:
        for part in text.split(","):
            lo, dash, hi = part.strip().partition("-")
            a, b = int(lo), int(hi if dash else lo)
            if a < 0 or b < a:
                raise ValueError  # int() raises the same for a non-number: one message for both
            cpus.update(range(a, b + 1))
    except ValueError:
        raise ConfigError(f"--cpus {text!r}: give CPU ids like 0-3 or 4,6 (taskset -c syntax)") from None
    return sorted(cpus)


def pin(cpus: list[int]) -> None:
    """Pin this process; the runtimes' worker threads and the cold-start children inherit the CPU set."""
    import os

    if not hasattr(os, "sched_setaffinity"):
        raise ConfigError("--cpus needs Linux (sched_setaffinity); on this OS pin with the system's own tool")
    allowed = os.sched_getaffinity(0)
    if not set(cpus) <= allowed:
        raise ConfigError(f"--cpus {cpus}: this process may only run on CPUs {sorted(allowed)}")
    os.sched_setaffinity(0, cpus)


def collect(paths: list[str]) -> list[Path]:
    """The artifacts named or found in the folders named, each once, in the order given."""
    out: dict[Path, Path] = {}
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.suffix.lower() in SUFFIXES and not f.name.startswith("."))
        elif p.exists():
            found = [p]
        else:
            raise ModelFileError(f"no such model or folder: {p}")
        for f in found:
            out.setdefault(f.resolve(), f)
    if not out:
        raise ModelFileError(f"no artifacts ({', '.join(SUFFIXES)}) in {', '.join(paths)}")
    return list(out.values())


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="edgecls-bench", description=__doc__, formatter_class=HelpFormatter)
    add_arguments(ap)
    return ap


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("models", nargs="*", help=f"artifacts ({'/'.join(SUFFIXES)}) or folders of them")
    ap.add_argument("--runs", type=int, default=200, help="timed runs per measurement")
    ap.add_argument("--duration", type=float, help="seconds per measurement instead of a run count")
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--batch", type=int, nargs="+", default=[1], help="batch sizes, e.g. --batch 1 8")
    ap.add_argument("--threads", type=int, nargs="+", default=[0], help="thread counts; 0 = runtime default")
    ap.add_argument("--cpus", help="pin to these CPUs (taskset -c syntax, e.g. 4-7 for a big cluster); recorded in the result")
    ap.add_argument("--no-e2e", action="store_true", help="skip end-to-end timing from a 1080p frame")
    ap.add_argument("--no-cold", action="store_true", help="skip the fresh-process cold-start measurement")
    ap.add_argument("--no-power", action="store_true", help="on a Jetson, skip the VDD_IN power / energy-per-inference "
                    "measurement (tegrastats or jtop; a 2 s idle baseline and a 3 s busy window per row)")
    ap.add_argument("--cache-dir", help="OpenVINO compiled-model cache: cold start is then a start that finds it filled "
                    "(the filling start is reported as cache_fill_ms); other runtimes ignore it")
    ap.add_argument("--accuracy", help="'fashion-mnist' or an ImageFolder whose class names match the model's labels; "
                    "for a multi-label model, a folder with a labels.csv/labels.json manifest (mAP column)")
    ap.add_argument("--accuracy-limit", type=int, default=1000, help="images of the labelled set (or reference) check")
    ap.add_argument("--reference", help="an artifact (e.g. the FP32 one) to report each model's top-1 agreement with, on "
                    "the --accuracy images or, without them, crops of the bundled photos: fidelity without labels")
    ap.add_argument("-o", "--out-dir", default="bench_out", help="where bench.json/.csv/.md/.html go")
    ap.add_argument("--budget-ms", type=float, help="pick the most accurate artifact under this end-to-end p50")
    ap.add_argument("--compare", nargs=2, metavar=("A.json", "B.json"), help="ratios B/A between two runs")


def _load(path: str) -> dict:
    from ..report import bench as report

    try:
        return report.load_result(path)
    except EdgeclsError:
        raise
    except ValueError as exc:  # report.bench names a file that is not a bench result with a bare ValueError
        raise ConfigError(f"--compare: {exc}") from exc


def run(a) -> int:
    from rich.markup import escape

    from ..bench.fingerprint import fingerprint
    from ..bench.runner import BenchOptions
    from ..report import bench as report
    from .render import console

    con = console(width=170)  # logs and CI: do not squeeze the table to 80 columns
    if a.compare:
        ra, rb = _load(a.compare[0]), _load(a.compare[1])
        from rich.table import Table

        t = Table(title=escape(f"B/A: {a.compare[1]} vs {a.compare[0]}"))
        for c in ("model", "backend", "prec", "batch", "threads", "p50 A", "p50 B", "p50 B/A", "p99 B/A", "e2e B/A", "cold B/A"):
            t.add_column(c)
        rows = report.compare(ra, rb)
        for r in rows:
            f = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
            t.add_row(escape(r["model"]), r["backend"], r["precision"], str(r["batch"]), str(r["threads"]), f(r["p50_ms_a"]),
                      f(r["p50_ms_b"]), f(r["p50_ratio"]), f(r["p99_ratio"]), f(r["e2e_p50_ratio"]), f(r["cold_load_plus_first_ratio"]))
        con.print(t)
        if not rows:
            con.print("no rows in common (matched on model, backend, precision, batch, threads)")
        return 0
    if not a.models:
        raise ConfigError("give at least one model or folder (or --compare A.json B.json)")
    if a.duration is not None and a.duration <= 0 or a.warmup < 0 or a.accuracy_limit < 1:
        raise ConfigError("--duration must be > 0 seconds, --warmup >= 0 and --accuracy-limit >= 1")
    a.batch, a.threads = list(dict.fromkeys(a.batch)), list(dict.fromkeys(a.threads))  # each measured once
    opts = BenchOptions(warmup=a.warmup, runs=a.runs, duration_s=a.duration, batch_sizes=a.batch, threads=a.threads,
                        end_to_end=not a.no_e2e, cold_start=not a.no_cold, accuracy=a.accuracy, accuracy_limit=a.accuracy_limit,
                        reference=a.reference, cache_dir=a.cache_dir, power=not a.no_power)
    if any(b < 1 for b in a.batch) or any(t < 0 for t in a.threads) or a.runs < 2:
        raise ConfigError("batch sizes must be >= 1, thread counts >= 0 and --runs >= 2")
    if a.reference:  # open it once here: a reference that cannot load is the run's error, not every artifact's
        if not Path(a.reference).is_file():
            raise ModelFileError(f"--reference {a.reference}: no such artifact")
        from ..runtime.predictor import Predictor

        try:
            Predictor(a.reference).close()
        except EdgeclsError as exc:
            raise ConfigError(f"--reference {a.reference} cannot be loaded here: {exc}") from None
    if a.accuracy and a.accuracy != "fashion-mnist" and not Path(a.accuracy).is_dir():
        raise ConfigError(f"--accuracy {a.accuracy}: not 'fashion-mnist' and no such ImageFolder")
    models = collect(a.models)
    if a.cpus:
        opts.cpus = parse_cpus(a.cpus)
        pin(opts.cpus)
    rows = _measure(models, opts, con)
    result = report.make_result(rows, fingerprint(a.threads), opts.as_dict())
    pick = None
    if a.budget_ms is not None:
        best, why = report.pick_under_budget(result, a.budget_ms)
        pick = result["budget_pick"] = {"budget_ms": a.budget_ms, "model": best["model"] if best else None, "why": why}
    try:
        report.validate(result)
    except ModuleNotFoundError:
        con.print("(jsonschema not installed: bench.json written without the schema check)")
    files = report.write_reports(result, Path(a.out_dir))
    report.print_table(result, con)
    con.print("wrote " + escape(", ".join(str(p) for p in files.values())))
    if pick:
        con.print(("[green]pick[/] " if pick["model"] else "[red]no pick[/]: ") + escape(pick["why"]))
    return 0


def _measure(models: list[Path], opts, con) -> list[dict]:
    """Every artifact with a progress bar (one step per batch size x thread count); an artifact that cannot be
    measured here (its runtime is not installed, it is not an edgecls model) is skipped with the reason, so a folder
    holding a TensorRT engine or a training checkpoint still benches on a CPU box."""
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from ..bench.runner import bench_artifact

    rows, skipped = [], []
    cols = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*cols, console=con, transient=True) as bar:
        task = bar.add_task("benchmarking", total=len(models) * len(opts.threads) * len(opts.batch_sizes))
        for m in models:
            try:
                rows += bench_artifact(m, opts, progress=lambda s: bar.update(task, description=escape(s)),
                                       advance=lambda: bar.advance(task))
            except (EdgeclsError, OSError) as exc:  # a checkpoint in the folder, a corrupt file, a missing runtime
                skipped.append(m)
                bar.advance(task, len(opts.threads) * len(opts.batch_sizes))
                con.print(f"[yellow]skipped[/] {escape(str(m))}: {escape(str(exc))}", highlight=False)
    if not rows:
        raise BackendUnavailableError(f"no artifact could be benchmarked here; skipped {', '.join(map(str, skipped))}")
    return rows


def main(argv: list[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    try:
        return run(a)
    except EdgeclsError as exc:  # anything else is a bug: its traceback
        print(f"edgecls-bench: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
