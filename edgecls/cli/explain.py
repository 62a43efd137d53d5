"""`edgecls explain MODEL.pt IMAGE... -o DIR`: Grad-CAM overlays, measured by deletion/insertion AUC."""

from __future__ import annotations

import json
from pathlib import Path

NAME = "explain"
HELP = "Grad-CAM overlays of a .pt model's decisions, measured by deletion/insertion AUC against random maps"
DESCRIPTION = ("For each IMAGE: the predicted class, its Grad-CAM map drawn over the model's input crop "
               "(OUT/NNN_<image>_gradcam.png), and the deletion and insertion AUC of the map against random maps of the "
               "same coarseness (OUT/explain.json). A map that does not beat the random ones does not track the model.")


def add_arguments(p) -> None:
    p.add_argument("model", metavar="MODEL.pt", help="an edgecls PyTorch .pt model (exported graphs keep no gradients)")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files to explain")
    p.add_argument("-o", "--out-dir", default="explain", help="folder for the overlays and explain.json (default: explain)")
    p.add_argument("--layer", help="module name to take the map from (default: the last Conv2d)")
    p.add_argument("--steps", type=int, default=16, help="points on the deletion/insertion curves (default: 16)")
    p.add_argument("--random-baselines", type=int, default=3, help="random maps averaged per image for the baseline (default: 3)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random maps (default: 0)")
    p.add_argument("--json", action="store_true", help="print the result JSON instead of the table")


def run(a) -> int:
    from rich.table import Table

    from ..robustness.explain import explain
    from .render import console, text

    r = explain(a.model, a.images, a.out_dir, layer=a.layer, steps=a.steps, random_baselines=a.random_baselines, seed=a.seed)
    if a.json:
        print(json.dumps(r, indent=2))
        return 0
    con = console(width=160)
    t = Table(title=text(f"Grad-CAM of {r['model']} at {r['layer']} ({r['feature_map'][0]}x{r['feature_map'][1]})"),
              caption="AUC of the class probability as the map's top pixels are deleted (lower is better) or inserted "
                      "into a blurred copy (higher is better); random: mean of random maps as coarse")
    for col in ("image", "prediction", "deletion", "random", "insertion", "random "):
        t.add_column(col)
    for row in r["images"]:
        t.add_row(text(Path(row["image"]).name), text(f"{row['label']} {row['score']:.2f}"),
                  f"{row['deletion_auc']:.3f}", f"{row['deletion_auc_random']:.3f}",
                  f"{row['insertion_auc']:.3f}", f"{row['insertion_auc_random']:.3f}")
    con.print(t)
    for kind in ("deletion_gain", "insertion_gain"):
        g = r[kind]
        con.print(f"{kind.replace('_', ' ')} over random maps: {g['mean']:+.3f} [{g['ci95'][0]:+.3f}, {g['ci95'][1]:+.3f}] "
                  f"p={g['p']:.3g} (n={g['n']})", markup=False)
    con.print(f"overlays and explain.json in {a.out_dir}", markup=False)
    return 0
