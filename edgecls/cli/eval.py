"""`edgecls eval MODEL... --data DIR`: accuracy under corruptions (the default) and adversarial attacks
(--adversarial), open-set separation (--ood), or a multi-label model's mAP/F1; every artifact on its own runtime."""

from __future__ import annotations

import json
from pathlib import Path

from .flags import add_backend_flag, add_verbose_flag

NAME = "eval"
HELP = ("accuracy of artifacts under common corruptions (ImageNet-C style) or small adversarial attacks, each on its own "
        "runtime, with intervals and paired tests against the reference (FP32) model")
DESCRIPTION = ("Clean and corrupted accuracy of every MODEL on the same pictures: per corruption and severity, mean "
               "corruption accuracy (mCA), mCE and relative mCE normalised by the reference, and whether each model loses "
               "more than the reference under corruption than on clean images. Writes OUT/robustness.{json,md,png}. "
               "A multi-label MODEL (task multilabel) is evaluated on --data's labels manifest instead: mAP, micro/macro "
               "F1 at its thresholds (bootstrap 95% intervals), per-label AP and F1. With --ood DIR...: how well each "
               "MODEL tells the known images of --data from unknown ones (AUROC with bootstrap intervals, FPR at 95% TPR, "
               "rejection rate at its fitted threshold).")


def add_arguments(p) -> None:
    from ..robustness.corruptions import CORRUPTIONS, DEFAULT
    from ..runtime.scores import SCORES

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
    p.add_argument("--ood", nargs="+", metavar="DIR", help="open-set evaluation instead: one or more folders of unknown "
                   "images, each reported on its own (AUROC, FPR at 95% TPR, rejection rate); add --corruptions to run "
                   "both. Fit the threshold first for rejection rates: edgecls fit-reference")
    p.add_argument("--score", nargs="+", choices=SCORES, help="--ood: open-set scores to compare (default: all three)")
    p.add_argument("--n-boot", type=int, default=1000, help="--ood: bootstrap resamples for the AUROC intervals (default 1000)")
    add_backend_flag(p, "--ood and multi-label models: force a runtime (default: by suffix)")
    add_verbose_flag(p)


def run(a) -> int:
    from .flags import quietly

    return quietly(a, a.out_dir, lambda: _evaluate(a))


def _evaluate(a) -> int:
    """Multi-label models by mAP/F1; then --ood; then corruptions (the default without --ood or --adversarial) and
    --adversarial into one robustness report."""
    from ..errors import ConfigError
    from .eval_reports import evaluate_multilabel, evaluate_ood, is_multilabel

    multi = [m for m in a.models if is_multilabel(m, a.backend)]
    if multi:
        if a.ood or a.corruptions is not None or a.adversarial is not None:
            raise ConfigError(f"{', '.join(multi)}: multi-label models are evaluated by mAP/F1 on a labelled folder; "
                              "--ood, --corruptions and --adversarial take single-label models")
        for model in multi:
            evaluate_multilabel(a, model)
        a.models = [m for m in a.models if m not in multi]
        if not a.models:
            return 0
    adversarial = a.adversarial is not None
    corruptions = a.corruptions is not None or not (a.ood or adversarial)
    if a.json and a.ood and (corruptions or adversarial):
        raise ConfigError("--json prints one report: give --ood or --corruptions/--adversarial, not both (or drop --json)")
    for model in a.models if a.ood else ():
        evaluate_ood(a, model)
    return robustness(a, corruptions=corruptions) if corruptions or adversarial else 0


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


def robustness(a, corruptions: bool = True) -> int:
    """Corruptions (unless corruptions=False) and, with --adversarial, the adversarial check, into one
    OUT/robustness.{json,md} (and .png for corruptions)."""
    from ..errors import AdversarialError, ConfigError
    from ..quiet import terminal
    from ..report import robustness as report
    from ..robustness.adversarial import check_eps, evaluate_adversarial, load_source
    from ..robustness.corruptions import check_names, parse_severities
    from ..robustness.evaluate import RESULT_KIND, SCHEMA_VERSION, evaluate_corruptions, load_image_set
    from ..runtime.artifacts import atomic_write_bytes
    from ..runtime.predictor import Predictor
    from .render import console

    adversarial = a.adversarial is not None
    if corruptions:  # checked before any model is loaded: a typo fails in a second
        names = check_names(a.corruptions)
        severities = parse_severities(a.severities)
    if adversarial:
        eps = check_eps(a.adversarial)
        source = attack_source(a.models, a.attack_model)
        load_source(source)  # a non-.pt or unusable source fails before the long corruption run
        targets = [m for m in a.models if Path(m) != source]
        if not targets:
            raise AdversarialError("--adversarial: give the artifacts to test transfer to (FP32, INT8 ...) besides the .pt")
    if a.limit is not None and a.limit < 1:
        raise ConfigError(f"--limit {a.limit}: give a positive number of images")
    ref = a.reference or a.models[0]
    with Predictor(ref) as p:
        labels = list(p.spec.labels)
    images = load_image_set(a.data, labels, limit=a.limit, seed=a.seed, agreement=a.agreement)
    con = console(stderr=a.json, width=160)  # a log or a pipe: one row per model
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
        print(json.dumps(result, indent=2), file=terminal())
    else:
        report.render_table(result, con)
        con.print(f"wrote {out / 'robustness.json'}, .md" + (", .png" if corruptions else ""), markup=False)
    return 0
