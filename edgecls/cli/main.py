"""`edgecls` command line: deploy, train, compress, export, predict, info, archs, demo, fit-reference, eval, explain,
monitor."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..errors import EdgeclsError


def _runtime_name(text: str) -> str:
    """--backend: any spelling of a runtime (onnx, ort, ov, tflite, trt, ...), resolved here at the edge."""
    from ..runtime.runtimes import resolve

    try:
        return resolve(text).name
    except EdgeclsError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _console():
    from rich.console import Console

    return Console()


def _text(value) -> str:
    """Model-supplied text (labels, paths, spec values) for rich: markup in it is shown, never interpreted
    (a label `tench[/]` crashed `edgecls info`; `[link=...]` would emit a terminal hyperlink)."""
    from rich.markup import escape

    return escape(str(value))


def cmd_export(a) -> int:
    from .. import create_model, export, load
    from ..exporters import FORMATS

    src = Path(a.source)
    if src.suffix == ".pt":
        model, spec = load(src)
        name = a.name or src.stem
    else:
        model, spec = create_model(a.source, pretrained=a.pretrained)
        name = a.name or a.source
    con = _console()
    for fmt in a.format:
        opts = {}
        if fmt in ("tflite", "tensorrt", "executorch"):
            opts = {"precision": a.precision}
            if a.calibration:
                opts["calibration"] = _calibration_images(a.calibration)
        if fmt in ("onnx", "openvino", "tensorrt"):
            opts.update({"opset": a.opset, "dynamic_batch": a.dynamic_batch, "fuse_preprocess": not a.no_fuse_preprocess})
            if fmt == "openvino":
                opts["fp16_weights"] = a.fp16_weights
        if fmt == "tensorrt":
            opts.update({"batch": tuple(a.batch_profile) if a.batch_profile else None, "int8_source": a.int8_source})
        tag = f"_{a.precision}" if fmt in ("tflite", "tensorrt", "executorch") and a.precision != "fp32" else ""
        out = Path(a.out_dir) / f"{name}{tag}{FORMATS[fmt].suffix}"
        with con.status(f"exporting {out} ..."):
            result = export(model, spec, out, verify=not a.no_verify, **opts)
        con.print(f"[green]wrote[/] {_text(result)}")
    return 0


def _calibration_images(folder: str) -> list:
    """Every image under `folder` (recursively), decoded to RGB uint8: INT8 calibration from the user's own data."""
    from ..runtime.decode import IMAGE_SUFFIXES
    from ..runtime.images import load_image

    files = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"--calibration {folder}: no images ({', '.join(IMAGE_SUFFIXES)}) found there")
    return [load_image(p, color=None, channels=3)[0] for p in files]


def cmd_predict(a) -> int:
    from .. import Predictor

    pred = Predictor(a.model, backend=a.backend, threads=a.threads, device=a.device, reject=a.reject)
    rows = []
    for img in a.images:
        p = pred.predict(img, topk=a.topk)
        rows.append({"image": img, "index": p.index, "label": p.label, "score": p.score, "known": p.known,
                     "topk": [{"index": t.index, "label": t.label, "score": t.score} for t in p.topk]}
                    | ({"labels": [{"index": t.index, "label": t.label, "score": t.score} for t in p.labels]}
                       if p.multilabel else {}))
    if a.json:
        print(json.dumps(rows, indent=2))
        return 0
    from rich.table import Table

    t = Table(title=_text(f"{pred.path.name} on {pred.backend_name}"))
    if pred.spec.multilabel:  # the answer is the set of labels at or above their thresholds
        for col in ("image", "labels (score)", f"top-{a.topk}"):
            t.add_column(col)
        for r in rows:
            t.add_row(_text(r["image"]), _text(", ".join(f"{x['label']} ({x['score']:.3f})" for x in r["labels"]) or "none"),
                      _text(", ".join(x["label"] for x in r["topk"])))
        _console().print(t)
        return 0
    for col in ("image", "top-1", "score", f"top-{a.topk}"):
        t.add_column(col)
    for r in rows:
        t.add_row(_text(r["image"]), _text(f"{r['label']} (#{r['index']})"), f"{r['score']:.3f}",
                  _text(", ".join(x["label"] for x in r["topk"])))
    _console().print(t)
    return 0


