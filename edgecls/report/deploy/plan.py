"""The deploy report's sections on what training was given and chose: the time plan (predicted and taken, and what
more time would buy) and the backbones and seeds compared (each with its interval, its seeds' spread and latency)."""

from __future__ import annotations

from ...configfile import format_duration
from ..document import Section
from ..format import pct


def _d(s: float | None) -> str:
    return "-" if s is None else format_duration(s)


def plan_section(ctx: dict) -> Section | None:
    m = ctx["model"].result
    plan, t = m.get("plan"), m.get("time")
    if not plan or not t or not t.get("limit_s"):  # no time limit: nothing was planned against one
        return None
    cfg = ctx["config"]
    limit = t.get("limit_s")
    s = Section("plan", "Time plan")
    pred, act = t["predicted"], t["actual"]
    after_actual = sum(st.seconds for name, st in ctx["stages"].items() if name not in ("data", "recipe", "train")
                       and not st.reused)
    before = sum(st.seconds for name, st in ctx["stages"].items() if name in ("data", "recipe") and not st.reused)
    if limit:
        wall = ctx["wall_seconds"]
        over = wall / limit - 1
        (s.p if over <= 0.10 else s.warn)(
            f"Time limit {format_duration(limit)}; this run took {format_duration(wall)} "
            f"({'within' if over <= 0 else f'{over:+.1%} over'} the limit"
            + (", more than the 10% the planner allows itself: see the rows below" if over > 0.10 else "") + ").")
    s.items(plan["why"])
    runs = plan["runs"]
    rows = [[r["label"], r["views"], f"{1 / r['cost']['cache_s']:.0f}" if r["cost"]["cache_s"] else "-",
             f"{1 / r['cost']['step_s']:.0f}" if r["cost"]["step_s"] else "-", f"{r['cost']['bytes_per_view'] / 1024:.0f}"]
            for r in runs]
    s.table(["setting", "views cached", "cache img/s", "training img/s", "KiB per view"], rows)
    s.p(f"Training images: {plan['n_train']} of {plan['n_available']}; validation {plan['n_val']}; {plan['epochs']} "
        f"epoch(s) x {plan['seeds']} seed(s) per backbone. Speeds measured here on a few batches before choosing "
        f"(the planner measured {len(plan.get('probes', []))} setting(s) in {_d(act.get('plan'))}).")
    s.table(["part", "predicted", "took"], [
        ["data scan, recipe", "-", _d(before)],
        ["measuring settings", _d(pred.get("probe")), _d(act.get("plan"))],
        ["cache + epochs (all runs)", _d(pred["cache"] + pred["train"]), _d(act.get("runs"))],
        ["distillation", "-", _d(act.get("distill")) if act.get("distill", 0) > 1 else "-"],
        ["finish (the pick on the images)", _d(pred["finish"]), _d(act.get("finish"))],
        ["export, INT8, benchmark", _d(pred.get("after")), _d(after_actual)],
        ["whole run", _d(limit), _d(ctx["wall_seconds"])],
    ])
    if m.get("stopped"):
        s.p(f"The kept run stopped on time: {m['stopped']}.")
    if t.get("more_time"):
        s.p("What more time would buy:")
        s.items(t["more_time"])
    s.data = {"plan": plan, "time": t, "after_training_s": after_actual, "wall_seconds": ctx["wall_seconds"],
              "limit_s": limit, "config_time_limit": cfg.get("time_limit")}
    return s


def candidates_section(ctx: dict) -> Section | None:
    """Each backbone compared (arch auto) and each seed: figure with interval, spread across seeds, latency."""
    m = ctx["model"].result
    seeds, cands, gate = m.get("seeds"), m.get("candidates"), m.get("gate") or {}
    if not seeds:
        return None
    if not cands and all(len(v) < 2 for v in seeds.values()):
        return None
    s = Section("candidates", "Backbones and seeds")
    metric = "mAP" if ctx.get("task") == "multilabel" else "top-1"
    if cands:
        rows = []
        for c in cands:
            sp = c["seed_spread"]
            spread = (pct(sp["mean"], 2) + (f" [{pct(sp['lo'], 2)}, {pct(sp['hi'], 2)}]" if sp.get("lo") is not None else "")
                      + f" (n={sp['n']})")
            lat = "-" if c.get("latency_ms") is None else f"{c['latency_ms']:.2f} ms"
            rows.append([("**" if c["picked"] else "") + c["name"] + (" (pick)" if c["picked"] else ""),
                         f"{pct(c['value'], 2)} [{pct(c['interval'][0], 2)}, {pct(c['interval'][1], 2)}]", spread, lat,
                         "yes" if c["eligible"] else "no", c.get("vs_pick", "-")])
        s.table(["backbone", f"val {metric}, best seed [95%]", "mean over seeds [95%]", "INT8 latency (gate)",
                 "within budget", "against the pick"], rows)
        s.items(m.get("pick_why") or [])
        dropped = (m.get("plan") or {}).get("dropped") or []
        for d in dropped:
            arch = d.split(":")[0]
            g = gate.get(arch, {})
            s.p(f"Not compared: {d}" + (f" (INT8 latency {g['best_ms']:.2f} ms)" if g.get("best_ms") is not None else ""))
    rows = []
    for name, rs in seeds.items():
        for r in rs:
            rows.append([name, r["seed"], pct(r["val"], 2), r["best_epoch"], r["epochs_run"], r.get("stopped") or "-"])
    s.table(["backbone", "seed", f"val {metric}", "best epoch", "epochs run", "stopped"], rows)
    s.p("Every seed trains on the same split. The kept model is the best seed on validation, so its figure is "
        "slightly optimistic; the mean over seeds with its Student-t interval is what another seed would give. A "
        "backbone is called more accurate only when the paired test on the validation images says so and it wins in "
        "every seed.")
    d = m.get("distillation")
    if d:
        if "val" in d:
            s.p(f"Distillation of {d['student']} from {d['teacher']}'s cached logits (alpha {d['alpha']}, T "
                f"{d['temperature']}): {pct(d['val'], 2)} against {pct(d['undistilled'], 2)} undistilled"
                + (f"; {d['test']}" if d.get("test") else "") + ("; kept." if d["kept"] else "; not kept."))
        else:
            s.p(f"No distillation from {d['teacher']}: {d['why']}.")
    s.data = {"candidates": cands, "seeds": seeds, "seed_spread": m.get("seed_spread"), "gate": gate,
              "distillation": d, "pick_why": m.get("pick_why")}
    return s


__all__ = ["candidates_section", "plan_section"]
