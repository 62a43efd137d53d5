"""The deploy report's input sections: the data as it was read (counts, sizes, what was skipped, converted, suspect
or duplicated) and the training recipe chosen for it."""

from __future__ import annotations

import json

from ...train.config import TrainConfig
from .. import plots
from ..document import Section
from ..format import megapixels


def data_section(ctx: dict) -> Section:
    d = ctx["data"].result["summary"]
    s = Section("data", "Data")
    s.p(f"Training images from {d['train_root']}; validation: {d['val_split']} ({d['layout']}).")
    if d.get("task") == "multilabel":
        s.p(f"Multi-label: {d['labels_per_image']:.2f} labels per image on average; the counts are images carrying each label.")
        s.table(["label", "train images", "val images"], [[c, a, b] for c, a, b in zip(d["classes"], d["train_counts"], d["val_counts"])]
                + [["images", d["n_train"], d["n_val"]]])
    else:
        s.table(["class", "train", "val"], [[c, a, b] for c, a, b in zip(d["classes"], d["train_counts"], d["val_counts"])]
                + [["total", d["n_train"], d["n_val"]]])
    ss, mp = d["shorter_side"], d["megapixels"]
    s.p(f"Picture size: shorter side {ss['min']}-{ss['max']} px (median {ss['median']:.0f}); {megapixels(mp['min'])} to "
        f"{megapixels(mp['max'])} (median {megapixels(mp['median'])}). Class imbalance (largest/smallest training class): "
        f"{d['imbalance']:.2f}:1.")
    record = json.loads((ctx["data"].folder / "data.json").read_text())
    rows = record["train"] + record["val"]
    s.img("sizes.png", plots.image_sizes([r["width"] for r in rows], [r["height"] for r in rows]), "picture sizes")
    if d["skipped"]:
        s.p(f"Skipped ({len(d['skipped'])}): not used, with the reason.")
        s.table(["file", "reason"], [[x["path"], x["reason"]] for x in d["skipped"]])
    else:
        s.p("Skipped: none; every file could be read.")
    if d["converted"]:
        s.p(f"Converted to RGB when read ({len(d['converted'])}), the same way in training, evaluation and the Predictor:")
        s.table(["file", "conversion"], [[x["path"], x["how"]] for x in d["converted"][:50]])
    if d["suspect"]:
        s.p("Look like graphics rather than photos (kept; check their labels):")
        s.table(["file", "why"], [[x["path"], x["why"]] for x in d["suspect"]])
    if d["duplicates"]:
        s.p(f"Byte-identical files (SHA-256): {len(d['duplicates'])} group(s); "
            + (f"{len(d['removed_from_val'])} validation copies of training images were removed from validation."
               if d["dedup"] else "kept in validation (dedup off): validation accuracy is optimistic by those images."))
        s.table(["files", "classes", "across train/val"],
                [["; ".join(g["files"]), ", ".join(g["classes"]), "yes" if g["across_train_val"] else "no"] for g in d["duplicates"][:50]])
    else:
        s.p("Duplicates: no two files are byte-identical (SHA-256), within or across train/val.")
    s.data = d
    return s


def recipe_section(ctx: dict) -> Section:
    r = ctx["recipe"].result
    s = Section("recipe", "Recipe")
    s.p(f"Recipe: {r['name']}.")
    s.items(r["why"])
    helps = TrainConfig.help()
    s.table(["setting", "value", "meaning"], [[k, v, helps.get(k, {}).get("help", "")] for k, v in r["settings"].items()])
    s.data = r
    return s


__all__ = ["data_section", "recipe_section"]