def cmd_info(a) -> int:
    from .. import Predictor

    pred = Predictor(a.model, backend=a.backend)
    s = pred.spec
    if a.json:
        print(s.to_json())
        return 0
    con = _console()
    i, p = s.input, s.preprocess
    con.print(f"[bold]{_text(pred.path)}[/]  " + _text(f"backend={pred.backend_name}  arch={s.arch}  classes={s.num_classes}"))
    con.print(_text(f"artifact: {s.artifact}"))
    con.print(f"input: {i.layout} {i.dtype} {i.shape} batch={'dynamic' if i.batch is None else i.batch} normalized_in_graph={i.normalized_in_graph}")
    con.print(f"preprocess: {p.resize_mode} crop_pct={p.crop_pct} {p.interpolation} mean={p.mean} std={p.std} color={p.color}")
    con.print(_text(f"temperature: {s.temperature}  metrics: {s.metrics or '-'}"))
    con.print(_text(f"labels: {', '.join(s.labels[:8])}{' ...' if s.num_classes > 8 else ''}"))
    if s.open_set is not None:
        o = s.open_set
        con.print(_text(f"open set: {o.score} >= {o.threshold:.6g} is known (keeps {o.coverage:.0%} of {o.n} validation images)"))
    if s.reference is not None:
        r = s.reference
        con.print(_text(f"drift reference: n={r.n}, unknown rate {r.unknown_rate:.1%}, statistics: {', '.join(r.histograms)}"))
    for step in s.lineage:
        con.print(_text(f"  - {step.time} {step.step} {step.params} {step.metrics or ''}"))
    return 0


def cmd_check(a) -> int:
    """Run the artifact's own reference inputs on this machine's runtime; exit 0 pass, 1 fail or no reference data."""
    from rich.markup import escape

    from .. import Predictor

    results = []
    for model in a.models:
        pred = Predictor(model, backend=a.backend, device=a.device, threads=a.threads)
        r = pred.run_self_check()
        results.append({"model": str(model), "backend": pred.backend_name, "device": pred.device, **r.as_dict()})
        if not a.json:
            color = {"pass": "green", "fail": "red"}.get(r.status, "yellow")
            _console().print(f"[{color}]{r.status.upper()}[/] {escape(str(model))} on {pred.backend_name}/{pred.device}: "
                             f"{escape(str(r))}", highlight=False)
    if a.json:
        print(json.dumps(results, indent=2))
    return 0 if all(r["status"] == "pass" for r in results) else 1


def cmd_fit_reference(a) -> int:
    from ..openset import fit_reference

    for model in a.models:
        spec = fit_reference(model, a.data, score=a.score, coverage=a.coverage, backend=a.backend)
        o, r = spec.open_set, spec.reference
        print(_plain(f"{model}: {o.score} threshold {o.threshold:.6g} keeps {o.coverage:.0%} of {o.n} validation images; "
                     f"drift reference: unknown rate {r.unknown_rate:.1%}, {len(r.histograms)} statistics"))
    return 0


