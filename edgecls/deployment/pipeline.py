"""`edgecls deploy`: a folder of photos -> a trained, calibrated, INT8-under-budget, exported, verified and benchmarked
model for each runtime, with one report. Each step is a stage (stages.py) with declared inputs and one output folder:

  data             OUT/data/          every file checked; split; train/val duplicates       <- the folders' listing
  recipe           OUT/recipe/        TrainConfig chosen from the data (or given)           <- data summary, settings
  train            OUT/model/         model.pt (best epoch, temperature fitted), metrics    <- recipe, data content
  fp32-<target>    OUT/<target>/fp32/ exported, verified against PyTorch, evaluated on val  <- model
  int8-<target>    OUT/<target>/int8/ PTQ + float fallbacks under max_drop (paired test)    <- model, fp32, calibration
  bench            OUT/bench/         edgecls-bench: latency, size, cold start              <- every artifact
  report           OUT/report.html/.md/.json (always rewritten; cheap)

A stage reruns only when its inputs changed; a killed run resumes where it stopped (training from its last epoch).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import stats
from ..configfile import format_duration
from ..errors import DeployError, EdgeclsError
from ..runtime.artifacts import atomic_write_bytes
from ..runtime.runtimes import artifact_files
from .config import DeployConfig
from .data import content_digest, datasets, is_multilabel, listing, read_record, scan_data, truth
from .stages import StageResult, Stages, digest


@dataclass
class DeployResult:
    out: Path
    report: Path
    picks: dict  # "overall" and per target: {"artifact", "why", ...}
    stages: dict[str, StageResult]
    skipped: dict[str, str] = field(default_factory=dict)  # target -> why it was not built here
    report_data: dict = field(default_factory=dict)


def deploy(data: str | os.PathLike | None = None, *, config: DeployConfig | dict | str | None = None, console=None,
           **settings: Any) -> DeployResult:
    """Run (or resume) a deploy. `edgecls.deploy("photos/", targets=["onnxruntime", "litert"], max_drop=1.0,
    out="deploy_out")`; settings are DeployConfig fields; config: a DeployConfig, a dict or a YAML path."""
    if isinstance(config, (str, os.PathLike)):
        config = DeployConfig.from_yaml(config).to_dict()
    base = config.to_dict() if isinstance(config, DeployConfig) else dict(config or {})
    if data is not None:
        base["data"] = str(data)
    cfg = DeployConfig.from_dict({**base, **settings})
    return Pipeline(cfg, console).run()


@contextlib.contextmanager
def _lock(folder: Path):
    import fcntl

    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DeployError(f"another edgecls deploy is writing to {folder.parent}; wait for it or use another -o") from None
        yield


class Pipeline:
    def __init__(self, cfg: DeployConfig, console=None):
        from ..quiet import console as own_console

        self.cfg = cfg
        self.out = Path(cfg.out)
        # logs and CI are not terminals: do not squeeze the tables to 80 columns
        self.con = console or own_console(width=160)
        self.stages = Stages(self.out, log=lambda s: self.con.print(s, markup=False, highlight=False))
        self.skipped: dict[str, str] = {}
        self.deadline: float | None = None  # time.monotonic() by which the whole run should end (--time-limit)
        self._val_px: np.ndarray | None = None
        self.multilabel = False  # set by the data stage: a labels manifest (mAP instead of top-1 throughout)
        # data, recipe, train; fp32 + int8 per target; unknown images (with ood folders); bench, report
        self.n_stages = 3 + 2 * len(cfg.targets) + bool(cfg.ood) + 2
        self.k = 0

    # --- helpers -------------------------------------------------------------------------------------------
    def _say(self, text: str, style: str = "") -> None:
        from rich.markup import escape

        self.con.print(f"[{style}]{escape(text)}[/]" if style else escape(text), highlight=False)

    def _header(self, name: str) -> None:
        self.k += 1
        self.con.rule(f"[bold]stage {self.k}/{self.n_stages}: {name}")

    def _run(self, name: str, folder: Path, inputs: dict, fn) -> StageResult:
        self._header(name)
        r = self.stages.run(name, folder, inputs, fn)
        if r.reused:
            self._say(f"{name}: reused {folder} (inputs unchanged; it took {r.seconds:.0f} s when made)", "green")
        else:
            self._say(f"{name}: done in {r.seconds:.0f} s (CPU {r.cpu_seconds:.0f} s)")
        return r

    def _progress(self):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        TimeRemainingColumn(), console=self.con, transient=True)

    # --- run -----------------------------------------------------------------------------------------------
    def run(self) -> DeployResult:
        from ..runtime.denormals import flush_denormals

        t0, c0 = time.perf_counter(), time.process_time()
        limit = self.cfg.time_limit_s
        self.deadline = time.monotonic() + limit if limit else None
        if self.cfg.threads:
            import torch

            torch.set_num_threads(self.cfg.threads)
        with _lock(self.stages.state), flush_denormals():
            data = self.stage_data()
            recipe = self.stage_recipe(data)
            model = self.stage_train(data, recipe)
            arts: dict[str, dict[str, StageResult]] = {}
            for t in self.cfg.targets:
                arts[t] = self.stage_target(t, data, model)
            ood = self.stage_ood(data, model, arts)
            bench = self.stage_bench(arts)
            from ..report.deploy import build_report, write_report

            self.k += 1
            self.con.rule(f"[bold]stage {self.k}/{self.n_stages}: report")
            ctx = self._report_context(data, recipe, model, arts, bench, time.perf_counter() - t0, time.process_time() - c0)
            ctx["ood"] = ood
            report = build_report(ctx)
            path = write_report(report, self.out)
        self._final_summary(ctx, path)
        return DeployResult(self.out, path, ctx["picks"], dict(self.stages.done), dict(self.skipped), report)

    # --- data ----------------------------------------------------------------------------------------------
    def stage_data(self) -> StageResult:
        from .data import find_splits

        c = self.cfg
        train_root, val_root, _ = find_splits(c.data, c.val_dir)
        inputs = {"listing": digest(listing(train_root, val_root)), "strict": c.strict, "dedup": c.dedup,
                  "val_fraction": c.val_fraction if val_root is None else None, "seed": c.seed}

        def fn(staging: Path, work: Path) -> dict:
            with self._progress() as bar:
                tasks: dict[str, Any] = {}

                def progress(what, i, n):
                    if what not in tasks:
                        tasks[what] = bar.add_task(what, total=n)
                    bar.update(tasks[what], completed=i)

                record = scan_data(c.data, c.val_dir, strict=c.strict, dedup=c.dedup, val_fraction=c.val_fraction,
                                   seed=c.seed, progress=progress)
            atomic_write_bytes(staging / "data.json", json.dumps(record, indent=1).encode())
            return {"summary": record["summary"], "content": digest(content_digest(record))}

        r = self._run("data", self.out / "data", inputs, fn)
        s = r.result["summary"]
        self.multilabel = s.get("task") == "multilabel"
        if self.multilabel and c.ood:
            raise DeployError("ood folders measure open-set rejection, which is for single-label models; a multi-label "
                              "model says 'none of the labels' by itself (every score under its threshold)")
        if self.multilabel:
            self._say(f"multi-label data: {s['labels_per_image']:.2f} labels per image on average; judged in mAP"
                      + ("; no open-set threshold or drift reference (single-label only)" if c.open_set else ""), "cyan")
        self._say(f"{len(s['classes'])} classes; {s['n_train']} training / {s['n_val']} validation images ({s['layout']}); "
                  f"{len(s['skipped'])} skipped, {len(s['converted'])} converted, {len(s['duplicates'])} duplicate group(s)"
                  + (f", {len(s['removed_from_val'])} removed from val" if s["removed_from_val"] else ""))
        for sk in s["skipped"][:10]:
            self._say(f"  skipped {sk['path']}: {sk['reason']}", "yellow")
        for sp in s["suspect"][:5]:
            self._say(f"  suspect (kept) {sp['path']}: {sp['why']}", "yellow")
        return r

    # --- recipe ----------------------------------------------------------------------------------------------
    def stage_recipe(self, data: StageResult) -> StageResult:
        from ..configfile import read_yaml_mapping
        from ..models.registry import get_arch
        from .recipe import DataFacts, choose_recipe

        c = self.cfg
        pretrained = c.arch == "auto" or get_arch(c.arch).local_weights  # auto: only candidates with weights
        given = read_yaml_mapping(c.recipe, DeployError, "recipe") if c.recipe else None
        if given:
            given = {k: v for k, v in given.items() if k not in ("data", "val_dir", "out_dir", "resume")}
        facts = DataFacts.from_summary(data.result["summary"], pretrained=pretrained)
        inputs = {"facts": facts.__dict__, "arch": c.arch, "given": given, "overrides": c.train,
                  "time_limit": c.time_limit_s, "seeds": c.seeds}

        def fn(staging: Path, work: Path) -> dict:
            import yaml

            settings, name, why = choose_recipe(facts, c.arch, given=given, overrides=c.train)
            if c.time_limit_s:
                settings["time_limit"] = c.time_limit_s
                why.append(f"time limit {format_duration(c.time_limit_s)} for the whole run: the planner measures the "
                           "candidate settings here and chooses input size, frozen stages, images, epochs and seeds "
                           "(their learning rate, weight decay and smoothing are this row's)")
            if c.seeds:
                settings["seeds"] = c.seeds
            s = data.result["summary"]
            split = {"val_dir": s["val_root"]} if s["val_root"] else {"val_fraction": c.val_fraction}
            recipe_yaml = {"data": s["train_root"], **split, "seed": c.seed, **settings}
            header = ("# chosen by edgecls deploy: " + name + "\n" + "".join(f"#   {w}\n" for w in why)
                      + "# retrain alone with: edgecls train --config recipe.yaml\n")
            atomic_write_bytes(staging / "recipe.yaml", (header + yaml.safe_dump(recipe_yaml, sort_keys=False)).encode())
            return {"settings": settings, "name": name, "why": why}

        r = self._run("recipe", self.out / "recipe", inputs, fn)
        self._say(f"recipe: {r.result['name']}")
        for w in r.result["why"]:
            self._say(f"  - {w}")
        return r

    # --- train -----------------------------------------------------------------------------------------------
    def stage_train(self, data: StageResult, recipe: StageResult) -> StageResult:
        c = self.cfg
        inputs = {"settings": recipe.result["settings"], "data": data.result["content"], "seed": c.seed}
        if c.arch == "auto":  # the latency gate's inputs
            inputs["gate"] = {"budget_ms": c.budget_ms, "targets": c.targets, "threads": c.bench_threads[0]}

        def fn(staging: Path, work: Path) -> dict:
            from ..train import TrainConfig, train
            from ..train.loop import predict_logits

            record = read_record(data.folder)
            tr, va = datasets(record)
            s = record["summary"]
            settings = dict(recipe.result["settings"])
            run = work / "run"
            resume = (run / "checkpoint.pt").is_file() or (run / "plan.json").is_file()
            if resume:
                self._say(f"resuming training in {run}", "cyan")
            tcfg = TrainConfig.from_dict({**settings, "data": s["train_root"], "val_dir": s["val_root"], "seed": c.seed,
                                          "threads": c.threads, "out_dir": str(run), "resume": resume, "eval_test": False})
            t0 = time.process_time()
            extra = {}
            if tcfg.time_limit or (tcfg.seeds or 1) > 1 or tcfg.arch == "auto":
                from ..train.runs import train_planned

                gate = self._gate(tr, tcfg.input_size) if tcfg.arch == "auto" else None
                result = train_planned(tcfg, console=self.con, datasets=(tr, va), deadline=self.deadline,
                                       after_s=self._after_training(len(va)), gate=gate)
                m = result.metrics
                extra = {k: m.get(k) for k in ("plan", "time", "seeds", "seed_spread", "candidates", "pick_why",
                                               "distillation", "stopped", "epochs_planned")}
                extra["gate"] = gate
            else:
                self._ask_before_training(tcfg, tr, va)
                result = train(tcfg, datasets=(tr, va), console=self.con)
            cpu = time.process_time() - t0
            for name in ("best.pt", "best.pt.json", "metrics.json"):
                shutil.copy2(run / name, staging / name.replace("best.pt", "model.pt"))
            for name in ("confusion.png", "reliability.png", "mistakes.png"):  # single-label plots; the gallery needs grad-cam
                if (run / name).is_file():
                    shutil.copy2(run / name, staging / name)
            logits = result.val_logits if result.val_logits is not None else predict_logits(result.model, va, result.spec)
            np.save(staging / "val_logits.npy", logits.astype(np.float32))
            m = result.metrics
            hist = m["history"]
            trained = [h for h in hist if h["epoch"] > 0]  # epoch 0: the linear probe, no training steps
            seen = sum(h["images_per_s"] * h["seconds"] for h in trained)
            common = {"summary": m["summary"], "history": hist, "val": m["val"], "train_cpu_seconds": cpu,
                      "train_images_per_s": seen / max(sum(h["seconds"] for h in trained), 1e-9),
                      "epochs_run": len(trained), "resumed": resume, "arch": result.spec.arch, **extra}
            if self.multilabel:
                return common | {"task": "multilabel", "temperature": None, "thresholds": list(result.spec.thresholds)}
            return common | {"temperature": m["temperature"], "val_calibrated": m["val_calibrated"],
                             "val_pred": logits.argmax(1).tolist()}

        r = self._run("train", self.out / "model", inputs, fn)
        s = r.result["summary"]
        if self.multilabel:
            lo, hi = s["val_map_interval"]
            self._say(f"float model: val mAP {s['val_map']:.4f} [{lo:.4f}, {hi:.4f}] (best epoch {s['best_epoch']} of "
                      f"{r.result['epochs_run']}), micro F1 {s['val_micro_f1']:.3f} at the fitted per-label thresholds")
            return r
        acc = stats.wilson(int(round(s["val_top1"] * r.result["val"]["n"])), r.result["val"]["n"])
        self._say(f"float model: val top-1 {acc.pct()} (best epoch {s['best_epoch']} of {r.result['epochs_run']}), "
                  f"temperature {r.result['temperature']:.2f}, ECE {s['val_ece']:.3f} -> {s['val_ece_calibrated']:.3f}")
        return r

    # --- time ---------------------------------------------------------------------------------------------------
    def _after_training(self, n_val: int):
        """settings -> predicted seconds of the stages after training (timing.py), for the planner."""
        from functools import lru_cache

        from ..compress.targets import TARGETS
        from ..train.probe import macs
        from .timing import after_training_s

        c = self.cfg
        targets = [t for t in c.targets if not TARGETS[t].unavailable()]
        count = lru_cache(maxsize=None)(macs)

        def after(settings) -> float:
            m = max(count(s.arch, s.size) for s in settings)  # only the pick goes on; the largest bounds it
            return after_training_s(m, n_val, targets, bench_runs=c.bench_runs, bench_warmup=c.bench_warmup,
                                    bench_cold=c.bench_cold, calibration=c.calibration) + (60.0 if c.ood else 0.0)

        return after

    def _ask_before_training(self, tcfg, tr, va) -> None:
        """Without a time limit: predict the recipe's training time from a few measured batches, say it, and stop
        before a run over an hour unless --yes."""
        from ..models.registry import default_preprocess, get_arch
        from ..train.probe import Setting, measure
        from .timing import ask_before, predicted_training

        size = tcfg.input_size or default_preprocess(get_arch(tcfg.arch))[1].height
        views = 2 if tcfg.cache_features and tcfg.augment != "none" else 1
        cost = measure(Setting(tcfg.arch, size, tcfg.freeze_stages if tcfg.cache_features else 0), tr, threads=tcfg.threads)
        pred = predicted_training(cost, len(tr), len(va), tcfg.epochs, views)
        ask_before(pred, images_per_s=1 / cost.step_s, epochs=tcfg.epochs, n_train=len(tr), yes=self.cfg.yes,
                   say=lambda t: self._say(t, "cyan"))

    def _gate(self, tr, input_size: int | None) -> dict:
        """arch auto: each candidate's INT8 latency on the targets before training (gate.py)."""
        from ..train.runs import candidates
        from .gate import GATE_CALIBRATION, gate

        c = self.cfg
        idx = np.random.default_rng(c.seed).permutation(len(tr))[:GATE_CALIBRATION]
        px = [tr.pixels(int(i)) for i in idx]
        self._say("latency of each candidate's INT8 artifact, before training"
                  + (f" (budget {c.budget_ms:g} ms end to end)" if c.budget_ms else " (no --budget-ms: first target only)"),
                  "cyan")
        return gate(candidates("auto"), tr.classes, px, c.targets, c.budget_ms, threads=c.bench_threads[0],
                    input_size=input_size, say=lambda t: self._say(t))

    # --- evaluation inputs -----------------------------------------------------------------------------------
    def _model(self, model: StageResult):
        from ..models.pt import load_pt

        if not hasattr(self, "_loaded"):
            self._loaded = load_pt(model.path("model.pt"))
        return self._loaded

    def _val_pixels(self, data: StageResult, spec) -> np.ndarray:
        """Every validation image, resized and cropped once (the Predictor's own preprocess.fast_pixels): each
        artifact then only turns these pixels into its own input tensor (to_input), as the Predictor would."""
        if self._val_px is None:
            from ..runtime import preprocess as _pre

            _, va = datasets(read_record(data.folder))
            cache = self.stages.state / "cache" / f"val-{digest([data.result['content'], spec.preprocess.to_dict(), list(spec.input.shape)])[:16]}.npy"
            if cache.is_file():
                self._val_px = np.load(cache)
            else:
                with self._progress() as bar:
                    task = bar.add_task("preparing validation images", total=len(va))
                    px = []
                    for i in range(len(va)):
                        px.append(_pre.fast_pixels(va.pixels(i), "RGB", spec))
                        bar.advance(task)
                self._val_px = np.stack(px)
                cache.parent.mkdir(parents=True, exist_ok=True)
                atomic_write_bytes(cache, _npy_bytes(self._val_px))
        return self._val_px

    def _inputs(self, pixels: np.ndarray, art_spec) -> np.ndarray:
        from ..runtime import preprocess as _pre

        return np.concatenate([_pre.to_input(p, art_spec) for p in pixels])

    def _evaluate(self, path: Path, data: StageResult, spec, device: str = "cpu") -> np.ndarray:
        return self._evaluate_stats(path, data, spec, device)[0]

    def _val_logits(self, st: StageResult, data: StageResult, spec, device: str = "cpu") -> np.ndarray:
        """An artifact stage's saved validation logits (evaluated again only for a stage made before they were kept)."""
        saved = st.path("val_logits.npy")
        if saved.is_file():
            return np.load(saved)
        return self._evaluate(st.path(st.result["artifact"]), data, spec, device)

    def _evaluate_stats(self, path: Path, data: StageResult, spec, device: str = "cpu") -> tuple[np.ndarray, dict | None]:
        """Validation logits of an artifact on its own runtime, and (with open_set on) the input statistics of the
        same tensors, which the drift reference is built from."""
        from ..runtime.drift import input_stats
        from ..runtime.predictor import Predictor

        pixels = self._val_pixels(data, spec)
        with Predictor(path, threads=self.cfg.threads, device=device) as pred, self._progress() as bar:
            x = self._inputs(pixels, pred.spec)
            step = pred.max_batch or 32
            task = bar.add_task(f"evaluating {path.name} on {len(x)} validation images", total=len(x))
            out = []
            for i in range(0, len(x), step):
                out.append(pred.infer(x[i : i + step]))
                bar.advance(task, min(step, len(x) - i))
            st = input_stats(x, pred.spec) if self.cfg.open_set and not self.multilabel else None
        return np.concatenate(out), st

    def _open_set(self, path: Path, aspec, logits: np.ndarray, st: dict | None):
        """Fit the artifact's rejection threshold and drift reference on its own validation logits and store them in
        it (embedded + sidecar, atomically). INT8 moves the scores, so each artifact gets its own."""
        if not self.cfg.open_set or self.multilabel:  # open-set scores and the drift reference are single-label
            return aspec, None
        from ..openset import reference_spec, restamp
        from ..runtime.scores import ood_score

        # an INT8 build starts from its FP32 spec: its threshold, reference and their lineage step are replaced
        aspec = aspec.replace(lineage=tuple(s for s in aspec.lineage if s.step != "fit_reference"))
        aspec = reference_spec(aspec, logits, st, score=self.cfg.open_set, coverage=self.cfg.coverage,
                               data="deploy validation split")
        restamp(path, aspec)
        o = aspec.open_set
        kept = ood_score(logits, o.score, aspec.temperature) >= o.threshold
        rej = stats.wilson(int((~kept).sum()), len(kept))
        return aspec, {"score": o.score, "threshold": o.threshold, "coverage": o.coverage, "n": o.n,
                       "known_rejected": rej.as_dict(), "unknown_rate": aspec.reference.unknown_rate}

    def _verify_images(self, data: StageResult) -> tuple[dict, list]:
        record = read_record(data.folder)
        rows = record["val"][: self.cfg.verify_images]
        _, va = datasets({**record, "val": rows})
        return {Path(r["path"]).name + f"#{i}": va.pixels(i) for i, r in enumerate(rows)}, [r["sha256"] for r in rows]

    def _calibration(self, data: StageResult, spec) -> tuple[np.ndarray, list]:
        from ..runtime import preprocess as _pre

        record = read_record(data.folder)
        rows = record["train"]
        n = min(self.cfg.calibration, len(rows))
        idx = np.sort(np.random.default_rng(self.cfg.seed).permutation(len(rows))[:n])
        picked = [rows[i] for i in idx]
        tr, _ = datasets({**record, "train": picked})
        with self._progress() as bar:
            task = bar.add_task(f"preparing {n} calibration images", total=n)
            px = []
            for i in range(n):
                px.append(_pre.fast_pixels(tr.pixels(i), "RGB", spec))
                bar.advance(task)
        return np.stack(px), [r["sha256"] for r in picked]

    # --- one target: FP32 then INT8 ----------------------------------------------------------------------------
    def stage_target(self, name: str, data: StageResult, model: StageResult) -> dict[str, StageResult]:
        from ..compress.targets import TARGETS

        t = TARGETS[name]
        why = t.unavailable()
        if why:
            self.k += 2
            self.con.rule(f"[bold]{name}: skipped")
            self._say(f"{name}: skipped: {why}", "yellow")
            self.skipped[name] = why
            return {}
        mdl, spec = self._model(model)
        labels = truth(read_record(data.folder))
        verify_imgs, verify_hashes = self._verify_images(data)
        model_digest = model.files["model.pt"]
        fin = {"model": model_digest, "target": name, "verify": verify_hashes, "val": data.result["content"],
               "open_set": [self.cfg.open_set, self.cfg.coverage]}

        def fp32(staging: Path, work: Path) -> dict:
            path = staging / f"fp32{t.suffix}"
            with self.con.status(f"exporting {name} FP32 and checking it against PyTorch on {len(verify_imgs)} images ..."):
                aspec = t.export_float(mdl, spec, path, verify_imgs)
            logits, st = self._evaluate_stats(path, data, spec, t.device)
            np.save(staging / "val_logits.npy", logits.astype(np.float32))  # the INT8 decision and unknown images reuse them
            aspec, open_set = self._open_set(path, aspec, logits, st)
            return _artifact_result(path, aspec, logits, labels) | {"open_set": open_set}

        f = self._run(f"fp32-{name}", self.out / name / "fp32", fin, fp32)
        if self.multilabel:
            from ..compress.budget import multilabel_decision
            from ..runtime.scores import sigmoid

            fcorrect = sigmoid(self._val_logits(f, data, spec, t.device))  # per-image scores: the paired mAP bootstrap
            decide = multilabel_decision(labels)
        else:
            from ..compress.budget import top1_decision

            fcorrect, decide = np.asarray(f.result["val_pred"]) == labels, top1_decision
        self._say(f"{name} FP32: val {_acc_text(f.result)}")
        out = {"fp32": f}

        from ..runtime.artifacts import read_sidecar

        fpath = f.path(f.result["artifact"])
        fspec = read_sidecar(fpath)
        calib_px, calib_hashes = None, None
        iin = {"model": model_digest, "fp32": f.digest, "target": name, "max_drop": self.cfg.max_drop,
               "calibration": {"n": self.cfg.calibration, "seed": self.cfg.seed, "data": data.result["content"]},
               "keep_float": self.cfg.int8_keep_float, "verify": verify_hashes, "target_cpu": self.cfg.target_cpu,
               "open_set": [self.cfg.open_set, self.cfg.coverage]}

        def int8(staging: Path, work: Path) -> dict:
            from ..compress.budget import ladder, remove_artifact
            from ..compress.targets import Int8Job

            nonlocal calib_px, calib_hashes
            calib_px, calib_hashes = self._calibration(data, spec)
            calib = self._inputs(calib_px, fspec)
            evaluated: dict[str, tuple] = {}

            def correct(path: Path) -> np.ndarray:
                logits, st = self._evaluate_stats(path, data, spec, t.device)
                evaluated[str(path)] = (logits, st)
                if self.multilabel:
                    from ..runtime.scores import sigmoid

                    return sigmoid(logits)
                return logits.argmax(1) == labels

            job = Int8Job(mdl, spec, fpath, fspec, calib, work / "int8", (), {"target_cpu": self.cfg.target_cpu}, verify_imgs)
            attempts = ladder(t, job, correct, fcorrect, self.cfg.max_drop, work, max_float_layers=self.cfg.int8_keep_float,
                              log=lambda s: self._say(s), name=name, decide=decide)
            chosen = next((a for a in attempts if a["final"]), None)
            res = {"attempts": attempts, "calibration_images": len(calib), "calibration_sha256": digest(calib_hashes)}
            if chosen is None:
                res["error"] = "; ".join(a.get("error", "") for a in attempts) or "no INT8 attempt could be built"
                return res
            src = Path(chosen["artifact"])
            dst = staging / f"int8{t.suffix}"
            _move_artifact(src, dst)
            for a in attempts:
                if a is not chosen and a["method"] != "sensitivity probe":
                    remove_artifact(Path(a["artifact"]))
            from ..runtime.artifacts import read_sidecar as _rs

            qlogits, qstats = evaluated[str(src)]
            np.save(staging / "val_logits.npy", qlogits.astype(np.float32))
            if self.multilabel:  # INT8 moves the scores: its own per-label thresholds, as compress does
                from ..compress.steps import refit_thresholds
                from ..runtime.scores import sigmoid

                res["thresholds"] = refit_thresholds(dst, sigmoid(qlogits), labels)
            qspec, res["open_set"] = self._open_set(dst, _rs(dst), qlogits, qstats)
            res.update(_artifact_result(dst, qspec, qlogits, labels))
            res["within_budget"] = chosen["within_budget"]
            res["budget"] = chosen.get("budget")
            res["keep_float"] = chosen["keep_float"]
            res["method"] = chosen["method"]
            return res

        q = self._run(f"int8-{name}", self.out / name / "int8", iin, int8)
        out["int8"] = q
        if "error" in q.result:
            self._say(f"{name} INT8: not built: {q.result['error']}", "red")
        else:
            style = "green" if q.result["within_budget"] else "red"
            self._say(f"{name} INT8: val {_acc_text(q.result)}; {q.result['budget']}", style)
        return out

    # --- unknown images ----------------------------------------------------------------------------------------
    def stage_ood(self, data: StageResult, model: StageResult, arts: dict[str, dict[str, StageResult]]) -> StageResult | None:
        """Every artifact's open-set scores on the validation images against each folder of unknown images."""
        if not self.cfg.ood:
            return None
        from ..compress.targets import TARGETS
        from ..openset.fit import list_images, ood_report, run_images
        from ..runtime.artifacts import file_sha256
        from ..runtime.predictor import Predictor

        folders = {str(d): list_images(d, "ood folder") for d in self.cfg.ood}
        built = [(t, prec, r) for t, per in arts.items() for prec, r in per.items() if "artifact" in r.result]
        inputs = {"artifacts": [r.digest for _, _, r in built], "val": data.result["content"],
                  "ood": {d: [file_sha256(f) for f in files] for d, files in folders.items()}}
        labels = truth(read_record(data.folder))
        _, spec = self._model(model)

        def fn(staging: Path, work: Path) -> dict:
            rows = []
            for t, prec, r in built:
                path = r.path(r.result["artifact"])
                known = self._val_logits(r, data, spec, TARGETS[t].device)
                with Predictor(path, threads=self.cfg.threads, device=TARGETS[t].device) as pred, self.con.status(f"{path.name}: unknown images ..."):
                    unknown = {d: run_images(pred, files)[0] for d, files in folders.items()}
                    aspec = pred.spec
                rows.append({"target": t, "precision": prec, "artifact": str(path.relative_to(self.out)),
                             **ood_report(aspec, known, unknown, y=labels, n_boot=1000, seed=self.cfg.seed)})
            atomic_write_bytes(staging / "ood.json", json.dumps(rows, indent=1).encode())
            return {"rows": rows, "folders": {d: len(f) for d, f in folders.items()}}

        r = self._run("unknown images", self.out / "ood", inputs, fn)
        for row in r.result["rows"]:
            best = {d: max(v["scores"].values(), key=lambda m: m["auroc"]) for d, v in row["sets"].items()}
            self._say(f"{row['target']} {row['precision']}: " + "; ".join(
                f"{Path(d).name}: AUROC {m['auroc']:.3f}, rejected {row['sets'][d].get('rejected', {}).get('value', float('nan')):.0%}"
                for d, m in best.items()))
        return r

    # --- bench -----------------------------------------------------------------------------------------------
    def stage_bench(self, arts: dict[str, dict[str, StageResult]]) -> StageResult | None:
        c = self.cfg
        paths = [(r.path(r.result["artifact"]), r.digest) for per in arts.values() for r in per.values() if "artifact" in r.result]
        if not paths:
            self.k += 1
            self._say("bench: nothing to benchmark", "yellow")
            return None
        opts = {"runs": c.bench_runs, "warmup": c.bench_warmup, "threads": c.bench_threads, "cold": c.bench_cold}
        inputs = {"artifacts": [d for _, d in paths], "options": opts}

        def fn(staging: Path, work: Path) -> dict:
            from rich.markup import escape as _escape

            from ..bench.fingerprint import fingerprint
            from ..bench.runner import BenchOptions, bench_artifact
            from ..report import bench as bench_report

            bo = BenchOptions(warmup=c.bench_warmup, runs=c.bench_runs, threads=list(c.bench_threads), batch_sizes=[1],
                              cold_start=c.bench_cold)
            rows, errors = [], {}
            with self._progress() as bar:
                task = bar.add_task("benchmarking", total=len(paths) * len(c.bench_threads))
                for p, _ in paths:
                    try:
                        rows += bench_artifact(p, bo, progress=lambda s: bar.update(task, description=_escape(s)),
                                               advance=lambda: bar.advance(task))
                    except (EdgeclsError, OSError) as exc:
                        errors[str(p)] = str(exc)
            if not rows:
                return {"error": "no artifact could be benchmarked: " + "; ".join(f"{k}: {v}" for k, v in errors.items())}
            result = bench_report.make_result(rows, fingerprint(list(c.bench_threads)), bo.as_dict())
            bench_report.write_reports(result, staging)
            bench_report.print_table(result, self.con)
            return {"rows": [bench_report.flat(r) | {"path": r["path"]} for r in rows], "errors": errors,
                    "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
                    "device": {k: result["device"].get(k) for k in ("cpu", "os", "python", "versions")}}

        return self._run("bench", self.out / "bench", inputs, fn)

    # --- report --------------------------------------------------------------------------------------------------
    def _report_context(self, data, recipe, model, arts, bench, wall, cpu) -> dict:
        from .pick import picks

        record = read_record(data.folder)
        labels = truth(record).tolist()
        ctx = {"task": "multilabel" if is_multilabel(record) else "multiclass", "config": self.cfg.to_dict(), "config_defaults": {k: v["default"] for k, v in DeployConfig.help().items()}, "out": str(self.out), "data": data, "recipe": recipe, "model": model,
               "artifacts": arts, "bench": bench, "skipped_targets": dict(self.skipped), "labels": labels,
               "stages": dict(self.stages.done), "wall_seconds": wall, "cpu_seconds": cpu}
        ctx["picks"] = picks(ctx)
        return ctx

    def _final_summary(self, ctx: dict, path: Path) -> None:
        from rich.markup import escape

        p = ctx["picks"]
        for t, pk in p.get("targets", {}).items():
            self._say(f"pick for {t}: {pk['why']}")
        overall = p.get("overall")
        if overall:
            style = "green" if overall.get("meets_budgets") else "yellow"
            self.con.print(f"[bold {style}]overall pick:[/] {escape(overall['why'])}", highlight=False)
        for t, why in self.skipped.items():
            self._say(f"{t}: skipped: {why}", "yellow")
        limit = self.cfg.time_limit_s
        if limit:
            over = ctx["wall_seconds"] / limit - 1
            self._say(f"time: {format_duration(ctx['wall_seconds'])} of the {format_duration(limit)} limit"
                      + (f" ({over:+.0%})" if over > 0 else ""), "green" if over <= 0.10 else "yellow")
        self.con.print(f"[bold]report:[/] {escape(str(path))}", highlight=False)


