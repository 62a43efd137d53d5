"""`edgecls eval MODEL... --data DIR --corruptions ... --severities ...` and `edgecls explain MODEL.pt IMAGE... -o DIR`."""

from __future__ import annotations

import json
from pathlib import Path


def add_eval_parser(sub):
    from ..robustness.corruptions import CORRUPTIONS, DEFAULT

    p = sub.add_parser("eval", help="accuracy of artifacts under common corruptions (ImageNet-C style) or small "
                                    "adversarial attacks, each on its own runtime, with intervals and paired tests "
                                    "against the reference (FP32) model",
                       description="Clean and corrupted accuracy of every MODEL on the same pictures: per corruption and "
                                   "severity, mean corruption accuracy (mCA), mCE and relative mCE normalised by the "
                                   "reference, and whether each model loses more than the reference under corruption "
                                   "than on clean images. Writes OUT/robustness.{json,md,png}.")
    p.add_argument("models", nargs="+", metavar="MODEL",
                   help="edgecls artifacts of one model (.pt/.onnx/.xml/.tflite/.pte/...): FP32, INT8, pruned builds")
    p.add_argument("--data", required=True, metavar="DIR",
                   help="a folder of <label>/<images> (label = one of the models' labels: top-1 accuracy), or of "
                        "images (agreement with the reference's clean top-1)")
    p.add_argument("--corruptions", nargs="+", metavar="NAME",
                   help=f"corruptions to apply: {', '.join(CORRUPTIONS)} (default: the {len(DEFAULT)} ImageNet-C "
                        "common ones less frost)")
    p.add_argument("--severities", default="1-5", metavar="S",
                   help="severities 1 (mild) to 5 (strong): a range 1-5, one 3, or a list 1,3,5 (default: 1-5)")
    p.add_argument("--reference", metavar="MODEL",
                   help="the model mCE is normalised by and, without labels, agreement is measured against "
                        "(default: the first MODEL)")
    p.add_argument("--agreement", action="store_true",
                   help="measure agreement with the reference's clean top-1 even if the folders are labelled")
    p.add_argument("--limit", type=int, metavar="N", help="a seeded, class-mixed subset of N images (default: all)")
    p.add_argument("--seed", type=int, default=0, help="seed of the image subset and of the random corruptions (default: 0)")
    p.add_argument("--threads", type=int, help="runtime threads (default: the runtime's own)")
    p.add_argument("-o", "--out-dir", default="robustness", help="folder for robustness.json/.md/.png (default: robustness)")
    p.add_argument("--adversarial", nargs="*", metavar="EPS",
                   help="adversarial check: FGSM and PGD crafted on the .pt model at these L-inf budgets in grey levels "
                        "out of 255 (numbers in [1, 255]; default 1 2 4), the same uint8 pictures given to every other "
                        "MODEL on its own runtime (transfer); with no --corruptions, only this runs. PGD costs "
                        "steps x (forward + backward) of the .pt per image: use --limit on a CPU")
    p.add_argument("--attack-model", metavar="MODEL.pt",
                   help="--adversarial: the PyTorch .pt the attacks are crafted on (default: the first MODEL ending in .pt)")
    p.add_argument("--pgd-steps", type=int, default=10,
                   help="--adversarial: PGD iterations, step eps/4, 2 or more (default: 10)")
    p.add_argument("--json", action="store_true", help="print the result JSON instead of the tables")
    p.set_defaults(func=cmd_eval)
    return p


def attack_source(models, attack_model: str | None) -> Path:
    """The .pt adversarial attacks are crafted on: --attack-model, else the first MODEL ending in .pt."""
    from ..errors import ModelFileError

    if attack_model is not None:
        return Path(attack_model)
    for m in models:
        if Path(m).suffix == ".pt":
            return Path(m)
    raise ModelFileError("--adversarial crafts its attacks on the PyTorch .pt model (they need gradients) and none of "
                         f"{', '.join(Path(m).name for m in models)} is one; add the .pt the artifacts were exported "
                         "from as a MODEL or with --attack-model")


