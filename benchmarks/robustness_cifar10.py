"""Does INT8 lose more under corruption than on clean images? A labelled answer: EfficientNet-Lite0 fine-tuned on a
CIFAR-10 subset (our own validation split), FP32 vs INT8 on ONNX Runtime, OpenVINO and LiteRT.

Cheap on purpose (a 2-core CPU): 600 training JPEGs per class are extracted from ../shared/data, 1/6 of each class
is held out for validation (1,000 images, never trained on); benchmarks/cifar10_lite0.yaml's recipe (frozen stem and
stages 0-4, cached activations) at 128 px for 3 epochs. INT8: calibrated on 300 training images, the same for ONNX
Runtime (quantize_static), OpenVINO (NNCF) and LiteRT (PT2E). Evaluation: --limit validation images (seeded, class-mixed), true labels, the corruption subset of
benchmarks/robustness_lite0.py (5 corruptions x severities 1/3/5), every artifact on its own runtime.

The corruptions are applied to the picture upscaled (bilinear) to the model's input side, the frame a camera feeding
this model would deliver, not to CIFAR's 32 px thumbnail (spatial constants scale with the side either way, but
per-pixel noise and JPEG blocks on a 32 px thumbnail are 4x coarser once upscaled). Clean accuracy is measured on
the same upscaled pictures.

    nice -n 19 python benchmarks/robustness_cifar10.py --limit 500 --threads 1            # the README's figures
    nice -n 19 python benchmarks/robustness_cifar10.py --limit 500 --threads 1 --no-litert --fix-calibration

Follow-ups, each its own run (and Holm family) on the same 500 pictures, FP32 ONNX Runtime the reference:

    # the 50%-MAC pruned model (benchmarks/compress_prune_cifar10.yaml makes it from this script's trained model)
    ... --no-litert --pruned DIR/prune/step2_finetune.pt                          # -> robustness_pruned.*
    # INT8 with the first layers float (ONNX Runtime nodes_to_exclude, NNCF ignored_scope), vs FP32 and vs plain INT8
    ... --no-litert --keep-float conv_stem,blocks.0 conv_stem,blocks.0,blocks.1  # -> robustness_keepfloat.*
    # any other INT8 builds of the same model (e.g. `edgecls compress` QAT outputs), vs FP32 and vs plain INT8
    ... --no-litert --tag qat --extra qat=Q/int8_qat.onnx qat=Q/int8_qat.xml       # -> robustness_qat.*
        [--pair int8_qat_contrast.xml:int8_qat.xml]            # two builds against each other, own Holm family
    # why INT8 loses contrast: per-layer SQNR of the ONNX Runtime INT8 build vs FP32 (ORT's qdq_loss_debug)
    ... --no-litert --diagnose 32                                                  # -> int8_diagnosis.json

Prints the robustness tables and writes DIR/robustness{,_TAG}.{json,md,png} (default .data/robustness_cifar10/);
runs with fixes also print (and write to the JSON, "vs_plain_int8") each fix against the plain INT8 build of its
runtime under contrast and on average: paired per image, sign-flip p, Holm over those tests.
One thread: on a shared, overloaded 2-core machine two PyTorch threads spent 3-4x the CPU time per image.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

PER_CLASS, VAL_FRACTION = 600, 1 / 6


def datasets(out: Path):
    from edgecls.data.datasets import stratified_split
    from edgecls.data.scan import load_image_folder
    from tools import shared_data

    data = shared_data.extract_cifar10(out / "cifar10_6k", per_class=PER_CLASS)
    train_ds, val_ds = stratified_split(load_image_folder(data), VAL_FRACTION, 0)
    return data, train_ds, val_ds


def upscaled(ds, idx, side: int) -> list[np.ndarray]:
    from PIL import Image

    return [np.asarray(Image.fromarray(ds.pixels(i)).resize((side, side), Image.BILINEAR)) for i in idx]


def build_onnx_openvino(best: Path, train_ds, d: Path, n_calib: int, verify: dict) -> None:
    """cifar10_recipe.build_artifacts less LiteRT: FP32 ONNX and OpenVINO (verified), INT8 of each on the same
    n_calib training images."""
    import edgecls
    from edgecls.compress.data import dataset_calibration, subset
    from edgecls.compress.ptq import quantize_file
    from edgecls.models.pt import load_pt

    model, spec = load_pt(best)
    d.mkdir(parents=True, exist_ok=True)
    calib_ds = subset(train_ds, n_calib, seed=1)
    for fmt, fp32, int8 in (("onnx", "fp32.onnx", "int8.onnx"), ("openvino", "fp32.xml", "int8.xml")):
        if not (d / fp32).exists():
            edgecls.export(model, spec, d / fp32, images=verify)
        if not (d / int8).exists():
            src_spec = edgecls.Predictor(d / fp32).spec
            quantize_file(fmt, d / fp32, d / int8, src_spec, dataset_calibration(calib_ds, src_spec, n_calib))


def build_litert(best: Path, train_ds, d: Path, n_calib: int, verify: dict) -> None:
    """FP32 and INT8 (PT2E, the same n_calib training images) TFLite. The INT8 build is exported unverified when the
    export gate refuses it: this benchmark measures it on the validation images anyway, and says so."""
    import edgecls
    from edgecls.compress.data import subset
    from edgecls.errors import ExportError
    from edgecls.models.pt import load_pt

    model, spec = load_pt(best)
    if not (d / "fp32.tflite").exists():
        edgecls.export(model, spec, d / "fp32.tflite", images=verify)
    if (d / "int8.tflite").exists():
        return
    calib_ds = subset(train_ds, n_calib, seed=1)
    imgs = [calib_ds.pixels(i) for i in range(len(calib_ds))]
    try:
        edgecls.export(model, spec, d / "int8.tflite", precision="int8", calibration=imgs, images=verify)
    except ExportError as exc:
        print(f"LiteRT INT8 refused by the export gate ({exc}); exported unverified to measure it here", flush=True)
        edgecls.export(model, spec, d / "int8.tflite", precision="int8", calibration=imgs, verify=False)


def corrupted_calibration(best: Path, train_ds, d: Path, n_calib: int, side: int) -> Path:
    """The fix to try when INT8 loses more under corruption: ONNX Runtime INT8 calibrated on the same n_calib training
    images, upscaled to the model's side and half of them corrupted (a random corruption of the 16, severity 1-5)."""
    from edgecls import Predictor
    from edgecls.compress.data import subset
    from edgecls.compress.ptq import quantize_file
    from edgecls.robustness import CORRUPTIONS, corrupt
    from edgecls.robustness.corruptions import image_seed

    dst = d / "int8_corruptcal.onnx"
    if dst.exists():
        return dst
    calib_ds = subset(train_ds, n_calib, seed=1)
    pics = upscaled(calib_ds, range(len(calib_ds)), side)
    kinds, rng = list(CORRUPTIONS), np.random.default_rng(1)
    mixed = [p if k % 2 == 0 else corrupt(p, kinds[rng.integers(len(kinds))], int(rng.integers(1, 6)), image_seed(1, "calib", 0, k))
             for k, p in enumerate(pics)]
    with Predictor(d / "fp32.onnx") as fp32:
        calib = np.concatenate([fp32.preprocess(p, color="RGB") for p in mixed])
        quantize_file("onnx", d / "fp32.onnx", dst, fp32.spec, calib)
    return dst