def _plain(text: str) -> str:
    """Model-supplied text printed without rich: control characters shown, never sent to the terminal."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def cmd_eval(a) -> int:
    """`edgecls eval`: open-set (--ood), corruption (--corruptions, the default without --ood or --adversarial) and
    adversarial (--adversarial) evaluation; the last two share one robustness report."""
    from .eval import cmd_eval as robustness_eval

    multi = [m for m in a.models if _is_multilabel(m, a.backend)]
    if multi:
        if a.ood or a.corruptions is not None or a.adversarial is not None:
            raise ValueError(f"{', '.join(multi)}: multi-label models are evaluated by mAP/F1 on a labelled folder; "
                             "--ood, --corruptions and --adversarial take single-label models")
        for model in multi:
            _eval_multilabel(a, model)
        a.models = [m for m in a.models if m not in multi]
        if not a.models:
            return 0
    adversarial = a.adversarial is not None
    corruptions = a.corruptions is not None or not (a.ood or adversarial)
    if a.json and a.ood and (corruptions or adversarial):
        raise ValueError("--json prints one report: give --ood or --corruptions/--adversarial, not both (or drop --json)")
    for model in a.models if a.ood else ():
        _eval_ood(a, model)
    return robustness_eval(a, corruptions=corruptions) if corruptions or adversarial else 0


def _is_multilabel(model: str, backend: str | None) -> bool:
    from ..runtime.artifacts import read_sidecar

    spec = read_sidecar(model) if Path(model).suffix != ".pt" else None
    if spec is None:
        from ..runtime.predictor import Predictor

        with Predictor(model, backend=backend) as pred:
            spec = pred.spec
    return spec.multilabel


def _eval_multilabel(a, model: str) -> None:
    from rich.table import Table

    from ..evaluation.multilabel import evaluate

    r = evaluate(model, a.data, backend=a.backend, n_boot=a.n_boot)
    if a.json:
        print(json.dumps(r, indent=2))
        return
    con = _console()

    def fig(m):
        return f"{m['value']:.4f} [{m['interval'][0]:.4f}, {m['interval'][1]:.4f}]"

    con.print(_text(f"{r['model']} on {r['backend']} ({r['precision'] or 'fp32'}): {r['n']} images, "
                    f"{r['labels_per_image']:.2f} labels each; mAP {fig(r['map'])}, micro F1 {fig(r['micro_f1'])}, "
                    f"macro F1 {fig(r['macro_f1'])} (bootstrap 95% intervals; F1 at the spec's thresholds)"), highlight=False)
    t = Table(title="per label")
    for col in ("label", "AP", "F1", "threshold", "support", "predicted"):
        t.add_column(col)
    for name, m in r["per_label"].items():
        t.add_row(_text(name), "" if m["ap"] is None else f"{m['ap']:.4f}", f"{m['f1']:.4f}", f"{m['threshold']:.3f}",
                  str(m["support"]), str(m["predicted"]))
    con.print(t)


def _eval_ood(a, model: str) -> int:
    from ..openset import evaluate_ood

    r = evaluate_ood(model, a.data, a.ood, scores=a.score or ("msp", "max_logit", "energy"), backend=a.backend,
                     n_boot=a.n_boot)
    if a.json:
        print(json.dumps(r, indent=2))
        return 0
    from rich.table import Table

    k = r["known"]
    con = _console()
    head = f"{r['model']} on {r['backend']}: {k['n']} known images"
    if "top1" in k:
        t1 = k["top1"]
        head += f", top-1 {t1['value']:.1%} [{t1['lo']:.1%}, {t1['hi']:.1%}]"
    if "threshold" in r:
        th, rj = r["threshold"], k["rejected"]
        head += (f"; {th['score']} threshold {th['value']:.4g} (fitted on {th['fitted_on']}) rejects "
                 f"{rj['value']:.1%} [{rj['lo']:.1%}, {rj['hi']:.1%}] of them")
    con.print(_text(head), highlight=False)
    t = Table(title="known vs unknown: AUROC (bootstrap 95% interval), FPR at 95% TPR, rejection rate (Wilson 95%)")
    for col in ("unknown set", "n", "score", "AUROC", "FPR@95%TPR", "rejected"):
        t.add_column(col)
    for folder, row in r["sets"].items():
        rej = row.get("rejected")
        for i, (name, m) in enumerate(row["scores"].items()):
            lo, hi = m["auroc_interval"]
            t.add_row(_text(folder) if i == 0 else "", str(row["n"]) if i == 0 else "", name,
                      f"{m['auroc']:.3f} [{lo:.3f}, {hi:.3f}]", f"{m['fpr_at_95tpr']:.3f}",
                      f"{rej['value']:.1%} [{rej['lo']:.1%}, {rej['hi']:.1%}]" if rej and i == 0 else "")
    con.print(t)
    return 0


def cmd_monitor(a) -> int:
    from ..runtime.drift import read_log

    recs = read_log(a.log)
    if a.json:
        print(json.dumps(recs, indent=2))
        return 0
    if not recs:
        print(f"{a.log}: no windows recorded yet")
        return 0
    if a.plot:
        from ..openset.history import plot_history

        print(f"plot: {plot_history(recs, a.plot)}")
    from ..openset.history import threshold_of

    stats = list(dict.fromkeys(k for r in recs for k in r["psi"]))
    bars = " ▁▂▃▄▅▆▇█"
    last = recs[-1]
    how = (f"fixed PSI threshold {last['psi_threshold']:g}" if last.get("psi_threshold") is not None else
           f"thresholds for a false-alarm rate of {last['false_alarm_rate']:g} per window" if last.get("false_alarm_rate")
           else f"PSI threshold {threshold_of(last, '')} (an older log)")
    print(f"{len(recs)} windows, {last['frames']} frames; {how}; PSI per statistic over the windows "
          "(█ = twice its threshold or more)")
    for name in stats:
        vals = [r["psi"].get(name, 0.0) for r in recs]
        limits = [threshold_of(r, name) for r in recs]
        line = "".join(bars[min(8, int(v / t / 2 * 8))] if t else bars[0] for v, t in zip(vals[-80:], limits[-80:]))
        limit = f"{limits[-1]:.3f}" if limits[-1] else "none"
        print(f"  {name:13s} {line}  last {vals[-1]:.3f}, max {max(vals):.3f}, threshold {limit}")
    events = [(r, e) for r in recs for e in r.get("events", [])]
    print(f"{len(events)} drift events" + (":" if events else ""))
    for r, e in events[-a.last:]:
        over = f" > {e['threshold']:.2f}" if e.get("threshold") is not None else ""
        print(_plain(f"  {r.get('time', '?')}  frame {e['frames']}: {e['statistic']} PSI {e['psi']:.2f}{over}: {e['message']}"))
    return 1 if events and a.fail_on_drift else 0


def cmd_archs(a) -> int:
    from ..models import ARCHS

    for arch in ARCHS.values():
        weights = "offline ImageNet weights" if arch.local_weights else "weights from timm hub (online)"
        print(f"{arch.name:24s} {arch.note:32s} {weights}")
    return 0


def cmd_train(a) -> int:
    import dataclasses

    from ..train import TrainConfig, train

    base = TrainConfig.from_yaml(a.config).to_dict() if a.config else {}
    flags = {f.name: getattr(a, f.name) for f in dataclasses.fields(TrainConfig) if getattr(a, f.name, None) is not None}
    cfg = TrainConfig.from_dict({**base, **flags})
    result = train(cfg)
    if not result.metrics:  # a non-zero DDP rank: rank 0 reports
        return 0
    s = result.metrics["summary"]
    print(f"best model: {result.best_path}  " + "  ".join(f"{k}={v:.4f}" for k, v in s.items() if isinstance(v, float)))
    if result.metrics.get("task") == "multilabel":
        m = result.metrics["val"]["map"]
        print(f"val mAP {m['value']:.4f}, 95% interval [{m['interval'][0]:.4f}, {m['interval'][1]:.4f}], n={result.metrics['val']['n']}")
    ev = result.metrics.get("test") or result.metrics.get("val")
    if ev and ev.get("top1_interval"):  # an accuracy is a measurement: its n and 95% interval
        lo, hi = ev["top1_interval"]
        print(f"{'test' if 'test' in result.metrics else 'val'} top-1 {ev['top1']:.2%}, 95% interval [{lo:.2%}, {hi:.2%}], n={ev['n']}")
    return 0


def _add_train_flags(t) -> None:
    """One flag per TrainConfig field, so YAML and command line name the same settings; the help is the field's own."""
    import dataclasses
    import typing

    from ..train.config import TrainConfig

    hints = typing.get_type_hints(TrainConfig)
    for f in dataclasses.fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        hint = str(hints[f.name])
        text = (f.metadata.get("help", "") + ("" if f.default is None else f" (default: {f.default})")).replace("%", "%%")
        if hints[f.name] is bool:
            t.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=None, help=text)
        else:
            kind = float if "float" in hint else int if "int" in hint else str
            t.add_argument(flag, dest=f.name, type=kind, default=None, choices=f.metadata.get("choices"), help=text,
                           metavar=None if f.metadata.get("choices") else f.name.upper())


