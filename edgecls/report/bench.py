"""Bench results as files: JSON (stable schema, schema.json beside this file), CSV, and the report as Markdown and
self-contained HTML with plots, rendered through the shared document; plus the terminal table, run-to-run
comparison and the latency-budget pick."""

from __future__ import annotations

import csv
import datetime as _dt
import io
import json
from pathlib import Path

from ..errors import InputError
from ..quiet import terminal
from ..runtime.artifacts import atomic_write_bytes
from . import document
from .document import Section
from .format import interval

SCHEMA = "edgecls.bench/1"
SCHEMA_FILE = Path(__file__).with_name("schema.json")


def make_result(rows: list[dict], device: dict, options: dict) -> dict:
    result = {"schema": SCHEMA, "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
              "device": device, "options": options, "results": rows}
    result["int8_vs_fp32"] = int8_speedups(result)
    return result


def int8_speedups(result: dict) -> list[dict]:
    """Each INT8 row beside the FP32 row of the same runtime, model (arch and input), batch and threads: FP32 p50 /
    INT8 p50, model-only and end-to-end. INT8 is not automatically faster (XNNPACK's int8 kernels on x86 without
    VNNI, ARMv8.0 without dot product, float islands): `faster` says whether it is on this device. A group holding
    two FP32 rows (two different models of one arch) pairs nothing: which FP32 an INT8 came from is not known."""
    groups: dict[tuple, dict[str, list]] = {}
    for r in result["results"]:
        key = (r["backend"], r.get("arch"), r.get("input"), r["batch"], r["threads"])
        groups.setdefault(key, {}).setdefault("int8" if "int8" in str(r["precision"]) else r["precision"], []).append(r)
    out = []
    for (backend, _, _, batch, threads), g in groups.items():
        if len(g.get("fp32", [])) != 1:
            continue
        f = g["fp32"][0]
        for q in g.get("int8", []):
            fe, qe = (f.get("end_to_end_ms") or {}).get("p50"), (q.get("end_to_end_ms") or {}).get("p50")
            ratio = f["model_ms"]["p50"] / q["model_ms"]["p50"]
            out.append({"backend": backend, "batch": batch, "threads": threads, "fp32_model": f["model"], "int8_model": q["model"],
                        "int8_precision": q["precision"], "fp32_p50_ms": f["model_ms"]["p50"], "int8_p50_ms": q["model_ms"]["p50"],
                        "speedup": round(ratio, 3), "e2e_speedup": round(fe / qe, 3) if fe and qe else None,
                        "faster": ratio > 1.0})
    return out


def speedup_text(s: dict) -> str:
    """'onnxruntime INT8 (m_int8.onnx) 1.62x faster than FP32 (m.onnx)', or says it is not faster here."""
    head = f"{s['backend']} INT8 ({s['int8_model']}) vs FP32 ({s['fp32_model']}), batch {s['batch']}: {s['speedup']:.2f}x"
    if not s["faster"]:
        return head + " - INT8 is NOT faster than FP32 on this device: ship FP32 here unless size matters"
    return head + " faster"


def validate(result: dict) -> None:
    """Raise ValueError naming the first field that breaks the schema (needs jsonschema: the `bench` extra)."""
    import jsonschema

    schema = json.loads(SCHEMA_FILE.read_text())
    exc = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema).iter_errors(result))
    if exc is not None:  # the deepest, most specific error: "results/0/accuracy/top1: 'ninety' is not a number"
        where = "/".join(map(str, exc.absolute_path)) or "(top level)"
        raise ValueError(f"bench result does not match {SCHEMA_FILE.name} at {where}: {exc.message[:200]}")
    for i, r in enumerate(result["results"]):  # what JSON Schema cannot say: the stats count the samples kept
        if r["model_ms"]["n"] != len(r["model_samples_ms"]):
            raise ValueError(f"bench result row {i}: model_ms.n={r['model_ms']['n']} but {len(r['model_samples_ms'])} samples")