def cmd_eval(a, corruptions: bool = True) -> int:
    """Corruptions (unless corruptions=False) and, with --adversarial, the adversarial check, into one
    OUT/robustness.{json,md} (and .png for corruptions)."""
    from rich.console import Console

    from ..report import robustness as report
    from ..robustness.adversarial import check_eps, evaluate_adversarial, load_source
    from ..robustness.corruptions import check_names, parse_severities
    from ..robustness.evaluate import RESULT_KIND, SCHEMA_VERSION, evaluate_corruptions, load_image_set
    from ..runtime.artifacts import atomic_write_bytes
    from ..runtime.predictor import Predictor

    adversarial = getattr(a, "adversarial", None) is not None
    if corruptions:  # checked before any model is loaded: a typo fails in a second
        names = check_names(a.corruptions)
        severities = parse_severities(a.severities)
    if adversarial:
        eps = check_eps(a.adversarial)
        source = attack_source(a.models, a.attack_model)
        load_source(source)  # a non-.pt or unusable source fails before the long corruption run
        targets = [m for m in a.models if Path(m) != source]
        if not targets:
            raise ValueError("--adversarial: give the artifacts to test transfer to (FP32, INT8 ...) besides the .pt")
    if a.limit is not None and a.limit < 1:
        raise ValueError(f"--limit {a.limit}: give a positive number of images")
    ref = a.reference or a.models[0]
    with Predictor(ref) as p:
        labels = list(p.spec.labels)
    images = load_image_set(a.data, labels, limit=a.limit, seed=a.seed, agreement=a.agreement)
    con = Console(stderr=a.json)
    if not con.is_terminal:
        con = Console(stderr=a.json, width=160)  # a log or a pipe: one row per model
    log = None if a.json else con.log
    if corruptions:
        result = evaluate_corruptions(a.models, images, corruptions=names, severities=severities, reference=a.reference,
                                      seed=a.seed, threads=a.threads, progress=log)
    else:
        result = {"kind": RESULT_KIND, "schema_version": SCHEMA_VERSION}
    if adversarial:
        if a.reference is not None and Path(a.reference) in map(Path, targets):  # the paired tests' reference comes first
            targets = [a.reference, *(t for t in targets if Path(t) != Path(a.reference))]
        result["adversarial"] = evaluate_adversarial(source, targets, images, eps=eps, steps=a.pgd_steps,
                                                     threads=a.threads, progress=log)
    out = Path(a.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out / "robustness.json", json.dumps(result, indent=2).encode())
    atomic_write_bytes(out / "robustness.md", report.to_markdown(result).encode())
    if corruptions:
        report.plot(result, out / "robustness.png")
    if a.json:
        print(json.dumps(result, indent=2))
    else:
        report.render_table(result, con)
        con.print(f"wrote {out / 'robustness.json'}, .md" + (", .png" if corruptions else ""), markup=False)
    return 0


__all__ = ["add_eval_parser", "cmd_eval"]


def add_explain_parser(sub) -> None:
    p = sub.add_parser("explain", help="Grad-CAM overlays of a .pt model's decisions, measured by deletion/insertion AUC "
                                       "against random maps",
                       description="For each IMAGE: the predicted class, its Grad-CAM map drawn over the model's input "
                                   "crop (OUT/NNN_<image>_gradcam.png), and the deletion and insertion AUC of the map "
                                   "against random maps of the same coarseness (OUT/explain.json). A map that does not "
                                   "beat the random ones does not track the model.")
    p.add_argument("model", metavar="MODEL.pt", help="an edgecls PyTorch .pt model (exported graphs keep no gradients)")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files to explain")
    p.add_argument("-o", "--out-dir", default="explain", help="folder for the overlays and explain.json (default: explain)")
    p.add_argument("--layer", help="module name to take the map from (default: the last Conv2d)")
    p.add_argument("--steps", type=int, default=16, help="points on the deletion/insertion curves (default: 16)")
    p.add_argument("--random-baselines", type=int, default=3, help="random maps averaged per image for the baseline (default: 3)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random maps (default: 0)")
    p.add_argument("--json", action="store_true", help="print the result JSON instead of the table")
    p.set_defaults(func=cmd_explain)


def cmd_explain(a) -> int:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from ..robustness.explain import explain

    r = explain(a.model, a.images, a.out_dir, layer=a.layer, steps=a.steps, random_baselines=a.random_baselines, seed=a.seed)
    if a.json:
        print(json.dumps(r, indent=2))
        return 0
    con = Console() if Console().is_terminal else Console(width=160)
    t = Table(title=escape(f"Grad-CAM of {r['model']} at {r['layer']} ({r['feature_map'][0]}x{r['feature_map'][1]})"),
              caption="AUC of the class probability as the map's top pixels are deleted (lower is better) or inserted "
                      "into a blurred copy (higher is better); random: mean of random maps as coarse")
    for col in ("image", "prediction", "deletion", "random", "insertion", "random "):
        t.add_column(col)
    for row in r["images"]:
        t.add_row(escape(Path(row["image"]).name), escape(f"{row['label']} {row['score']:.2f}"),
                  f"{row['deletion_auc']:.3f}", f"{row['deletion_auc_random']:.3f}",
                  f"{row['insertion_auc']:.3f}", f"{row['insertion_auc_random']:.3f}")
    con.print(t)
    for kind in ("deletion_gain", "insertion_gain"):
        g = r[kind]
        con.print(f"{kind.replace('_', ' ')} over random maps: {g['mean']:+.3f} [{g['ci95'][0]:+.3f}, {g['ci95'][1]:+.3f}] "
                  f"p={g['p']:.3g} (n={g['n']})", markup=False)
    con.print(f"overlays and explain.json in {a.out_dir}", markup=False)
    return 0


__all__ += ["add_explain_parser", "cmd_explain"]