def cmd_compress(a) -> int:
    from ..compress import CompressConfig, run

    cfg = CompressConfig.from_yaml(a.config)
    for name in ("model", "out_dir", "threads", "val_limit", "test_limit"):
        if getattr(a, name) is not None:
            setattr(cfg, name, getattr(a, name))
    if a.max_drop is not None:  # the budget applies to every INT8 step of the chain
        cfg.set_max_drop(a.max_drop)
    run(cfg)
    print(f"report: {Path(cfg.out_dir) / 'compress.json'}")
    return 0


def cmd_demo(a) -> int:
    from .demo import run_demo

    return run_demo(Path(a.out_dir))


def build_parser() -> argparse.ArgumentParser:
    from ..runtime.runtimes import RUNTIMES

    ap = argparse.ArgumentParser(prog="edgecls", description="Train, compress, export and run image classifiers on edge devices.")
    sub = ap.add_subparsers(dest="command", required=True)

    e = sub.add_parser("export", help="export a .pt or a registered arch to ONNX / OpenVINO / TFLite / TensorRT / ExecuTorch / .pt, "
                       "verified against PyTorch")
    e.add_argument("source", help="an edgecls .pt file, or an arch name (see `edgecls archs`)")
    e.add_argument("--pretrained", action="store_true", help="with an arch name: load ImageNet weights")
    e.add_argument("-f", "--format", nargs="+", default=["onnx", "openvino"], choices=[r.format for r in RUNTIMES.values()],
                   help="formats to write: pt, onnx, openvino (.xml), tflite, tensorrt (.engine, NVIDIA GPU), executorch (.pte)")
    e.add_argument("--precision", default="fp32", choices=["fp32", "fp16", "dynamic_int8", "int8", "int8_all"],
                   help="TFLite: fp32, fp16, dynamic_int8, int8 (PT2E), int8_all (all-int8 graph); TensorRT: fp32, fp16, int8; "
                   "ExecuTorch: fp32, int8 (PT2E, XNNPACK)")
    e.add_argument("--calibration", help="folder of your images for INT8 calibration (default: the bundled photos)")
    e.add_argument("-o", "--out-dir", default="exported")
    e.add_argument("--name", help="file stem (default: the source name)")
    e.add_argument("--opset", type=int, default=17)
    e.add_argument("--dynamic-batch", action="store_true", help="dynamic batch dimension instead of batch 1")
    e.add_argument("--no-fuse-preprocess", action="store_true", help="float NCHW input instead of uint8 NHWC with normalization in the graph")
    e.add_argument("--fp16-weights", action="store_true", help="OpenVINO: store weights in FP16")
    e.add_argument("--batch-profile", type=int, nargs=3, metavar=("MIN", "OPT", "MAX"),
                   help="TensorRT with --dynamic-batch: the batch sizes the engine takes and the one it is tuned for "
                        "(default 1 8 32)")
    e.add_argument("--int8-source", choices=["qdq", "calibrator"], default="qdq",
                   help="TensorRT INT8: qdq = symmetric Q/DQ ONNX by ModelOpt PTQ (TensorRT 10 and 11, default); "
                        "calibrator = TensorRT 10's entropy calibrator")
    e.add_argument("--no-verify", action="store_true", help="skip the check against PyTorch on real photos")
    e.set_defaults(func=cmd_export)

    p = sub.add_parser("predict", help="classify image files")
    p.add_argument("model")
    p.add_argument("images", nargs="+")
    p.add_argument("--backend", type=_runtime_name)
    p.add_argument("--device", help="cpu or cuda (default: the backend's own: cuda for .engine, cpu otherwise)")
    p.add_argument("--threads", type=int)
    p.add_argument("-k", "--topk", type=int, default=5)
    p.add_argument("--json", action="store_true")
    p.add_argument("--reject", action="store_true", help="answer 'unknown' below the open-set threshold stored in the "
                   "spec (edgecls fit-reference); the closest class stays in top-k")
    p.set_defaults(func=cmd_predict)

    i = sub.add_parser("info", help="show a model's spec: labels, preprocessing, lineage")
    i.add_argument("model")
    i.add_argument("--backend", type=_runtime_name)
    i.add_argument("--json", action="store_true", help="print the full spec JSON")
    i.set_defaults(func=cmd_info)

    k = sub.add_parser("check", help="self-check: run the reference inputs an artifact carries on this device's runtime "
                       "and compare with what was verified at export (exit 0 pass, 1 fail)")
    k.add_argument("models", nargs="+", help="artifacts exported by edgecls (.onnx/.xml/.tflite/.pt/.engine/.trt/.plan)")
    k.add_argument("--backend", type=_runtime_name, help="force a runtime (default: by suffix)")
    k.add_argument("--device", help="cpu or cuda (default: the backend's own: cuda for TensorRT, cpu otherwise)")
    k.add_argument("--threads", type=int, help="runtime threads (default: the runtime's own)")
    k.add_argument("--json", action="store_true", help="print the results as JSON")
    k.set_defaults(func=cmd_check)

    t = sub.add_parser("train", help="train a classifier (Fashion-MNIST or an ImageFolder) from a YAML recipe and/or flags")
    t.add_argument("--config", help="YAML file of TrainConfig settings; flags override it")
    _add_train_flags(t)
    t.set_defaults(func=cmd_train)

    c = sub.add_parser("compress", help="prune -> fine-tune/distill -> INT8 (PTQ/QAT) from a YAML config, under --max-drop")
    c.add_argument("config", help="YAML: model, data, steps (see benchmarks/compress_*.yaml)")
    c.add_argument("--model", help="override the config's float .pt")
    c.add_argument("--max-drop", type=float, help="INT8 budget: top-1 points below the float model on the val split")
    c.add_argument("-o", "--out-dir", dest="out_dir")
    c.add_argument("--threads", type=int)
    c.add_argument("--val-limit", type=int, help="judge budgets on this many val images (default: all)")
    c.add_argument("--test-limit", type=int)
    c.set_defaults(func=cmd_compress)

    sub.add_parser("archs", help="list the architectures edgecls builds").set_defaults(func=cmd_archs)

    f = sub.add_parser("fit-reference", help="fit an artifact's open-set threshold and drift reference on validation "
                       "images of its known classes and store them in its spec (per artifact: INT8 gets its own)")
    f.add_argument("models", nargs="+", help="exported artifacts (.onnx/.xml/.tflite/.pt/.pte)")
    f.add_argument("--data", required=True, help="folder of validation images of the known classes, never trained on "
                   "(class subfolders or flat)")
    f.add_argument("--score", default="msp", choices=["msp", "max_logit", "energy"],
                   help="open-set score: msp (max softmax at the spec's temperature, default), max_logit, energy")
    f.add_argument("--coverage", type=float, default=0.95,
                   help="share of known validation images the threshold keeps, strictly between 0 and 1 (default 0.95)")
    f.add_argument("--backend", type=_runtime_name, help="force a runtime (default: by suffix)")
    f.set_defaults(func=cmd_fit_reference)

    m = sub.add_parser("monitor", help="print a drift log (Predictor.start_monitor(log=...)): PSI per statistic per "
                       "window and the drift events")
    m.add_argument("log", help="the JSON-lines drift log")
    m.add_argument("--last", type=int, default=20, help="show at most this many most recent events (default 20)")
    m.add_argument("--fail-on-drift", action="store_true", help="exit 1 when the log holds a drift event")
    m.add_argument("--json", action="store_true", help="print the window records as JSON")
    m.add_argument("--plot", metavar="PNG", help="also draw the history (a .png path): PSI per statistic per window as a "
                                               "multiple of its event threshold, the windows with events, and each "
                                               "statistic's mean vs its reference")
    m.set_defaults(func=cmd_monitor)

    from .deploy import add_parser as add_deploy

    add_deploy(sub)  # `edgecls deploy`: the whole journey, folder of photos -> verified models + report

    from .eval import add_eval_parser, add_explain_parser

    v = add_eval_parser(sub)  # `edgecls eval`: accuracy under common corruptions, every artifact on its own runtime
    v.add_argument("--ood", nargs="+", metavar="DIR", help="open-set evaluation instead: one or more folders of unknown "
                   "images, each reported on its own (AUROC, FPR at 95%% TPR, rejection rate); add --corruptions to run "
                   "both. Fit the threshold first for rejection rates: edgecls fit-reference")
    v.add_argument("--score", nargs="+", choices=["msp", "max_logit", "energy"],
                   help="--ood: open-set scores to compare (default: all three)")
    v.add_argument("--n-boot", type=int, default=1000, help="--ood: bootstrap resamples for the AUROC intervals (default 1000)")
    v.add_argument("--backend", type=_runtime_name, help="--ood and multi-label models: force a runtime (default: by suffix)")
    v.description += (" A multi-label MODEL (task multilabel) is evaluated on --data's labels manifest instead: mAP, "
                      "micro/macro F1 at its thresholds (bootstrap 95%% intervals), per-label AP and F1."
                      " With --ood DIR...: how well each MODEL tells the known images of --data from unknown ones "
                      "(AUROC with bootstrap intervals, FPR at 95%% TPR, rejection rate at its fitted threshold).")
    v.set_defaults(func=cmd_eval)
    add_explain_parser(sub)  # `edgecls explain`: Grad-CAM overlays, measured by deletion/insertion AUC

    d = sub.add_parser("demo", help="export pretrained EfficientNet-Lite0 and classify real photos on every CPU backend")
    d.add_argument("-o", "--out-dir", default="demo_out")
    d.set_defaults(func=cmd_demo)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except EdgeclsError as exc:
        print(f"edgecls: error: {exc}", file=sys.stderr)
        return 2
    except (ValueError, FileNotFoundError) as exc:  # argument problems raised by the API
        print(f"edgecls: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
