"""`edgecls info MODEL`: a model's spec (labels, input, preprocessing, open-set and drift data, lineage) and the machine
it was loaded on (architecture, CPU, INT8 features, emulation), against the CPU class an INT8 artifact was built for."""

from __future__ import annotations

from .flags import add_backend_flag

NAME = "info"
HELP = "show a model's spec: labels, preprocessing, lineage"


def add_arguments(p) -> None:
    p.add_argument("model")
    add_backend_flag(p)
    p.add_argument("--json", action="store_true", help="print the full spec JSON")


def run(a) -> int:
    from .. import Predictor
    from ..runtime.cpuinfo import describe, describe_text
    from .render import console, text

    pred = Predictor(a.model, backend=a.backend)
    mine = describe()
    s = pred.spec
    if a.json:
        print(s.to_json())
        return 0
    con = console()
    i, p = s.input, s.preprocess
    con.print(f"[bold]{text(pred.path)}[/]  " + text(f"backend={pred.backend_name}  arch={s.arch}  classes={s.num_classes}"))
    con.print(text(f"artifact: {s.artifact}"))
    con.print(text(f"this machine: {describe_text(mine)}"))
    if s.artifact.get("precision") and "int8" in str(s.artifact["precision"]):
        built = s.target_cpu or "not recorded (built before target CPUs were recorded)"
        match = "" if s.target_cpu is None or mine["target_cpu"] is None else (
            " (this machine's class)" if s.target_cpu == mine["target_cpu"] else f" (this machine is {mine['target_cpu']})")
        con.print(text(f"INT8 built for: {built}{match}"))
    con.print(f"input: {i.layout} {i.dtype} {i.shape} batch={'dynamic' if i.batch is None else i.batch} normalized_in_graph={i.normalized_in_graph}")
    con.print(f"preprocess: {p.resize_mode} crop_pct={p.crop_pct} {p.interpolation} mean={p.mean} std={p.std} color={p.color}")
    con.print(text(f"temperature: {s.temperature}  metrics: {s.metrics or '-'}"))
    con.print(text(f"labels: {', '.join(s.labels[:8])}{' ...' if s.num_classes > 8 else ''}"))
    if s.open_set is not None:
        o = s.open_set
        con.print(text(f"open set: {o.score} >= {o.threshold:.6g} is known (keeps {o.coverage:.0%} of {o.n} validation images)"))
    if s.reference is not None:
        r = s.reference
        con.print(text(f"drift reference: n={r.n}, unknown rate {r.unknown_rate:.1%}, statistics: {', '.join(r.histograms)}"))
    for step in s.lineage:
        con.print(text(f"  - {step.time} {step.step} {step.params} {step.metrics or ''}"))
    return 0