def pruned_onnx(pt: Path, d: Path, verify: dict) -> Path:
    """The pruned .pt as FP32 ONNX (verified against PyTorch on validation pictures), built once."""
    import edgecls
    from edgecls.models.pt import load_pt

    dst = d / f"{pt.stem}_pruned.onnx"
    if not dst.exists():
        model, spec = load_pt(pt)
        edgecls.export(model, spec, dst, images=verify)
    return dst


def keep_float_builds(sets: list[str], train_ds, d: Path, n_calib: int) -> list[Path]:
    """INT8 of fp32.onnx / fp32.xml with the named modules left float, on the same n_calib calibration images."""
    import edgecls
    from edgecls.compress.data import dataset_calibration, subset
    from edgecls.compress.ptq import quantize_file

    out = []
    calib_ds = subset(train_ds, n_calib, seed=1)
    for text in sets:
        keep = tuple(k for k in text.split(",") if k)
        for fmt, src, suffix in (("onnx", "fp32.onnx", ".onnx"), ("openvino", "fp32.xml", ".xml")):
            dst = d / f"int8_float-{'+'.join(keep)}{suffix}"
            if not dst.exists():
                src_spec = edgecls.Predictor(d / src).spec
                quantize_file(fmt, d / src, dst, src_spec, dataset_calibration(calib_ds, src_spec, n_calib), keep_float=keep)
            out.append(dst)
    return out


