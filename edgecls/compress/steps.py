"""The pipeline's steps. Each takes (context, model, spec, options, index) and returns (model, spec, figures)."""

from __future__ import annotations

from pathlib import Path

from ..spec import ModelSpec
from .pipeline import PRUNE_OPTIONS, QUANT_OPTIONS, CompressError, step_options
from .ptq import publish_int8, quantize_file

DATA_FIELDS = ("data", "data_root", "val_dir", "val_fraction", "seed", "threads", "out_dir", "arch", "resume")


def prune_step(ctx, model, spec, opts, i):
    from .prune import prune

    o = step_options("prune", opts, PRUNE_OPTIONS)
    before = ctx.evaluate_torch(model, spec, "before prune")
    model, spec = prune(model, spec, target_macs=None if o["ratio"] else o["target_macs"], ratio=o["ratio"],
                        steps=o["steps"], round_to=o["round_to"])
    row = ctx.evaluate_torch(model, spec, "pruned (no fine-tune)")
    ctx.console.print(f"MACs {before['macs'] / 1e6:.2f}M -> {row['macs'] / 1e6:.2f}M, params {before['params'] / 1e6:.2f}M -> "
                      f"{row['params'] / 1e6:.2f}M; val top-1 {before['val_top1']:.4f} -> {row['val_top1']:.4f} before fine-tuning")
    return model, spec, {**row, "mac_fraction": row["macs"] / before["macs"]}


def train_config(ctx, spec: ModelSpec, opts: dict, out_dir: Path):
    from ..train.config import TrainConfig

    bad = sorted(set(opts) & set(DATA_FIELDS))
    if bad:
        raise CompressError(f"finetune options {bad} come from the compress config itself (data, seed, out_dir...)")
    c = ctx.cfg
    opts = dict(opts)
    if opts.get("teacher") == "start":  # distil from the float model the pipeline started from
        opts["teacher"] = c.model
    try:
        return TrainConfig.from_dict({"data": c.data, "data_root": c.data_root, "val_dir": c.val_dir, "val_fraction": c.val_fraction,
                                      "seed": c.seed, "threads": c.threads, "out_dir": str(out_dir), "arch": spec.arch,
                                      "eval_test": False, **opts})
    except (TypeError, ValueError) as exc:
        raise CompressError(f"finetune options: {exc}") from exc


def finetune_step(ctx, model, spec, opts, i):
    from ..train.loop import train

    tcfg = train_config(ctx, spec, opts, ctx.out / f"step{i + 1}_finetune")
    result = train(tcfg, model=model, spec=spec, console=ctx.console)
    row = ctx.evaluate_torch(result.model, result.spec, "distilled" if tcfg.teacher else "fine-tuned")
    return result.model, result.spec, {**row, "teacher": tcfg.teacher, "epochs": tcfg.epochs}


# --- quantize ------------------------------------------------------------------------------------------------
SUFFIX = {"onnx": ".onnx", "openvino": ".xml"}
FIRST_LAST = ("conv_stem", "conv_head", "classifier")


def _blocks(model) -> list[str]:
    """Top-level stages ("blocks.0".."blocks.N"): the unit the ranked fallback keeps in float."""
    return [f"blocks.{k}" for k in range(len(model.blocks))] if hasattr(model, "blocks") else []


