"""The deploy report's open-set section: each artifact's rejection threshold (fitted on its own validation logits),
its drift reference, and, with `--ood DIR...`, how well its scores separate the known classes from those folders."""

from __future__ import annotations

from pathlib import Path

from ..document import Section
from ..format import interval


def _ci(d: dict | None) -> str:
    return "-" if not d else interval(d["value"], d["lo"], d["hi"])


def open_set_section(ctx: dict) -> Section | None:
    cfg = ctx["config"]
    fitted = [(t, prec, r.result["open_set"]) for t, per in ctx["artifacts"].items() for prec, r in per.items()
              if r.result.get("open_set")]
    ood = ctx.get("ood")
    if not fitted and ood is None:
        return None
    s = Section("open_set", "Unknown objects and drift: rejection threshold and reference per artifact")
    s.p(f"Each artifact carries a rejection threshold on the {cfg['open_set']} score, fitted on its own validation "
        f"logits on its own runtime to keep {cfg['coverage']:.0%} of the known classes' images (an INT8 build moves the "
        "scores, so it gets its own), and the drift reference (class prior, score and input-statistics histograms) "
        "its monitor compares the field with. In the app: `Predictor(path, reject=True)` answers label 'unknown' "
        "(`known == False`, the closest class kept) below the threshold; `predictor.start_monitor(on_drift=...)` "
        "raises an event naming what moved. 'Rejected' is on the images the threshold was fitted on, so it shows the "
        "coverage held on this runtime, not a held-out figure.")
    s.table(["runtime", "precision", "score", "threshold", "validation rejected", "n", "reference unknown rate"],
            [[t, prec, o["score"], f"{o['threshold']:.4g}", _ci(o["known_rejected"]), o["n"], f"{o['unknown_rate']:.1%}"]
             for t, prec, o in fitted])
    data: dict = {"fitted": {f"{t}/{prec}": o for t, prec, o in fitted}}
    if ood is not None:
        rows = ood.result["rows"]
        s.p("Known = the validation images; unknown = each folder given with --ood. AUROC: the chance that a random "
            "known image scores above a random unknown one (0.5 = no separation), with a bootstrap 95% interval; FPR "
            "at 95% TPR: the share of unknown images still accepted when 95% of known ones are; rejected: the share "
            "of the folder the stored threshold turns away (Wilson 95%).")
        table = []
        for row in rows:
            for folder, v in row["sets"].items():
                sc = v["scores"]
                table.append([row["target"], row["precision"], Path(folder).name, v["n"],
                              *[f"{m['auroc']:.3f} [{m['auroc_interval'][0]:.3f}, {m['auroc_interval'][1]:.3f}]"
                                for m in sc.values()],
                              f"{sc[cfg['open_set']]['fpr_at_95tpr']:.1%}" if cfg["open_set"] in sc else "-",
                              _ci(v.get("rejected"))])
        names = list(rows[0]["sets"][next(iter(rows[0]["sets"]))]["scores"]) if rows and rows[0]["sets"] else []
        s.table(["runtime", "precision", "unknown folder", "n", *[f"AUROC {n}" for n in names],
                 f"FPR@95%TPR ({cfg['open_set']})", "rejected"], table)
        weak = [r for r in table if float(r[4].split()[0]) < 0.85] if names else []
        if weak:
            s.warn(f"{len(weak)} artifact/folder pair(s) separate known from unknown with AUROC < 0.85 on the "
                   f"{names[0]} score: the threshold will either let many of those images through or turn away many "
                   "known ones. A better-trained model (scores track closed-set accuracy) or training with such "
                   "images as an extra 'background' class helps more than the choice of score.")
        data["ood"] = rows
    s.data = data
    return s


__all__ = ["open_set_section"]