def extra_builds(specs: list[str], d: Path) -> list[Path]:
    """--extra [LABEL=]MODEL: a LABEL copies MODEL (with its .bin and sidecar) to d/int8_LABEL.*, so builds that share a
    file name (every `edgecls compress` QAT output is int8_qat.onnx) stay apart in one result."""
    import shutil

    out = []
    for text in specs:
        label, _, path = text.rpartition("=")
        src = Path(path)
        if not label:
            out.append(src)
            continue
        dst = d / f"int8_{label}{src.suffix}"
        for a, b in ((src, dst), (src.with_suffix(".bin"), dst.with_suffix(".bin")),
                     (src.with_name(src.name + ".json"), dst.with_name(dst.name + ".json"))):
            if a.exists() and (a.suffix != ".bin" or src.suffix == ".xml"):
                shutil.copyfile(a, b)
        out.append(dst)
    return out


def vs_plain_int8(result: dict, fixes: list[str], corruption: str = "contrast") -> list[dict]:
    """Each fix against the plain INT8 build of its runtime (int8.onnx / int8.xml): see paired_table."""
    return paired_table(result, [(f, "int8" + Path(f).suffix) for f in fixes], corruption)


def paired_table(result: dict, pairs: list[tuple[str, str]], corruption: str = "contrast") -> list[dict]:
    """Each (model, base) pair of evaluated file names on the same pictures: clean, under `corruption` (each severity
    and their mean) and mean over all cells; paired per image, sign-flip p (McNemar for single cells), Holm over every
    test of this table."""
    from edgecls import stats
    from edgecls.robustness import outcomes
    from edgecls.robustness.evaluate import paired_mean_difference

    rows = {m["name"]: m for m in result["models"]}
    out, ps = [], []
    for name, base in pairs:
        plain = rows[base]
        fix = rows[name]
        entry = {"model": name, "vs": plain["name"], "cells": {}}
        for s in result["severities"]:
            d = stats.paired(outcomes(plain, corruption, [s]), outcomes(fix, corruption, [s]))
            entry["cells"][str(s)] = {"gain": d.difference, "ci95": [d.lo, d.hi], "p": d.p_value}
        entry[corruption] = paired_mean_difference(outcomes(fix, corruption), outcomes(plain, corruption))
        cells = lambda r: np.mean([outcomes(r, c) for c in result["corruptions"]], axis=0)  # noqa: E731
        entry["mca"] = paired_mean_difference(cells(fix), cells(plain))
        entry["clean"] = paired_mean_difference(outcomes(fix).astype(float), outcomes(plain).astype(float))
        out.append(entry)
        ps += [c["p"] for c in entry["cells"].values()] + [entry[corruption]["p"], entry["mca"]["p"], entry["clean"]["p"]]
    holm = iter(stats.holm(ps))
    for entry in out:
        for c in [*entry["cells"].values(), entry[corruption], entry["mca"], entry["clean"]]:
            c["p_holm"] = next(holm)
    return out