def quantize_step(ctx, model, spec, opts, i):
    from ..exporters import export
    from .data import dataset_calibration

    o = step_options("quantize", opts, QUANT_OPTIONS)
    if o["method"] not in ("ptq", "qat", "auto"):
        raise CompressError(f"quantize method {o['method']!r}: use ptq, qat or auto (PTQ, then QAT if over budget)")
    bad = sorted(set(o["backends"]) - set(SUFFIX))
    if bad:
        raise CompressError(f"quantize backends {bad}: INT8 here covers {sorted(SUFFIX)} (TFLite INT8 is an export precision)")
    d = ctx.out / f"step{i + 1}_quantize"
    d.mkdir(parents=True, exist_ok=True)
    budget = o["max_drop"]
    rows, failed = [], []
    floats = {}
    for fmt in o["backends"]:
        res = export(model, spec, d / f"float{SUFFIX[fmt]}", dynamic_batch=True)
        floats[fmt] = (res.path, res.spec, ctx.evaluate_artifact(res.path))
        rows.append({**floats[fmt][2], "backend": fmt, "precision": "fp32"})
    calib = dataset_calibration(ctx.splits.train, floats[o["backends"][0]][1], o["calibration"], ctx.cfg.seed)
    base_keep = tuple(o["keep_float"])

    def judge(fmt, path, keep, how):
        row = {**ctx.evaluate_artifact(path, test=False), "backend": fmt, "precision": "int8", "method": how,
               "keep_float": list(keep)}
        row["drop_pts"] = round((floats[fmt][2]["val_top1"] - row["val_top1"]) * 100, 3)
        row["within_budget"] = budget is None or row["drop_pts"] <= budget
        ctx.console.print(f"{fmt} {how} keep_float={list(keep) or 'none'}: val top-1 {row['val_top1']:.4f} "
                          f"(drop {row['drop_pts']:+.2f} pts{'' if budget is None else f', budget {budget}'})")
        return row

    if o["method"] in ("ptq", "auto"):
        for fmt in o["backends"]:
            src, fspec, _ = floats[fmt]
            attempts = []
            for keep in _ladder(ctx, model, fmt, src, fspec, calib, base_keep, o, judge, attempts, d, budget):
                if attempts[-1]["within_budget"]:
                    break
            # the first attempt within budget (the ladder stops there), else the most accurate one tried
            best = attempts[-1] if attempts[-1]["within_budget"] else max(attempts, key=lambda a: a["val_top1"])
            for a in attempts:
                a["final"] = a is best
            best["notes"] = f"chosen of {len(attempts)} attempt(s)"
            rows.extend(attempts)
            if not best["within_budget"]:
                failed.append(fmt)
    if o["method"] == "qat" or (o["method"] == "auto" and failed):
        targets = o["backends"] if o["method"] == "qat" else failed
        qat_rows = _qat_rows(ctx, model, spec, o, base_keep, targets, d, judge, i)
        rows.extend(qat_rows)
        failed = [r["backend"] for r in qat_rows if not r["within_budget"]]
    finals = [r for r in rows if r["precision"] == "int8" and r.get("final")] or [r for r in rows if r["precision"] == "int8"]
    for r in finals:
        if ctx.test is not None and r.get("test_top1") is None:
            r["test_top1"] = ctx.evaluate_artifact(Path(r["artifact"]))["test_top1"]
    if failed:
        ctx.console.print(f"[red]INT8 stays over the {budget}-point budget on {failed} after every fallback[/red]")
        raise CompressError(f"INT8 on {failed} cannot stay within max_drop={budget} points of the float model on the "
                            f"validation set; attempts: {[(r['backend'], r.get('method'), r['keep_float'], r['drop_pts']) for r in rows if r['precision'] == 'int8']}. "
                            "Raise max_drop, use method: qat (or more qat_epochs), or fine-tune the float model longer", rows)
    return model, spec, {"rows": rows, "max_drop": budget}


