"""Benchmark one artifact: cold start (fresh process), then warm timings model-only and end-to-end from a 1080p
uint8 frame, for each batch size x thread count, plus optional accuracy on a labelled set.

Honest timing: time.perf_counter (monotonic), warmup excluded, each timed call is the Predictor's own call (the
output copy included), and every result carries its number of runs. Model-only, preprocessing and end-to-end calls
are timed in alternating chunks of ten, so their ratios are not skewed by load that comes and goes on a shared
machine.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..runtime.opencv import load_cv2
from ..runtime.predictor import Predictor
from ..runtime.runtimes import artifact_files, runtime_for
from ..runtime.timing import time_calls, time_interleaved  # noqa: F401 - their home is the runtime layer; used here
from ..stats import wilson
from . import power as _power
from .cold import cold_start
from .stats import latency_stats


@dataclass
class BenchOptions:
    warmup: int = 20
    runs: int = 200  # timed runs per measurement, unless duration_s is set
    duration_s: float | None = None
    batch_sizes: list[int] = field(default_factory=lambda: [1])
    threads: list[int] = field(default_factory=lambda: [0])  # 0: the runtime's default
    end_to_end: bool = True
    cold_start: bool = True
    accuracy: str | None = None  # "fashion-mnist" or an ImageFolder path whose class names match the labels
    reference: str | None = None  # an artifact to measure top-1 agreement with (on the accuracy set or photo crops)
    accuracy_limit: int = 1000
    cache_dir: str | None = None  # OpenVINO's compiled-model cache, for artifacts whose runtime has one
    cpus: list[int] | None = None  # the CPU set the process (and its cold-start children) ran on, when pinned
    power: bool = True  # on a Jetson (tegrastats/jtop present): VDD_IN power and energy per inference per row

    def as_dict(self) -> dict:
        return asdict(self)


def camera_frame(channels: int) -> np.ndarray:
    """A 1080p uint8 BGR frame of a real photo (scikit-image's coffee, upscaled), as a camera delivers it."""
    from ..data.samples import sample_images

    cv2 = load_cv2()
    try:
        rgb = sample_images(("coffee",))["coffee"]
    except Exception:  # noqa: BLE001 - scikit-image is optional on a device: fall back to a gradient frame
        y, x = np.mgrid[0:400, 0:600]
        rgb = np.stack([(x * 255 // 600), (y * 255 // 400), ((x + y) * 255 // 1000)], -1).astype(np.uint8)
    frame = cv2.resize(np.ascontiguousarray(rgb[..., ::-1]), (1920, 1080), interpolation=cv2.INTER_CUBIC)
    return frame if channels == 3 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)


def _labelled_subset(source: str, limit: int):
    """The dataset and a fixed, class-mixed subset of its indices (the same one for every artifact)."""
    from ..data.datasets import load_fashion_mnist
    from ..data.scan import load_image_folder

    ds = load_fashion_mnist("test") if source.lower() in ("fashion-mnist", "fashion_mnist") else load_image_folder(source)
    n = min(limit, len(ds))
    return ds, np.random.default_rng(0).permutation(len(ds))[:n]


def multilabel_accuracy(pred: Predictor, source: str, limit: int) -> dict:
    """A multi-label artifact on a folder with a labels manifest: mAP (bootstrap 95% interval) and micro F1 at the
    thresholds in its spec, on a fixed subset of the images."""
    from ..data.manifest import load_multilabel
    from ..evaluation.multilabel import mean_ap, metrics
    from ..runtime.scores import sigmoid

    ds = load_multilabel(source, classes=pred.spec.labels, allow_empty=True)
    idx = np.sort(np.random.default_rng(0).permutation(len(ds))[: min(limit, len(ds))])
    scores = sigmoid(np.concatenate([pred.infer(pred.preprocess(ds.pixels(i), color="RGB")) for i in idx]))
    y = ds.labels[idx].astype(bool)
    if not np.isfinite(mean_ap(y, scores)):
        return {"error": f"no image of {source} carries any of the model's labels: mAP is undefined"}
    m = metrics(y, scores, pred.spec.labels, pred.thresholds, n_boot=500)
    return {"dataset": source, "n": m["n"], "map": m["map"]["value"], "interval": m["map"]["interval"],
            "micro_f1": m["micro_f1"]["value"]}


def accuracy(pred: Predictor, source: str, limit: int) -> dict:
    if pred.spec.multilabel:
        if source.lower() in ("fashion-mnist", "fashion_mnist"):
            return {"error": "a multi-label model is measured on a folder with a labels manifest, not Fashion-MNIST"}
        return multilabel_accuracy(pred, source, limit)
    ds, idx = _labelled_subset(source, limit)
    if not len(idx):
        return {"error": f"no labelled images in {source}"}
    index = {name: i for i, name in enumerate(pred.spec.labels)}
    missing = [c for c in ds.classes if c not in index]
    if missing:
        return {"error": f"dataset classes {missing[:5]} are not labels of this model"}
    correct = sum(pred.predict(ds.pixels(i), color="RGB").index == index[ds.classes[ds.labels[i]]] for i in idx)
    w = wilson(int(correct), len(idx))  # an accuracy is a measurement: n and its 95% interval travel with it
    return {"dataset": source, "n": len(idx), "top1": correct / len(idx), "interval": [w.lo, w.hi]}


def fidelity_images(source: str | None, limit: int) -> tuple[str, list[np.ndarray]]:
    """Images for agreement with a reference: the labelled set's subset, or crops of the bundled photos."""
    if source:
        ds, idx = _labelled_subset(source, limit)
        return f"{source} ({len(idx)} images)", [ds.pixels(i) for i in idx]
    from ..data.samples import photo_crops

    n = min(limit, 200)
    return f"{n} crops of the bundled photos", photo_crops(n, seed=1)


@functools.lru_cache(maxsize=2)
def _reference_top5(reference: str, source: str | None, limit: int):
    """(what the images are, the images, the reference's labels, its top-5 per image): read once per reference."""
    what, images = fidelity_images(source, limit)
    with Predictor(reference) as ref:
        return what, images, ref.spec.labels, [np.array([t.index for t in ref.predict(img, color="RGB", topk=5).topk])
                                               for img in images]


def agreement(pred: Predictor, reference: str, source: str | None, limit: int) -> dict:
    """Top-1 agreement and top-5 overlap with a reference artifact (say the FP32 one): how faithful an INT8 or FP16
    build is where no labelled set of the model's domain is at hand (an ImageNet model, offline)."""
    what, images, labels, ref = _reference_top5(str(reference), source, limit)
    if tuple(labels) != tuple(pred.spec.labels):  # another task's model: agreement would read as a meaningless 0%
        return {"error": f"{Path(reference).name} has other labels ({len(labels)} classes vs {pred.spec.num_classes})"}
    got = [np.array([t.index for t in pred.predict(img, color="RGB", topk=5).topk]) for img in images]
    return {"reference": Path(reference).name, "images": what, "n": len(got),
            "top1": float(np.mean([g[0] == r[0] for g, r in zip(got, ref)])),
            "top5_overlap": float(np.mean([len(set(g) & set(r)) / len(r) for g, r in zip(got, ref)]))}


def _thread_pools(backend: str) -> dict:
    """OpenCV's (and PyTorch's, ExecuTorch's) process-wide thread counts, which a Predictor with `threads` sets."""
    cv2 = load_cv2()

    pools = {"cv2": (cv2.getNumThreads(), cv2.setNumThreads)}
    if backend == "torch":
        import torch

        pools["torch"] = (torch.get_num_threads(), torch.set_num_threads)
    if backend == "executorch":
        from ..runtime.backends import executorch as et

        pools["executorch"] = (et.thread_count(), et.set_thread_count)
    return pools


def _restore(pools: dict) -> None:
    for n, setter in pools.values():
        setter(n)


def bench_artifact(path: Path, opts: BenchOptions, progress: Callable[[str], None] = lambda s: None,
                   advance: Callable[[], None] = lambda: None) -> list[dict]:
    """Rows per thread count x batch size; the thread pools it changed are as they were when it returns."""
    rt = runtime_for(path)
    pools = _thread_pools(rt.name)
    cache = opts.cache_dir if opts.cache_dir and rt.compiled_cache else None
    try:
        return _bench_artifact(path, opts, progress, advance, pools, cache)
    finally:
        _restore(pools)


def _bench_artifact(path: Path, opts: BenchOptions, progress, advance, pools: dict, cache: str | None) -> list[dict]:
    rows = []
    size_mb = sum(f.stat().st_size for f in artifact_files(path)) / 2**20
    meter = _power.sampler() if opts.power else None
    try:
        _rows(path, opts, progress, advance, pools, cache, rows, size_mb, meter)
    finally:
        if meter is not None:
            meter.close()
    return rows


def _monitored(pred: Predictor, x) -> Callable[[], object]:
    """predict() with a drift monitor attached (reference from the spec), detached again after each call."""
    from ..runtime.drift import DriftMonitor

    mon = DriftMonitor(pred.spec)

    def call():
        pred.monitor = mon
        try:
            return pred.predict(x, color="BGR")
        finally:
            pred.monitor = None

    return call


def _rows(path, opts, progress, advance, pools, cache, rows, size_mb, meter) -> None:
    acc = agree = check = None
    for threads in opts.threads:
        cold = cold_start(path, threads, cache) if opts.cold_start else None
        if not threads:  # "default" means the libraries' own, not what an earlier thread count left behind
            _restore(pools)
        else:
            pools["cv2"][1](threads)
        pred = Predictor(path, threads=threads or None, cache_dir=cache)
        # an artifact that carries a rejection threshold is timed as the app runs it: rejecting (Predictor(reject=True))
        pred.open_set = pred.spec.open_set
        frame = camera_frame(pred.spec.input.channels)
        if check is None:  # the artifact's own reference inputs on this runtime: is it computing what was verified?
            progress(f"{path.name}: self-check")
            check = pred.run_self_check().as_dict()
        if opts.accuracy and acc is None:
            progress(f"{path.name}: accuracy on {opts.accuracy}")
            acc = accuracy(pred, opts.accuracy, opts.accuracy_limit)
        if opts.reference and agree is None:
            progress(f"{path.name}: agreement with {Path(opts.reference).name}")
            agree = agreement(pred, opts.reference, opts.accuracy, opts.accuracy_limit)
        step = pred.max_batch  # a fixed-batch artifact runs a larger batch as step-sized calls
        for batch in opts.batch_sizes:
            if step and batch % step:
                progress(f"{path.name}: batch {batch} skipped, the artifact runs batches of exactly {step}")
                advance()
                continue
            progress(f"{path.name}: batch {batch}, threads {threads or 'default'}")
            x = np.concatenate([pred.preprocess(frame, color="BGR")] * batch)
            frames = [frame] * batch
            calls = {"model": lambda: pred.infer(x), "pre": lambda: pred.preprocess(frame, color="BGR")}
            if opts.end_to_end:
                calls["e2e"] = lambda: pred.predict(frames if batch > 1 else frame, color="BGR")
                if pred.spec.reference is not None:  # what drift monitoring adds to each frame
                    calls["e2e_monitor"] = _monitored(pred, frames if batch > 1 else frame)
            # interleaved: the e2e / model-only ratio comes from one stretch of time, not two
            ms = time_interleaved(calls, opts.warmup, opts.runs, opts.duration_s)
            model_ms, pre_ms, e2e_ms, mon_ms = ms["model"], ms["pre"], ms.get("e2e"), ms.get("e2e_monitor")
            m = latency_stats(model_ms)
            art = pred.spec.artifact
            watts = None
            if meter is not None:
                progress(f"{path.name}: power, batch {batch}")
                watts = _power.measure(lambda: pred.infer(x), meter)
            rows.append({
                "model": path.name,
                "path": str(path),
                "backend": pred.backend_name,
                "format": art.get("format"),
                "precision": art.get("precision", "fp32"),
                "arch": pred.spec.arch,
                "input": f"{pred.spec.input.dtype} {pred.spec.input.layout} {list(pred.spec.input.shape[1:])}",
                "size_mb": round(size_mb, 3),
                "batch": batch,
                "threads": threads,
                "artifact_batch": pred.spec.input.batch,
                "calls_per_batch": batch // step if step else 1,
                "model_ms": m,
                "model_samples_ms": [round(v, 4) for v in model_ms],
                "end_to_end_ms": latency_stats(e2e_ms) if e2e_ms else None,
                "open_set": {"score": pred.open_set.score, "threshold": pred.open_set.threshold} if pred.open_set else None,
                "end_to_end_monitored_ms": latency_stats(mon_ms) if mon_ms else None,
                "preprocess_ms": latency_stats(pre_ms),
                "throughput_ips": batch * 1e3 / m["mean"],
                "cold_start": cold,
                "accuracy": acc,
                "agreement": agree,
                "self_check": check,
                "power": watts,
            })
            advance()