def print_vs_plain(table: list[dict], corruption: str = "contrast", title: str = "fix vs plain INT8 of its runtime") -> None:
    pts = lambda x, lo, hi: f"{100 * x:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}]"  # noqa: E731
    print(f"{title} (points gained, paired; p raw / Holm over {sum(len(e['cells']) + 3 for e in table)} tests):")
    for e in table:
        cells = "  ".join(f"{corruption} s{s}: {pts(c['gain'], *c['ci95'])} p={c['p']:.2g}/{c['p_holm']:.2g}" for s, c in e["cells"].items())
        m, a, c = e[corruption], e["mca"], e["clean"]
        print(f"  {e['model']:36s} vs {e['vs']:10s} {cells}\n      {corruption} mean {pts(m['mean'], *m['ci95'])} p={m['p']:.2g}/{m['p_holm']:.2g}"
              f"  mCA {pts(a['mean'], *a['ci95'])} p={a['p']:.2g}/{a['p_holm']:.2g}  clean {pts(c['mean'], *c['ci95'])} p={c['p']:.2g}/{c['p_holm']:.2g}")


def diagnose(d: Path, pics: list[np.ndarray], out: Path, severities=(3, 5)) -> dict:
    """Where INT8 loses low-contrast pictures: the signal-to-quantization-noise ratio (dB) of every activation of
    int8.onnx against fp32.onnx (ONNX Runtime's qdq_loss_debug), on the clean pictures and under contrast, with the
    float activation's RMS; printed per stage (the last tensor of each) and written whole to int8_diagnosis.json."""
    import tempfile

    import onnx
    from onnxruntime.quantization import CalibrationDataReader
    from onnxruntime.quantization import qdq_loss_debug as dbg

    from edgecls import Predictor
    from edgecls.robustness import corrupt
    from edgecls.robustness.corruptions import image_seed

    class Reader(CalibrationDataReader):
        def __init__(self, xs):
            self.it = iter(xs)

        def get_next(self):
            x = next(self.it, None)
            return None if x is None else {name: x}

    name = onnx.load(str(d / "fp32.onnx"), load_external_data=False).graph.input[0].name
    order = [o for n in onnx.load(str(d / "fp32.onnx"), load_external_data=False).graph.node for o in n.output]
    res: dict = {"n": len(pics), "corruption": "contrast", "tensors": {}}
    with tempfile.TemporaryDirectory() as tmp, Predictor(d / "fp32.onnx") as fp32:
        aug = {k: str(Path(tmp) / f"{k}.onnx") for k in ("fp32", "int8")}
        for k in aug:
            dbg.modify_model_output_intermediate_tensors(str(d / f"{k}.onnx"), aug[k], save_as_external_data=False)
        for s in (0, *severities):
            ps = pics if s == 0 else [corrupt(p, "contrast", s, image_seed(0, "contrast", s, i)) for i, p in enumerate(pics)]
            xs = [fp32.preprocess(p, color="RGB") for p in ps]
            fa = dbg.collect_activations(aug["fp32"], Reader(xs))
            err = dbg.compute_activation_error(dbg.create_activation_matching(dbg.collect_activations(aug["int8"], Reader(xs)), fa))
            for t in (t for t in order if t in err and "xmodel_err" in err[t]):
                rms = float(np.sqrt(np.mean(np.concatenate([a.ravel() for a in fa[t]]).astype(np.float64) ** 2)))
                res["tensors"].setdefault(t, {})[f"severity {s}" if s else "clean"] = {"sqnr_db": err[t]["xmodel_err"], "rms": rms}
    (out / "int8_diagnosis.json").write_text(json.dumps(res, indent=2))
    stage = lambda t: (t.split("/")[3] if t.startswith("/model/blocks/") else t.split("/")[2] if t.startswith("/model/")  # noqa: E731
                       else t if t == "logits" else "input")  # the normalised uint8 input, before the stem
    last = {stage(t): t for t in res["tensors"]}
    cols = ["clean", *(f"severity {s}" for s in severities)]
    print(f"INT8 ONNX Runtime vs FP32 per stage (last tensor), SQNR dB / float RMS, {len(pics)} pictures, contrast at "
          f"{', '.join(map(str, severities))}:")
    for st, t in last.items():
        print(f"  {st:12s} {t.split('/')[-1][:28]:28s} " + "  ".join(f"{c}: {res['tensors'][t][c]['sqnr_db']:5.1f} dB / {res['tensors'][t][c]['rms']:.2f}" for c in cols))
    first = next(t for t in res["tensors"] if "blocks.0" in t and "conv_pw" in t)
    print(f"  first projection {first}: " + "  ".join(f"{c}: {res['tensors'][first][c]['sqnr_db']:5.1f} dB / {res['tensors'][first][c]['rms']:.2f}" for c in cols))
    return res


