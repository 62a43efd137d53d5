"""The robustness report: a corruption and adversarial result (`edgecls eval`'s robustness.json) as sections of
the shared document (robustness.md, and the deploy report's robustness section), as rich tables in the terminal,
and as a PNG plot."""

from __future__ import annotations

from pathlib import Path

from . import document
from .document import Section
from .format import interval


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def _ci(d: dict) -> str:
    return interval(d["acc"], *d["ci95"])


def _drop(d: dict | None) -> str:
    if d is None:
        return "-"
    lo, hi = d["ci95"]
    return f"{100 * d['mean']:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}] p={d['p']:.3g}"


def summary_rows(result: dict) -> list[dict]:
    """One row per model: clean and mean corruption accuracy with intervals, mCE, relative mCE, and the paired
    difference of its drops (under corruption minus clean) against the reference, in points."""
    rows = []
    for m in result["models"]:
        vs = m.get("vs_reference") or {}
        rows.append({
            "model": m["name"], "runtime": m["backend"], "precision": m["precision"], "n": m["clean"]["n"],
            "clean": _ci(m["clean"]), "mCA": _ci(m["mean_corruption_accuracy"]),
            "mCE": "1.00 (ref)" if m["role"] == "reference" else ("-" if m["mce"] is None else f"{m['mce']:.2f}"),
            "rel. mCE": "1.00 (ref)" if m["role"] == "reference" else ("-" if m["relative_mce"] is None else f"{m['relative_mce']:.2f}"),
            "extra drop": _drop(vs.get("extra_drop_under_corruption")),
        })
    return rows


HELP = ("clean / mCA: accuracy % [95% interval]; mCE and rel. mCE: ImageNet-C's, normalised by the reference model; "
         "extra drop: (reference - model) under corruption minus on clean images, points, paired per image "
         "[bootstrap 95%] with a sign-flip p-value (positive: compression loses more under corruption)")


EXTRA_HELP = ("extra drop under each corruption (mean over its severities) vs the reference, points [bootstrap 95%], "
              "raw sign-flip p and Holm-adjusted p over every cell of this table; * Holm p < 0.05, "
              "(*) raw p < 0.05 only: expected by chance somewhere in a table this size")


def render_table(result: dict, console=None) -> None:
    """Print the summary table, accuracy per corruption (mean over severities) per model, the extra drop per
    corruption, and the adversarial table when the result has one, with rich."""
    from rich.markup import escape
    from rich.table import Table

    from ..quiet import console as own_console

    con = console or own_console(width=160)  # a log or a pipe: the table stays one row per model
    if result.get("models"):
        d = result["data"]
        t = Table(title=escape(f"corruptions on {d['source']} (n={d['n']}, {d['accuracy_means']}; reference {result['reference']})"),
                  caption=escape(HELP))
        rows = summary_rows(result)
        for col in rows[0]:
            t.add_column(col, overflow="fold")
        for r in rows:
            t.add_row(*(escape(str(v)) for v in r.values()))
        con.print(t)
        per = Table(title=f"accuracy % per corruption, mean over severities {result['severities']}")
        per.add_column("corruption")
        for m in result["models"]:
            per.add_column(escape(m["name"]), justify="right")
        for n in result["corruptions"]:
            per.add_row(n, *(_pct(_cell_mean(m, n)) for m in result["models"]))
        con.print(per)
        extra = extra_drop_rows(result)
        if extra:
            e = Table(title=escape(EXTRA_HELP))
            e.add_column("model")
            for n in result["corruptions"]:
                e.add_column(n, overflow="fold")
            for r in extra:
                e.add_row(*(escape(v) for v in r))
            con.print(e)
    if result.get("adversarial"):
        render_adversarial(result["adversarial"], con)


def _mark(d: dict) -> str:
    holm = d.get("p_holm")
    if holm is not None and holm < 0.05:
        return " *"
    return " (*)" if d["p"] < 0.05 else ""


def extra_drop_rows(result: dict) -> list[list[str]]:
    """Per compared model and corruption: the paired extra drop under that corruption (points, interval, raw p and,
    where computed, the Holm-adjusted p), marked * when it survives Holm's correction, (*) when only the raw p < 0.05."""
    rows = []
    for m in result.get("models", []):
        by = (m.get("vs_reference") or {}).get("extra_drop_by_corruption")
        if by:
            rows.append([m["name"], *(_drop(by[n]) + (f" Holm p={by[n]['p_holm']:.3g}" if "p_holm" in by[n] else "")
                                      + _mark(by[n]) for n in result["corruptions"])])
    return rows


def _cell_mean(model: dict, name: str) -> float:
    cells = model["cells"][name]
    return sum(c["acc"] for c in cells.values()) / len(cells)


ADVERSARIAL_HELP = ("accuracy % [Wilson 95%] on the same uint8 pictures; white box: the .pt the attacks were crafted "
                    "on; transfer rows: the points each artifact differs from the reference artifact, McNemar exact p")


def adversarial_rows(adv: dict) -> tuple[list[str], list[list[str]]]:
    """(headers, rows): per model (the .pt, then each artifact) its accuracy under each condition, clean first."""
    head = ["model", "runtime", "precision", "role", *adv["conditions"]]
    rows = []
    for m in adv["models"]:
        cells = []
        for c in adv["conditions"]:
            x = m["conditions"][c]
            text = _ci(x)
            if "difference" in x:
                text += f" ({100 * x['difference']:+.1f} p={x['mcnemar_p']:.2g})"
            cells.append(text)
        rows.append([m["name"], m["backend"], m["precision"], m["role"], *cells])
    return head, rows