def _ladder(ctx, model, fmt, src, fspec, calib, base_keep, o, judge, attempts, d, budget):
    """Yield after each attempt, keeping more in float each time: as asked; + first/last layers; + SE blocks;
    then whole stages, most sensitive first (each stage's sensitivity measured alone), up to max_float_layers."""
    def attempt(keep, how):
        path = d / f"int8_{fmt}_{len(attempts)}{SUFFIX[fmt]}"
        quantize_file(fmt, src, path, fspec, calib, keep_float=keep, method=o["calibration_method"], per_channel=o["per_channel"],
                      overflow_fix=o["overflow_fix"])
        attempts.append(judge(fmt, path, keep, how))

    attempt(base_keep, "ptq")
    yield
    if budget is None:
        return
    keep = tuple(dict.fromkeys(base_keep + FIRST_LAST))
    attempt(keep, "ptq fallback: first/last layers float")
    yield
    keep = tuple(dict.fromkeys(keep + ("se",)))
    attempt(keep, "ptq fallback: + SE blocks float")
    yield
    gains = []
    for blk in _blocks(model):  # sensitivity: how much keeping this stage in float alone recovers
        probe = d / f"probe_{fmt}{SUFFIX[fmt]}"
        quantize_file(fmt, src, probe, fspec, calib, keep_float=keep + (blk,), method=o["calibration_method"], per_channel=o["per_channel"],
                      overflow_fix=o["overflow_fix"])
        gains.append((judge(fmt, probe, keep + (blk,), "sensitivity probe")["val_top1"], blk))
    for scratch in (probe, probe.with_suffix(".bin"), probe.with_name(probe.name + ".json")) if gains else ():
        scratch.unlink(missing_ok=True)  # probes are measurements, not artifacts to ship
    for _, blk in sorted(gains, reverse=True)[: o["max_float_layers"]]:
        keep = keep + (blk,)
        attempt(keep, f"ptq fallback: + {blk} float (ranked)")
        yield


def _qat_rows(ctx, model, spec, o, keep, targets, d, judge, i):
    import copy

    from ..artifacts import staging
    from ..exporters import export
    from ..exporters.openvino import onnx_to_openvino
    from .data import dataset_calibration
    from .qat import qat

    ctx.console.print(f"QAT with NNCF on PyTorch ({o['qat_epochs']} epoch(s), lr {o['qat_lr']}) for {targets}")
    calib = dataset_calibration(ctx.splits.train, spec, o["calibration"], ctx.cfg.seed)  # float NCHW for PyTorch
    tcfg = train_config(ctx, spec, {"epochs": o["qat_epochs"], "lr": o["qat_lr"], "min_lr": o["qat_lr"] / 10,
                                     "warmup_epochs": 0.0, "ema": False, "limit_train": o["qat_limit_train"],
                                     "freeze_bn": True},  # re-estimated BN stats cost ~0.4 points in one QAT epoch
                        ctx.out / f"step{i + 1}_qat")
    # the float model teaches its own fake-quantized copy: soft targets keep QAT from drifting off what it knew
    qmodel, qspec, trained = qat(model, spec, tcfg, calib, keep, teacher=copy.deepcopy(model) if o["qat_distill"] else None,
                                 overflow_fix=o["overflow_fix"])
    rows = []
    with staging(d / "int8_qat") as scratch:  # carries the pid: a killed run's folder is cleared by the next one
        tmp = scratch.parent
        qdq = export(qmodel, qspec, Path(tmp) / "qat_qdq.onnx", dynamic_batch=True, verify=False)
        qdq_spec = qdq.spec.replace(artifact={**qdq.spec.artifact, "precision": "int8", "quantizer": "nncf QAT (QDQ)"})
        for fmt in targets:
            if fmt == "onnx":  # ONNX Runtime's own PTQ on the QAT-trained weights: every Conv an int8 QLinearConv
                path = d / "int8_qat.onnx"
                flt = export(trained, qspec, Path(tmp) / "qat_float.onnx", dynamic_batch=True, verify=False)
                ucalib = dataset_calibration(ctx.splits.train, flt.spec, o["calibration"], ctx.cfg.seed)
                quantize_file("onnx", flt.path, path, flt.spec, ucalib, keep_float=keep, method=o["calibration_method"],
                              per_channel=o["per_channel"], overflow_fix=o["overflow_fix"])
            else:  # OpenVINO runs NNCF's own Q/DQ graph, with the ranges QAT learned
                path = d / "int8_qat.xml"
                staged = Path(tmp) / path.name
                vspec = onnx_to_openvino(qdq.path, qdq_spec, staged)
                publish_int8("openvino", staged, path, vspec.replace(artifact={**vspec.artifact, "precision": "int8",
                                                                               "quantizer": "nncf QAT (QDQ)"}))
            rows.append({**judge(fmt, path, keep, "qat"), "final": True})
    return rows


STEP_FUNCS = {"prune": prune_step, "finetune": finetune_step, "quantize": quantize_step}
