"""The pipeline's steps. Each declares the options it takes with their defaults (a Step); its function takes
(context, model, spec, options, index) and returns (model, spec, figures). The pipeline and the config know the steps
only through STEPS."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..configfile import check_keys
from ..errors import CompressError, TrainError
from ..runtime.spec import ModelSpec
from .ptq import publish_int8, quantize_file

# finetune takes TrainConfig settings, but these come from the compress config itself (one split, one seed, one folder)
DATA_FIELDS = ("data", "data_root", "val_dir", "val_fraction", "seed", "threads", "out_dir", "arch", "resume")


@dataclass(frozen=True)
class Step:
    name: str
    defaults: dict[str, Any]  # every option the step takes, with its value when the config leaves it out
    run: Callable[..., tuple]  # (ctx, model, spec, options, index) -> (model, spec, figures)
    known: Callable[[], list[str]] | None = None  # the option names, where they are not just the defaults' keys
    reserved: tuple[str, ...] = ()  # names it must not be given: the compress config sets them for every step

    def options(self, given: dict | None) -> dict[str, Any]:
        """The given options over the defaults; an unknown one is a CompressError naming the close ones."""
        given = {} if given is None else given
        if not isinstance(given, dict):
            raise CompressError(f"{self.name}: {given!r} must be a mapping of options, e.g. `- {self.name}: {{}}`")
        bad = sorted(set(given) & set(self.reserved))
        if bad:
            raise CompressError(f"{self.name} options {bad} come from the compress config itself (data, seed, out_dir...)")
        check_keys(given, self.known() if self.known else self.defaults, CompressError, f"{self.name} option")
        return {**self.defaults, **given}


def prune_step(ctx, model, spec, o, i):
    from .prune import prune

    before = ctx.evaluate_torch(model, spec, "before prune")
    model, spec = prune(model, spec, target_macs=None if o["ratio"] else o["target_macs"], ratio=o["ratio"],
                        steps=o["steps"], round_to=o["round_to"])
    row = ctx.evaluate_torch(model, spec, "pruned (no fine-tune)")
    ctx.console.print(f"MACs {before['macs'] / 1e6:.2f}M -> {row['macs'] / 1e6:.2f}M, params {before['params'] / 1e6:.2f}M -> "
                      f"{row['params'] / 1e6:.2f}M; {ctx.metric.replace('_', ' ')} {before[ctx.metric]:.4f} -> "
                      f"{row[ctx.metric]:.4f} before fine-tuning")
    return model, spec, {**row, "mac_fraction": row["macs"] / before["macs"]}


def train_config(ctx, spec: ModelSpec, opts: dict, out_dir: Path):
    from ..train.config import TrainConfig

    c = ctx.cfg
    opts = dict(opts)
    if opts.get("teacher") == "start":  # distil from the float model the pipeline started from
        opts["teacher"] = c.model
    if spec.multilabel:  # the compress data is the model's own manifest, its labels the class list
        opts = {"task": "multilabel", "classes": list(spec.labels), "allow_empty_labels": True, **opts}
    try:
        return TrainConfig.from_dict({"data": c.data, "data_root": c.data_root, "val_dir": c.val_dir, "val_fraction": c.val_fraction,
                                      "seed": c.seed, "threads": c.threads, "out_dir": str(out_dir), "arch": spec.arch,
                                      "eval_test": False, **opts})
    except (TrainError, TypeError) as exc:  # TypeError: a YAML value of the wrong type (a string for epochs)
        raise CompressError(f"finetune options: {exc}") from exc


def finetune_step(ctx, model, spec, opts, i):
    from ..train.loop import train

    tcfg = train_config(ctx, spec, opts, ctx.out / f"step{i + 1}_finetune")
    result = train(tcfg, model=model, spec=spec, console=ctx.console)
    row = ctx.evaluate_torch(result.model, result.spec, "distilled" if tcfg.teacher else "fine-tuned")
    return result.model, result.spec, {**row, "teacher": tcfg.teacher, "epochs": tcfg.epochs}


# --- quantize ------------------------------------------------------------------------------------------------
def _targets(names: list[str], method: str) -> list[tuple[str, object]]:
    from ..errors import UnknownTargetError
    from .targets import target

    out = []
    for name in names:
        try:
            t = target(name)
        except UnknownTargetError as exc:
            raise CompressError(f"quantize backends: {exc}") from None
        why = t.unavailable()
        if why:
            raise CompressError(f"quantize backend {name!r} cannot be built here: {why}")
        if method == "qat" and not t.qat:
            raise CompressError(f"method: qat covers ONNX Runtime and OpenVINO (NNCF fake quantization), not {name!r}; "
                                "use method: ptq or auto for it")
        out.append((name, t))
    if len({t.name for _, t in out}) != len(out):
        raise CompressError(f"quantize backends {names} name a target twice")
    return out


def quantize_step(ctx, model, spec, o, i):
    from .budget import ladder, multilabel_decision, top1_decision
    from .data import dataset_calibration
    from .targets import Int8Job

    check_model_keep_float(model, spec, tuple(o["keep_float"]))
    if o["qat_corruptions"]:
        if o["method"] == "ptq":
            raise CompressError("qat_corruptions augments QAT's training images; it needs method: qat (or auto)")
        _corrupted_train(ctx, o)  # an unknown name or a bad p fails here, before any export or calibration
    if o["method"] not in ("ptq", "qat", "auto"):
        raise CompressError(f"quantize method {o['method']!r}: use ptq, qat or auto (PTQ, then QAT if over budget)")
    if spec.multilabel and o["method"] != "ptq":
        raise CompressError(f"quantize method {o['method']!r}: QAT is not wired for multi-label models yet; use method: ptq "
                            "(the budget is judged in mAP)")
    targets = _targets(list(o["backends"]), o["method"])
    decide = multilabel_decision(ctx.val.labels) if ctx.multilabel else top1_decision
    d = ctx.out / f"step{i + 1}_quantize"
    d.mkdir(parents=True, exist_ok=True)
    budget = o["max_drop"]
    rows, failed = [], []
    floats, calibs = {}, {}
    for name, t in targets:
        path = d / f"float{t.suffix}"
        fspec = t.export_float(model, spec, path, None)
        correct = ctx.correct(path)
        floats[name] = (path, fspec, correct)
        rows.append({**ctx.evaluate_artifact(path, correct=correct), "backend": name, "precision": "fp32"})
    base_keep = tuple(o["keep_float"])

    def calibration(fspec):  # the same images for every runtime, in each FP32 artifact's own input format
        key = (fspec.input.layout, fspec.input.dtype, fspec.input.normalized_in_graph, fspec.input.shape[1:])
        if key not in calibs:
            calibs[key] = dataset_calibration(ctx.splits.train, fspec, o["calibration"], ctx.cfg.seed)
        return calibs[key]

    if o["method"] in ("ptq", "auto"):
        for name, t in targets:
            src, fspec, fcorrect = floats[name]
            job = Int8Job(model, spec, src, fspec, calibration(fspec), d / "int8", base_keep,
                          {**{k: o[k] for k in ("calibration_method", "per_channel", "overflow_fix")},
                           "target_cpu": ctx.cfg.target_cpu})
            attempts = ladder(t, job, ctx.correct, fcorrect, budget, d, max_float_layers=o["max_float_layers"],
                              log=ctx.console.print, name=name, decide=decide)
            if ctx.multilabel:
                for a in attempts:
                    if a.get("final") and a.get("val_map") is not None:
                        a["thresholds"] = refit_thresholds(Path(a["artifact"]), ctx.correct(Path(a["artifact"])),
                                                           ctx.val.labels)
            rows.extend(attempts)
            if not any(a["final"] and a["within_budget"] for a in attempts):
                failed.append(name)
    if o["method"] == "qat" or (o["method"] == "auto" and failed):
        qat_names = [n for n, t in targets if t.qat] if o["method"] == "qat" else [n for n in failed if dict(targets)[n].qat]
        if qat_names:
            judge = _judge(ctx, floats, budget)
            qat_rows = _qat_rows(ctx, model, spec, o, base_keep, qat_names, d, judge, i)
            rows.extend(qat_rows)
            failed = [n for n in failed if n not in qat_names] + [r["backend"] for r in qat_rows if not r["within_budget"]]
    finals = [r for r in rows if r["precision"] == "int8" and r.get("final")] or [r for r in rows if r["precision"] == "int8"]
    for r in finals:
        if ctx.test is not None and r.get("test_top1") is None and r.get("val_top1") is not None:
            r["test_top1"] = ctx.evaluate_artifact(Path(r["artifact"]))["test_top1"]
    if failed:
        ctx.console.print(f"[red]INT8 stays over the {budget}-point budget on {failed} after every fallback[/red]")
        raise CompressError(f"INT8 on {failed} cannot stay within max_drop={budget} points of the float model on the "
                            f"validation set; attempts: {[(r['backend'], r.get('method'), r['keep_float'], r.get('drop_pts')) for r in rows if r['precision'] == 'int8']}. "
                            "Raise max_drop, use method: qat (or more qat_epochs), or fine-tune the float model longer", rows)
    return model, spec, {"rows": rows, "max_drop": budget}


def check_model_keep_float(model, spec, keep: tuple[str, ...]) -> None:
    """The config's keep_float names the PyTorch modules: one that is not there is a CompressError listing them, before
    anything is exported or calibrated."""
    import torch

    from ..errors import ExportError
    from .ptq import check_keep_float

    if not keep:
        return
    layers: list[str] = []
    for n, m in model.named_children():
        layers += [f"{n}.{k}" for k in range(len(m))] if isinstance(m, torch.nn.Sequential) else [n]
    try:
        check_keep_float([n for n, _ in model.named_modules() if n], keep, layers, f"the {spec.arch} model")
    except ExportError as exc:
        raise CompressError(f"quantize keep_float: {exc}") from None


def _corrupted_train(ctx, o):
    """QAT's training images with the quantize step's qat_corruptions applied: the qat_limit_train images the trainer
    itself would take (a stratified sample, same seed), so QAT with and without augmentation see the same pictures."""
    from ..data.datasets import stratified_split
    from ..errors import CorruptionError
    from ..robustness.augment import corruption_augmented

    train, n = ctx.splits.train, o["qat_limit_train"]
    if n is not None and n < len(train):
        train = stratified_split(train, n / len(train), ctx.cfg.seed)[1]
    try:
        return corruption_augmented(train, o["qat_corruptions"], p=o["qat_corruption_p"], seed=ctx.cfg.seed)
    except CorruptionError as exc:
        raise CompressError(f"quantize qat_corruptions: {exc}") from None


def refit_thresholds(path: Path, scores, truth) -> dict:
    """A multi-label INT8 artifact's own per-label thresholds: max F1 on its own validation scores (INT8 moves the
    scores, so the float model's thresholds are off by what it moved them), written into its spec (embedded and
    sidecar, atomically). Returns how far they moved."""
    import numpy as np

    from ..evaluation.multilabel import fit_thresholds
    from ..openset.fit import restamp
    from ..runtime.artifacts import read_sidecar

    spec = read_sidecar(path)
    new = fit_thresholds(np.asarray(truth, bool), scores)
    old = np.asarray(spec.label_thresholds)
    moved = float(np.abs(new - old).max())
    restamp(path, spec.with_step("fit_thresholds", {"rule": "max F1 per label", "n": int(len(scores))},
                                 {"max_threshold_change": moved}, thresholds=tuple(float(t) for t in new)))
    return {"refit_on": int(len(scores)), "max_change": moved}


def _judge(ctx, floats, budget):
    """A QAT artifact against the FP32 artifact of its runtime: the same paired decision as the PTQ ladder."""
    from .. import stats

    def judge(name, path, keep, how):
        ok = ctx.correct(path)
        d = stats.budget(floats[name][2], ok, budget)
        acc = stats.accuracy(ok)
        row = {**ctx.evaluate_artifact(path, test=False, correct=ok), "backend": name, "precision": "int8", "method": how,
               "keep_float": list(keep), "val_interval": [acc.lo, acc.hi], "n": acc.n, "drop_pts": round(d.drop_pts, 3),
               "within_budget": d.within, "resolved": d.resolved, "mcnemar_p": d.comparison.p_value, "budget": d.note}
        ctx.console.print(f"{name} {how}: val top-1 {acc.pct()} — {d.note}")
        return row

    return judge


def _qat_rows(ctx, model, spec, o, keep, targets, d, judge, i):
    import copy

    from ..exporters import export
    from ..exporters.openvino import onnx_to_openvino
    from ..runtime.artifacts import staging
    from .data import dataset_calibration
    from .qat import qat
    from .targets import target

    ctx.console.print(f"QAT with NNCF on PyTorch ({o['qat_epochs']} epoch(s), lr {o['qat_lr']}) for {targets}")
    calib = dataset_calibration(ctx.splits.train, spec, o["calibration"], ctx.cfg.seed)  # float NCHW for PyTorch
    tcfg = train_config(ctx, spec, {"epochs": o["qat_epochs"], "lr": o["qat_lr"], "min_lr": o["qat_lr"] / 10,
                                     "warmup_epochs": 0.0, "ema": False, "limit_train": o["qat_limit_train"],
                                     "freeze_bn": True},  # re-estimated BN stats cost ~0.4 points in one QAT epoch
                        ctx.out / f"step{i + 1}_qat")
    # the float model teaches its own fake-quantized copy: soft targets keep QAT from drifting off what it knew
    datasets = (_corrupted_train(ctx, o), ctx.splits.val) if o["qat_corruptions"] else None  # the trainer's own val
    if datasets:
        ctx.console.print(f"QAT training images corrupted with p={o['qat_corruption_p']} by {list(datasets[0].names)} "
                          "(severity 1-5 at random)")
    qmodel, qspec, trained = qat(model, spec, tcfg, calib, keep, teacher=copy.deepcopy(model) if o["qat_distill"] else None,
                                 overflow_fix=o["overflow_fix"], datasets=datasets, target_cpu=ctx.cfg.target_cpu)
    rows = []
    with staging(d / "int8_qat") as scratch:  # carries the pid: a killed run's folder is cleared by the next one
        tmp = scratch.parent
        qdq = export(qmodel, qspec, Path(tmp) / "qat_qdq.onnx", dynamic_batch=True, verify=False)
        qdq_spec = qdq.spec.replace(artifact={**qdq.spec.artifact, "precision": "int8", "quantizer": "nncf QAT (QDQ)"})
        for fmt in targets:
            if target(fmt).name == "onnxruntime":  # ONNX Runtime's own PTQ on the QAT-trained weights: every Conv an int8 QLinearConv
                path = d / "int8_qat.onnx"
                flt = export(trained, qspec, Path(tmp) / "qat_float.onnx", dynamic_batch=True, verify=False)
                ucalib = dataset_calibration(ctx.splits.train, flt.spec, o["calibration"], ctx.cfg.seed)
                quantize_file("onnx", flt.path, path, flt.spec, ucalib, keep_float=keep, method=o["calibration_method"],
                              per_channel=o["per_channel"], overflow_fix=o["overflow_fix"], target_cpu=ctx.cfg.target_cpu,
                              strict_keep_float=False)  # checked against the PyTorch modules already (an Identity has no node)
            else:  # OpenVINO runs NNCF's own Q/DQ graph, with the ranges QAT learned
                path = d / "int8_qat.xml"
                staged = Path(tmp) / path.name
                vspec = onnx_to_openvino(qdq.path, qdq_spec, staged)
                publish_int8("openvino", staged, path, vspec.replace(artifact={**vspec.artifact, "precision": "int8",
                                                                               "quantizer": "nncf QAT (QDQ)"}))
            rows.append({**judge(fmt, path, keep, "qat"), "final": True})
    return rows


def _finetune_options() -> list[str]:
    import dataclasses

    from ..train.config import TrainConfig

    return [f.name for f in dataclasses.fields(TrainConfig) if f.name not in DATA_FIELDS]


STEPS: dict[str, Step] = {s.name: s for s in (
    Step("prune", {"target_macs": 0.5, "ratio": None, "steps": 5, "round_to": 8}, prune_step),
    # TrainConfig settings (teacher: start distils from the float model the pipeline started from)
    Step("finetune", {}, finetune_step, known=_finetune_options, reserved=DATA_FIELDS),
    Step("quantize", {"method": "ptq", "backends": ["onnx", "openvino"], "max_drop": None, "calibration": 300,
                      "calibration_method": "minmax", "per_channel": True, "overflow_fix": "auto", "keep_float": [],
                      "qat_epochs": 1, "qat_lr": 1e-4, "qat_limit_train": None, "qat_distill": True, "max_float_layers": 12,
                      "qat_corruptions": [], "qat_corruption_p": 0.5}, quantize_step),
)}