def adversarial_title(adv: dict) -> str:
    d = adv["data"]
    return (f"adversarial pictures crafted on {adv['source']} ({', '.join(adv['attacks'])}, eps in grey levels "
            f"{', '.join(f'{e:g}' for e in adv['eps'])}; n={d['n']} from {d['source']}; {d['accuracy_means']})")


def _sentence(text: str) -> str:
    return text[0].upper() + text[1:] + "."


def corruption_section(result: dict, figure: bytes | None = None) -> Section | None:
    """Accuracy under corruption per model with intervals, mCE, and the paired extra drop against the reference,
    overall and per corruption; `figure`: the PNG plot() wrote, shown under the tables. None without corruptions."""
    if not result.get("models"):
        return None
    d = result["data"]
    s = Section("corruptions", "Robustness to common corruptions")
    s.p(f"{d['n']} images from {d['source']}, {len(result['corruptions'])} corruptions x severities "
        f"{result['severities']}, applied {result['applied']}; accuracy = {d['accuracy_means']}.")
    rows = summary_rows(result)
    s.table(list(rows[0]), [list(r.values()) for r in rows])
    s.p(_sentence(HELP))
    extra = extra_drop_rows(result)
    if extra:
        s.p(f"{_sentence(EXTRA_HELP)} An average over corruptions can hide one the compressed model handles badly.")
        s.table(["model", *result["corruptions"]], extra)
    if figure is not None:
        s.img("robustness.png", figure, "accuracy vs severity, and per corruption, per model")
    return s


def adversarial_section(adv: dict) -> Section:
    """Accuracy under each attack of the .pt the attacks were crafted on and of every artifact they transfer to."""
    s = Section("adversarial", "Adversarial check")
    title = adversarial_title(adv)
    s.p(f"{title[0].upper()}{title[1:]}, applied {adv['applied']}. Attacks crafted on the float "
        "model and fed unchanged to each build: what a shipped build meets when its float model is attacked.")
    head, rows = adversarial_rows(adv)
    s.table(head, rows)
    s.p(_sentence(ADVERSARIAL_HELP))
    return s


def sections(result: dict, figure: bytes | None = None) -> list[Section]:
    corr = corruption_section(result, figure)
    return ([corr] if corr else []) + ([adversarial_section(result["adversarial"])] if result.get("adversarial") else [])


def _meta(result: dict) -> str:
    from ..version import package_version

    parts = [f"edgecls {package_version()}"]
    if result.get("models"):
        d = result["data"]
        parts.append(f"corruptions on {d['n']} images from {d['source']}, reference {result['reference']}")
    if result.get("adversarial"):
        parts.append(f"adversarial pictures crafted on {result['adversarial']['source']}")
    return "; ".join(parts)


def to_markdown(result: dict) -> str:
    """robustness.md: the sections through the shared renderer (plot() writes the figure beside it)."""
    md, _ = document.to_markdown(sections(result), "edgecls eval: robustness", _meta(result), "robustness_files")
    return md


def render_adversarial(adv: dict, console) -> None:
    from rich.markup import escape
    from rich.table import Table

    head, rows = adversarial_rows(adv)
    t = Table(title=escape(adversarial_title(adv)), caption=escape(ADVERSARIAL_HELP))
    for h in head:
        t.add_column(escape(h), overflow="fold")
    for r in rows:
        t.add_row(*(escape(str(v)) for v in r))
    console.print(t)


def plot(result: dict, path: str | Path) -> Path:
    """PNG: accuracy vs severity per model (mean over corruptions, severity 0 = clean), and accuracy per corruption."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..runtime.artifacts import atomic_write_with

    path = Path(path)
    sev = result["severities"]
    fig, (a, b) = plt.subplots(1, 2, figsize=(13, 4.8), gridspec_kw={"width_ratios": [1, 2]})
    names = result["corruptions"]
    width = 0.8 / len(result["models"])
    for k, m in enumerate(result["models"]):
        ys = [m["clean"]["acc"]] + [sum(m["cells"][n][str(s)]["acc"] for n in names) / len(names) for s in sev]
        a.plot([0, *sev], ys, marker="o", label=f"{m['name']} ({m['backend']})")
        b.bar([i + k * width for i in range(len(names))], [_cell_mean(m, n) for n in names], width, label=m["name"])
    a.set_xticks([0, *sev], ["clean", *map(str, sev)])
    a.set_xlabel("severity")
    a.set_ylabel("accuracy" if result["data"]["mode"] == "labels" else "agreement with the reference")
    a.set_ylim(0, 1.02)
    a.legend(fontsize=7)
    a.set_title(f"mean over {len(names)} corruptions (n={result['data']['n']})")
    b.set_xticks([i + 0.4 - width / 2 for i in range(len(names))], names, rotation=45, ha="right", fontsize=8)
    b.set_ylim(0, 1.02)
    b.set_title("per corruption, mean over severities")
    fig.tight_layout()
    atomic_write_with(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)
    return path