def main() -> int:
    import cifar10_recipe as recipe
    from rich.console import Console

    from edgecls.models.pt import load_pt
    from edgecls.report import robustness as report
    from edgecls.robustness import evaluate_corruptions, image_set_from_arrays, parse_severities

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corruptions", nargs="+", default=["gaussian_noise", "motion_blur", "fog", "contrast", "jpeg_compression"])
    ap.add_argument("--severities", default="1,3,5")
    ap.add_argument("--limit", type=int, default=500, help="validation images evaluated (default 500 of 1,000)")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--input-size", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--all-fp32", action="store_true", help="also evaluate the FP32 OpenVINO and LiteRT builds")
    ap.add_argument("--no-litert", action="store_true", help="leave out LiteRT (its INT8 PT2E export is the slow part)")
    ap.add_argument("--fix-calibration", action="store_true",
                    help="after the main run: ONNX Runtime INT8 calibrated on half-corrupted images, against the same "
                         "FP32 reference on the same pictures (robustness_fix.{json,md})")
    ap.add_argument("--pruned", metavar="PT", help="compare FP32 with this pruned .pt of the same model (exported to "
                    "FP32 ONNX, verified): writes robustness_pruned.*")
    ap.add_argument("--keep-float", nargs="+", metavar="LAYERS", default=[],
                    help="INT8 fixes: for each comma-separated set of module names (e.g. conv_stem,blocks.0), ONNX "
                         "Runtime and OpenVINO INT8 with those layers float; compared with FP32 and the plain INT8 builds "
                         "(robustness_keepfloat.*, or --tag)")
    ap.add_argument("--extra", nargs="+", metavar="[LABEL=]MODEL", default=[],
                    help="other INT8 builds of the same model (.onnx/.xml) to compare like --keep-float's; LABEL= copies "
                         "it to int8_LABEL.* first (for builds that share a file name)")
    ap.add_argument("--pair", nargs="+", metavar="MODEL:BASE", default=[],
                    help="also compare these evaluated builds pairwise (file names as evaluated, e.g. "
                         "int8_qat_contrast.xml:int8_qat.xml), in a table of their own with its own Holm family "
                         "(\"pairs\" in the JSON)")
    ap.add_argument("--tag", help="suffix of the output files of a --keep-float/--extra run (default keepfloat)")
    ap.add_argument("--diagnose", type=int, metavar="N", default=0,
                    help="only print/write the per-layer SQNR of INT8 ONNX Runtime vs FP32 on N validation pictures, "
                         "clean and under contrast 3 and 5 (int8_diagnosis.json), then stop")
    ap.add_argument("-o", "--out", default=str(ROOT / ".data" / "robustness_cifar10"))
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    con = Console(width=170)
    data, train_ds, val_ds = datasets(out)
    con.log(f"CIFAR-10 subset: {len(train_ds)} training, {len(val_ds)} validation images")
    best = out / "train" / "best.pt"
    if not best.exists():
        overrides = {"val_fraction": VAL_FRACTION, "input_size": a.input_size, "epochs": a.epochs, "threads": a.threads}
        best, metrics = recipe.train_model(ROOT / "benchmarks" / "cifar10_lite0.yaml", data, out, overrides)
        con.log(f"trained: val top-1 {metrics['summary']['val_top1']:.4f} on {len(val_ds)} images")
    _, spec = load_pt(best)
    verify = {f"val{i}": val_ds.pixels(i) for i in range(0, len(val_ds), len(val_ds) // 16)}
    arts = out / "artifacts"
    build_onnx_openvino(best, train_ds, arts, 300, verify)
    if not a.no_litert:  # the PT2E export is the slow part on a busy machine
        build_litert(best, train_ds, arts, 300, verify)
    models = [arts / "fp32.onnx", *([arts / "fp32.xml", arts / "fp32.tflite"][: 1 if a.no_litert else 2] if a.all_fp32 else []),
              arts / "int8.onnx", arts / "int8.xml", *([] if a.no_litert else [arts / "int8.tflite"])]
    idx = np.arange(len(val_ds))
    if a.limit < len(idx):
        idx = np.sort(np.random.default_rng(0).permutation(len(idx))[: a.limit])
    side = spec.input.shape[-1] if spec.input.layout == "NCHW" else spec.input.shape[-2]
    images = image_set_from_arrays(upscaled(val_ds, idx, side), val_ds.labels[idx],
                                   source=f"CIFAR-10 validation split ({len(idx)} of {len(val_ds)}, upscaled to {side} px)")
    if a.diagnose:
        diagnose(arts, images.images[: a.diagnose], out)
        return 0
    tag, fixes = "", []
    if a.fix_calibration:  # the same pictures and seeds as the main run: its FP32 and INT8 rows stay comparable
        models, tag = [arts / "fp32.onnx", corrupted_calibration(best, train_ds, arts, 300, side)], "_fix"
    elif a.pruned:
        models, tag = [arts / "fp32.onnx", pruned_onnx(Path(a.pruned), arts, verify)], "_pruned"
    elif a.keep_float or a.extra:
        fixes = keep_float_builds(a.keep_float, train_ds, arts, 300) + extra_builds(a.extra, arts)
        models, tag = [arts / "fp32.onnx", arts / "int8.onnx", arts / "int8.xml", *fixes], f"_{a.tag or 'keepfloat'}"
    result = evaluate_corruptions(models, images, corruptions=a.corruptions, severities=parse_severities(a.severities),
                                  threads=a.threads, progress=con.log, keep_outcomes=True)
    if fixes:
        result["vs_plain_int8"] = vs_plain_int8(result, [f.name for f in fixes])
    if a.pair:
        result["pairs"] = paired_table(result, [tuple(x.split(":", 1)) for x in a.pair])
    (out / f"robustness{tag}.json").write_text(json.dumps(result, indent=2))
    (out / f"robustness{tag}.md").write_text(report.to_markdown(result))
    report.plot(result, out / f"robustness{tag}.png")
    report.render_table(result, con)
    for m in result["models"][1:]:
        vs = m["vs_reference"]
        e = vs["extra_drop_under_corruption"]
        print(f"{m['name']:16s} clean {m['clean']['acc']:.3f}  mCA {m['mean_corruption_accuracy']['acc']:.3f}  extra drop "
              f"{100 * e['mean']:+.2f} pts [{100 * e['ci95'][0]:+.2f}, {100 * e['ci95'][1]:+.2f}] p={e['p']:.3g}")
    for m in result["models"][1:]:
        e = m["vs_reference"]["extra_drop_by_corruption"].get("contrast")
        if e:
            print(f"{m['name']:36s} under contrast: {100 * np.mean([c['acc'] for c in m['cells']['contrast'].values()]):.1f} % "
                  f"(mean over severities); extra drop vs FP32 {100 * e['mean']:+.2f} pts [{100 * e['ci95'][0]:+.2f}, "
                  f"{100 * e['ci95'][1]:+.2f}] p={e['p']:.3g} Holm p={e['p_holm']:.3g}")
    if fixes:
        print_vs_plain(result["vs_plain_int8"])
    if a.pair:
        print_vs_plain(result["pairs"], title="pairs")
    print(f"{result['seconds']} s; files in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