def load_result(path: str | Path) -> dict:
    """A bench.json written by edgecls-bench (InputError when it is unreadable or not one)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read bench result {path}: {exc}") from exc
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise InputError(f"{path} is not an edgecls-bench result (schema {SCHEMA})")
    try:
        validate(data)
    except ModuleNotFoundError:  # a device install without jsonschema: the schema tag above is all we can check
        pass
    except ValueError as exc:
        raise InputError(f"{path}: {exc}") from None
    return data


def _acc(r: dict) -> float | None:
    a = r.get("accuracy") or {}
    return a.get("top1")


FLAT_COLUMNS = ("model", "backend", "precision", "batch", "calls_per_batch", "threads", "size_mb", "p50_ms", "p90_ms", "p99_ms", "mean_ms",
                "std_ms", "min_ms", "max_ms", "runs", "e2e_p50_ms", "e2e_p99_ms", "preprocess_p50_ms", "throughput_ips",
                "cold_load_plus_first_ms", "cold_cache_fill_ms", "peak_rss_mb", "top1", "top1_lo", "top1_hi", "top1_n",
                "map", "map_lo", "map_hi", "agree_top1", "agree_top5", "self_check", "power_w", "energy_mj", "reject", "monitor_overhead_ms")


def flat(r: dict) -> dict:
    m, e, c = r["model_ms"], r.get("end_to_end_ms") or {}, r.get("cold_start") or {}
    return {
        "model": r["model"], "backend": r["backend"], "precision": r["precision"], "batch": r["batch"], "threads": r["threads"],
        "calls_per_batch": r.get("calls_per_batch", 1), "size_mb": r["size_mb"], "p50_ms": m["p50"], "p90_ms": m["p90"], "p99_ms": m["p99"], "mean_ms": m["mean"],
        "std_ms": m["std"], "min_ms": m["min"], "max_ms": m["max"], "runs": m["n"], "e2e_p50_ms": e.get("p50"),
        "e2e_p99_ms": e.get("p99"), "preprocess_p50_ms": r["preprocess_ms"]["p50"], "throughput_ips": r["throughput_ips"],
        "cold_load_plus_first_ms": c.get("load_plus_first_ms"), "cold_cache_fill_ms": c.get("cache_fill_ms"), "peak_rss_mb": c.get("peak_rss_mb"), "top1": _acc(r),
        "agree_top1": (r.get("agreement") or {}).get("top1"), "agree_top5": (r.get("agreement") or {}).get("top5_overlap"),
        "self_check": (r.get("self_check") or {}).get("status"), "power_w": (r.get("power") or {}).get("busy_w"),
        "energy_mj": (r.get("power") or {}).get("energy_mj_per_inference"),
        "reject": f"{r['open_set']['score']} >= {r['open_set']['threshold']:.4g}" if r.get("open_set") else None,
        "monitor_overhead_ms": _monitor_overhead(r),
        **_interval(r),
    }


def _map(r: dict) -> dict:
    a = r.get("accuracy") or {}
    lo, hi = (a.get("interval") or [None, None])[:2] if "map" in a else (None, None)
    return {"map": a.get("map"), "map_lo": lo, "map_hi": hi}


def _monitor_overhead(r: dict) -> float | None:
    """Mean end-to-end time with drift monitoring minus without, same interleaved run (the window's comparison, every
    250 frames, is in the mean; the p50 would hide it)."""
    mon, e2e = r.get("end_to_end_monitored_ms"), r.get("end_to_end_ms")
    return round(mon["mean"] - e2e["mean"], 4) if mon and e2e else None


def _interval(r: dict) -> dict:
    a = r.get("accuracy") or {}
    lo, hi = (a.get("interval") or [None, None])[:2]
    if "top1" not in a:
        lo = hi = None
    return {"top1_lo": lo, "top1_hi": hi, "top1_n": a.get("n") if "top1" in a or "map" in a else None, **_map(r)}


def top1_text(f: dict) -> str:
    """'96.1% [91.7, 98.2] n=153' (the interval is the 95% Wilson interval); a multi-label artifact's
    'mAP 0.842 [0.831, 0.853] n=500' (bootstrap interval)."""
    if f["top1"] is None:
        if f.get("map") is not None:
            lo_hi = f" [{f['map_lo']:.3f}, {f['map_hi']:.3f}]" if f.get("map_lo") is not None else ""
            return f"mAP {f['map']:.3f}{lo_hi} n={f['top1_n']}"
        return "-"
    if f.get("top1_lo") is None:
        return f"{f['top1']:.2%}"
    return f"{interval(f['top1'], f['top1_lo'], f['top1_hi'])} n={f['top1_n']}"


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4f}" if v < 1 and v != 0 else f"{v:.2f}"
    return str(v)


def to_csv(result: dict) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=FLAT_COLUMNS)
    w.writeheader()
    for r in result["results"]:
        w.writerow(flat(r))
    return buf.getvalue()


def print_table(result: dict, console=None) -> None:
    from rich.markup import escape
    from rich.table import Table

    from ..quiet import console as own_console

    emulated = result["device"]["cpu"].get("emulated")
    t = Table(title="edgecls-bench (ms; model-only unless noted)" + (f" - EMULATED: {emulated}" if emulated else ""))
    power = any(r.get("power") and "busy_w" in r["power"] for r in result["results"])
    cols = ("model", "backend", "prec", "b", "thr", "p50", "p90", "p99", "e2e p50", "pre", "img/s", "cold", "MB", "top-1 / mAP",
            "agree", "check") + (("W", "mJ/inf") if power else ())
    for col in cols:
        t.add_column(col, justify="left" if col in ("model", "backend", "prec", "check") else "right")
    for r in result["results"]:
        f = flat(r)
        b = str(f["batch"]) + (f" ({f['calls_per_batch']}x{f['batch'] // f['calls_per_batch']})" if f["calls_per_batch"] > 1 else "")
        t.add_row(f["model"], f["backend"], f["precision"], b, str(f["threads"] or "def"), _fmt(f["p50_ms"]),
                  _fmt(f["p90_ms"]), _fmt(f["p99_ms"]), _fmt(f["e2e_p50_ms"]), _fmt(f["preprocess_p50_ms"]),
                  f"{f['throughput_ips']:.1f}", _fmt(f["cold_load_plus_first_ms"]), f"{f['size_mb']:.1f}",
                  top1_text(f), "-" if f["agree_top1"] is None else f"{f['agree_top1']:.0%}",
                  f["self_check"] or "-", *((_fmt(f["power_w"]), _fmt(f["energy_mj"])) if power else ()))
    con = console or own_console()
    con.print(t)
    for s in result.get("int8_vs_fp32") or int8_speedups(result):
        con.print(escape(speedup_text(s)), style=None if s["faster"] else "yellow", highlight=False)


def pick_under_budget(result: dict, budget_ms: float) -> tuple[dict | None, str]:
    """The most accurate row whose end-to-end p50 fits the budget (fastest breaks ties, or decides when no accuracy);
    model-only p50 when end-to-end was not measured (--no-e2e), and the reason says which."""
    rows = [flat(r) for r in result["results"]]
    e2e = all(f["e2e_p50_ms"] is not None for f in rows)
    metric, what_ms = ("e2e_p50_ms", "end-to-end p50") if e2e else ("p50_ms", "model-only p50 (no end-to-end measured)")
    fits = [f for f in rows if f[metric] <= budget_ms]
    if not fits:
        fastest = min(rows, key=lambda f: f[metric])
        return None, f"nothing fits {budget_ms} ms; the fastest is {fastest['model']} at {fastest[metric]:.2f} ms {what_ms}"
    key = next((k for k in ("top1", "map") if any(f[k] is not None for f in fits)), "agree_top1")
    has_acc = any(f[key] is not None for f in fits)
    best = max(fits, key=lambda f: ((f[key] if f[key] is not None else -1) if has_acc else 0, -f[metric]))
    n = len({(f["model"], f["backend"], f["precision"]) for f in fits})
    why = (f"{best['model']} ({best['backend']}, {best['precision']}, batch {best['batch']}, threads {best['threads'] or 'default'}): "
           f"{best[metric]:.2f} ms {what_ms} within {budget_ms} ms")
    label = {"top1": "top-1", "map": "validation"}.get(key, "top-1 agreement with the reference")
    if has_acc:
        shown = top1_text(best) if key in ("top1", "map") else f"{best[key]:.2%}"
        why += f", {label} {shown}, the {'most faithful' if key == 'agree_top1' else 'most accurate'} of {n} artifact(s) that fit"
        tied = [f for f in fits if f is not best and key == "top1" and f.get("top1_lo") is not None and best.get("top1_lo") is not None
                and f["top1_hi"] >= best["top1_lo"] and f[key] is not None]
        if tied:  # a measurement on n images: say when the runner-up is within the error bar
            why += (f" (not clearly better than {tied[0]['model']} at {top1_text(tied[0])}: the 95% intervals overlap; "
                    "compare them on the same images with a paired test, as edgecls deploy does)")
    else:
        errors = [r["accuracy"]["error"] for r in result["results"] if isinstance(r.get("accuracy"), dict) and "error" in r["accuracy"]]
        why += f", fastest of {n} artifact(s) that fit (" + (f"accuracy failed: {errors[0]}" if errors else "no accuracy measured") + ")"
    return best, why


def compare(a: dict, b: dict) -> list[dict]:
    """Rows matched by (model, backend, precision, batch, threads): B/A ratios of the latency figures."""
    def keyed(result):  # the k-th row of a key: two folders holding the same file name stay two rows
        seen: dict = {}
        for f in map(flat, result["results"]):
            k = (f["model"], f["backend"], f["precision"], f["batch"], f["threads"])
            seen[k] = seen.get(k, -1) + 1
            yield k + (seen[k],), f

    fa = dict(keyed(a))
    out = []
    for k, fb in keyed(b):
        if k in fa:
            row = {"model": k[0], "backend": k[1], "precision": k[2], "batch": k[3], "threads": k[4]}
            for m in ("p50_ms", "p99_ms", "e2e_p50_ms", "cold_load_plus_first_ms"):
                va, vb = fa[k][m], fb[m]
                row[m + "_a"], row[m + "_b"] = va, vb
                row[m.replace("_ms", "") + "_ratio"] = (vb / va) if va and vb else None
            out.append(row)
    return out


# --- the report: sections through the shared document -------------------------------------------------------
def _prec(r: dict) -> str:
    return str(r.get("precision") or "fp32").upper()


def sorted_rows(result: dict) -> list[dict]:
    """Rows grouped by backend, then precision: the order of the table and the plots."""
    return sorted(result["results"], key=lambda r: (r["backend"], _prec(r), r["model"], r["batch"], r["threads"]))


def _row_label(r: dict, batch_and_threads: bool = True) -> str:
    label = f"{r['model']} · {r['backend']} · {_prec(r)}"
    return label + (f" · b{r['batch']} t{r['threads'] or 'def'}" if batch_and_threads else "")


def one_per_artifact(results: list[dict]) -> list[tuple[dict, dict]]:
    """The accuracy-latency chart's points: per artifact, its row at the smallest batch measured and its fastest
    thread count."""
    small = min(r["batch"] for r in results)
    best: dict = {}
    for r in results:
        if r["batch"] == small:
            k = (r.get("path", r["model"]), r["backend"], _prec(r))
            if k not in best or r["model_ms"]["p50"] < best[k]["model_ms"]["p50"]:
                best[k] = r
    return [(r, flat(r)) for r in best.values()]


def _reference(result: dict) -> dict | None:
    return next((r["agreement"] for r in result["results"] if (r.get("agreement") or {}).get("reference")), None)


def figures(result: dict) -> list[tuple[str, bytes]]:
    """(title, PNG): the latency distribution per row, and accuracy (or agreement, or file size) against latency
    per artifact."""
    from . import plots

    out = []
    results = sorted_rows(result)
    if results:
        out.append(("Latency distribution", plots.latency_distribution(
            [{"label": _row_label(r), "backend": r["backend"], "precision": _prec(r), "samples_ms": r["model_samples_ms"]}
             for r in results])))
    rows = one_per_artifact(results) if results else []
    if rows:
        key = "top1" if any(f["top1"] is not None for _, f in rows) else "agree_top1"
        with_acc = any(f[key] is not None for _, f in rows)
        missing = [f["model"] for _, f in rows if with_acc and f[key] is None]
        rows = [(r, f) for r, f in rows if not (with_acc and f[key] is None)]  # not drawn at 0%, not on the front
        pts = [{"label": _row_label(r, batch_and_threads=False), "backend": r["backend"], "precision": _prec(r),
                "p50_ms": f["p50_ms"], "size_mb": f["size_mb"], "y": ((f[key] or 0.0) * 100) if with_acc else f["size_mb"]}
               for r, f in rows]
        ref = _reference(result)
        ylabel = {"top1": "top-1 accuracy, %", "agree_top1": f"top-1 agreement with {ref['reference'] if ref else '?'}, %"}[key]
        png = plots.latency_scatter(
            pts, front=with_acc,
            xlabel=(f"model-only p50 latency, ms (batch {rows[0][1]['batch']}; the fastest thread count per artifact)"
                    + (f"; no figure, not shown: {', '.join(missing)}" if missing else "")),
            ylabel=ylabel if with_acc else "file size, MB",
            title=(f"{'accuracy' if key == 'top1' else 'agreement'} vs latency (marker size = file size)" if with_acc
                   else "file size vs latency (no accuracy measured)"))
        out.append((("Accuracy" if key == "top1" else "Agreement") + " vs latency" if with_acc else "Size vs latency", png))
    return out


_COLUMNS = {"model": "model", "backend": "backend", "precision": "precision", "batch": "batch", "threads": "threads",
            "p50_ms": "p50", "p90_ms": "p90", "p99_ms": "p99", "std_ms": "std", "runs": "runs", "e2e_p50_ms": "e2e p50",
            "preprocess_p50_ms": "pre p50", "throughput_ips": "img/s", "cold_load_plus_first_ms": "cold start",
            "cold_cache_fill_ms": "cold, 1st start", "peak_rss_mb": "peak RSS MB", "size_mb": "file MB", "top1": "top-1",
            "agree_top1": "agree top-1", "agree_top5": "agree top-5"}
_PCT = ("agree_top1", "agree_top5")


def _cell(f: dict, c: str) -> str:
    if c == "top1":
        return top1_text(f)
    if c in _PCT:
        return "-" if f[c] is None else f"{f[c]:.1%}"
    if c == "threads" and not f[c]:
        return "default"
    return _fmt(f[c])


def _device_facts(result: dict) -> list[str]:
    d = result["device"]
    cpu = d["cpu"]
    risk = {True: "yes: x86 without VNNI, full-range INT8 weights saturate (see README, overflow_fix)", False: "no",
            None: "unknown"}[cpu.get("int8_saturation_risk")]
    gpu = "; ".join(f"{g['name']} (driver {g['driver']}, cc {g['compute_capability']})" for g in d["gpus"]) or "none"
    emulated = [f"EMULATED: {cpu['emulated']}"] if cpu.get("emulated") else []
    return emulated + [f"CPU: {cpu['model']} ({cpu['arch']}; {', '.join(cpu['isa'])}), {cpu['logical_cores']} logical cores, "
            f"{d['memory_gb']} GiB, {d['os']}, Python {d['python']}", f"INT8 saturation risk: {risk}", f"GPU: {gpu}",
            f"Jetson: {json.dumps(d['jetson']) if d['jetson'] else 'not a Jetson'}",
            f"Runtimes: {', '.join(f'{k} {v}' for k, v in d['versions'].items())}",
            f"Created: {result['created']}", f"Options: {json.dumps(result['options'])}"]


def sections(result: dict, with_figures: bool = True) -> list[Section]:
    """The bench report: the device, the table (one row per model, backend, precision, batch and thread count, no
    all-empty columns) with the budget pick and the open-world costs, then the figures (with_figures: needs matplotlib)."""
    device = Section("device", "Device").items(_device_facts(result))
    flats = [flat(r) for r in sorted_rows(result)]
    cols = {k: v for k, v in _COLUMNS.items() if any(f[k] is not None for f in flats)}
    if any(f["calls_per_batch"] > 1 for f in flats):  # a fixed-batch artifact looped: say so beside the batch
        items = list(cols.items())
        items.insert(items.index(("batch", "batch")) + 1, ("calls_per_batch", "runtime calls"))
        cols = dict(items)
    ref = _reference(result)
    res = Section("results", "Latency, accuracy and size")
    res.p("Latencies in ms. Model-only: a preprocessed batch through the runtime (the Predictor's own call, output copy "
          "included). End-to-end (e2e): a 1080p uint8 BGR frame through preprocessing, inference and top-k; pre is per "
          "frame. Cold: a fresh process loading the model and running its first inference on one frame; peak RSS is "
          "that process's. Percentiles by linear interpolation; runs is the number of timed calls."
          + (f" Agreement: top-1 agreement and top-5 overlap with {ref['reference']} on {ref.get('images')}, for builds "
             "(INT8, FP16) where no labelled set is at hand." if ref else ""))
    res.table(list(cols.values()), [[_cell(f, c) for c in cols] for f in flats])
    pick = result.get("budget_pick")
    if pick:
        res.p(f"Budget {pick['budget_ms']:g} ms: {pick['why']}")
    speedups = result.get("int8_vs_fp32") or int8_speedups(result)
    if speedups:
        res.p("INT8 against the FP32 artifact of the same runtime (model-only p50 ratio, this device):")
        res.items([speedup_text(s) for s in speedups])
    if any(f["reject"] for f in flats):
        res.p("Open world (end-to-end includes rejection by the threshold stored in the artifact; drift monitoring's "
              "cost is the mean end-to-end time with the monitor minus without, same run):")
        res.items([f"{f['model']} ({f['backend']}, {f['precision']}): reject {f['reject']}; monitor "
                   f"{_fmt(f['monitor_overhead_ms'])} ms per frame" for f in flats if f["reject"]])
    out = [device, res]
    if with_figures:
        out += [Section(title.lower().replace(" ", "_"), title).img(f"{title.lower().replace(' ', '_')}.png", png, title)
                for title, png in figures(result)]
    return out


def _meta(result: dict) -> str:
    cpu = result["device"]["cpu"]
    emulated = " - EMULATED, timings say nothing about this CPU's speed" if cpu.get("emulated") else ""
    return (f"edgecls-bench on {cpu['model']} ({', '.join(cpu['isa'])}), {cpu['logical_cores']} cores, "
            f"{result['created']}{emulated}")


def to_markdown(result: dict) -> str:
    """bench.md: the device and the table as Markdown (the figures are in bench.html; no matplotlib needed)."""
    md, _ = document.to_markdown(sections(result, with_figures=False), "edgecls-bench report", _meta(result), "bench_files")
    return md


def to_html(result: dict) -> str:
    """bench.html: the same sections with the figures embedded (needs matplotlib)."""
    return document.to_html(sections(result), "edgecls-bench report", _meta(result))


def write_reports(result: dict, out_dir: Path) -> dict[str, Path]:
    """bench.json first (the record), then CSV, Markdown and, where matplotlib is installed, the HTML report."""
    out_dir.mkdir(parents=True, exist_ok=True)
    makers = {"json": lambda: json.dumps(result, indent=2, allow_nan=False), "csv": lambda: to_csv(result),
              "md": lambda: to_markdown(result), "html": lambda: to_html(result)}
    files = {}
    for kind, make in makers.items():
        try:
            data = make().encode()
        except ModuleNotFoundError as exc:  # a device install without matplotlib: the tables still get written
            print(f"edgecls-bench: no bench.{kind} ({exc.name} is not installed: pip install 'edgecls[bench]')", file=terminal())
            continue
        atomic_write_bytes(out_dir / f"bench.{kind}", data)
        files[kind] = out_dir / f"bench.{kind}"
    return files