def _npy_bytes(a: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


def _acc_text(result: dict) -> str:
    """'top-1 96.1% [91.7, 98.2] (147/153)', or 'mAP 0.8421 [0.8312, 0.8530] (n=500)' for a multi-label artifact."""
    if "val_map" in result:
        lo, hi = result["val_interval"]
        return f"mAP {result['val_map']:.4f} [{lo:.4f}, {hi:.4f}] (n={result['n']})"
    return "top-1 " + stats.Proportion(result["k"], result["n"], result["val_top1"], *result["val_interval"]).pct()


def _artifact_result(path: Path, aspec, logits: np.ndarray, labels: np.ndarray) -> dict:
    """An artifact's row: its validation figures (top-1, or mAP and F1 at its thresholds for multi-label truth) with
    intervals, its size, and its lineage."""
    files = artifact_files(path)
    # the check of THIS file (INT8 by PTQ has none: evaluated on val); fitting the open-set threshold comes after it
    last = next((s for s in reversed(aspec.lineage) if s.step != "fit_reference"), None)
    verify = last.metrics if last is not None and last.step == "export" and last.metrics else None
    row = {"artifact": path.name, "file_mb": round(sum(p.stat().st_size for p in files) / 1e6, 3),
           "precision": aspec.artifact.get("precision"), "format": aspec.artifact.get("format"), "verify": verify,
           "lineage": [{"step": s.step, "params": s.params, "metrics": s.metrics} for s in aspec.lineage]}
    if labels.ndim == 2:
        from ..evaluation.multilabel import metrics
        from ..runtime.scores import sigmoid

        m = metrics(labels, sigmoid(logits), aspec.labels, aspec.label_thresholds)
        return row | {"val_map": m["map"]["value"], "val_interval": m["map"]["interval"], "n": m["n"],
                      "micro_f1": m["micro_f1"], "macro_f1": m["macro_f1"], "per_label": m["per_label"]}
    pred = logits.argmax(1)
    acc = stats.accuracy(pred == labels)
    return row | {"val_pred": pred.tolist(), "val_top1": acc.value, "val_interval": [acc.lo, acc.hi], "k": acc.k, "n": acc.n}


def _move_artifact(src: Path, dst: Path) -> None:
    """An artifact, its companion weights (.bin) and its sidecar, renamed together (OpenVINO finds the .bin by stem)."""
    pairs = [(src, dst), (src.with_name(src.name + ".json"), dst.with_name(dst.name + ".json"))]
    pairs += [(f, dst.with_suffix(f.suffix)) for f in artifact_files(src)[1:]]
    for a, b in pairs:
        if a.exists():
            shutil.move(str(a), str(b))


__all__ = ["DeployResult", "Pipeline", "deploy"]
