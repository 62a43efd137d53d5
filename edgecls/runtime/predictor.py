"""Predictor: one API over every runtime. `Predictor("model.onnx").predict(frame, color="BGR")`."""

from __future__ import annotations

import os
import threading
import warnings
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import InferenceError, InputError, ModelFileError, SpecError
from . import preprocess as _pre
from .artifacts import file_sha256, read_sidecar, sidecar_path
from .backends import Session, backend_for
from .images import load_image
from .runtimes import runtime_for
from .scores import labels_above, ood_score, sigmoid, softmax, topk_indices
from .spec import ModelSpec, OpenSet

UNKNOWN = "unknown"  # the label of a rejected image (Prediction.known is False; index -1)


@dataclass(frozen=True)
class Top:
    index: int
    label: str
    score: float


@dataclass(frozen=True)
class Prediction:
    """One image's answer. A multi-label model (spec.task 'multilabel') answers with `labels`: every label whose
    sigmoid score is at or above its threshold, highest first (possibly none); index/label/score are then its
    highest-scoring label, whether or not that one passed its threshold."""

    index: int  # the class; -1 when the image was rejected as unknown (then label is "unknown")
    label: str
    score: float  # softmax(logits / spec.temperature) of the top class (of the closest class when unknown); multi-label: its sigmoid
    topk: tuple[Top, ...]  # classes by score; when unknown, topk[0] is the closest known class
    known: bool = True  # False: the open-set score fell below the threshold (Predictor(reject=...))
    ood_score: float | None = None  # the open-set score (higher = more like the training classes), when rejecting
    labels: tuple[Top, ...] = ()  # the labels this image has: multi-label, those at/above threshold; else (top class,) unless rejected
    multilabel: bool = False  # from a multi-label model: `labels` is the answer

    @property
    def closest(self) -> Top:
        """The most likely known class, whether or not the image was rejected."""
        return self.topk[0]

    def __repr__(self) -> str:
        if self.multilabel:
            return "Prediction(labels=[" + ", ".join(f"{t.label!r} {t.score:.3f}" for t in self.labels) + "])"
        if not self.known:
            return f"Prediction('{UNKNOWN}', closest={self.closest.label!r} #{self.closest.index}, score={self.score:.4f})"
        return f"Prediction({self.label!r} #{self.index}, score={self.score:.4f})"


def _resolve_reject(reject: Any, spec: ModelSpec, path: Path) -> OpenSet | None:
    if reject is None or reject is False:
        return None
    if reject is True:
        if spec.open_set is None:
            raise SpecError(f"{path.name}: reject=True needs an open-set threshold in the spec, and this one has none; fit "
                            "one on validation images of the known classes (edgecls fit-reference MODEL --data DIR), "
                            "or pass reject=OpenSet(score=..., threshold=...)")
        return spec.open_set
    if isinstance(reject, OpenSet):
        return reject
    raise InputError(f"reject={reject!r}: use True (the threshold stored in the spec), False, or an "
                     "edgecls.runtime.spec.OpenSet(score='msp'|'max_logit'|'energy', threshold=...)")


def _resolve_spec(path: Path, given: ModelSpec | None, embedded: ModelSpec | None) -> ModelSpec:
    if given is not None:
        return given
    if embedded is not None:
        return embedded
    side = read_sidecar(path)
    if side is None:
        raise SpecError(
            f"{path} carries no edgecls spec in its metadata and has no sidecar {sidecar_path(path).name}; "
            "copy the .json that `edgecls export` wrote next to it, or pass spec=ModelSpec.from_json(...). If another "
            "tool made this file from an edgecls export (quantized, simplified, converted), adopt it: "
            f"`edgecls adopt {path.name} --spec-from ORIGINAL`"
        )
    # a format without a metadata slot (a TensorRT engine): export records the file's checksum in the sidecar, so a
    # sidecar from another export (copied, or left by a crash between the two renames) is caught, not trusted
    want = side.artifact.get("sha256")
    if isinstance(want, str) and file_sha256(path) != want:
        raise ModelFileError(
            f"{sidecar_path(path).name} describes another build than {path.name} (checksum mismatch): the pair comes "
            "from two exports. Copy both files of one export, or re-export the model"
        )
    return side


def resolve_thresholds(thresholds: Any, spec: ModelSpec) -> np.ndarray | None:
    """Per-label thresholds from an override: one number for every label, one per label (label order), or a
    {label: threshold} mapping over the spec's thresholds; None: the spec's own (multi-label models only)."""
    if not spec.multilabel:
        if thresholds is not None:
            raise InputError("thresholds= are for multi-label models (spec.task 'multilabel'); this model answers one "
                             "class per image: leave thresholds out")
        return None
    base = np.asarray(spec.label_thresholds, np.float64)
    if thresholds is None:
        return base
    if isinstance(thresholds, dict):
        unknown = sorted(set(thresholds) - set(spec.labels))
        if unknown:
            raise InputError(f"thresholds name label(s) {unknown[:5]} this model does not have; its labels: "
                             f"{', '.join(spec.labels[:20])}{' ...' if spec.num_classes > 20 else ''}")
        t = base.copy()
        for name, v in thresholds.items():
            t[spec.labels.index(name)] = v if isinstance(v, (int, float)) and not isinstance(v, bool) else np.nan
    elif isinstance(thresholds, (int, float)) and not isinstance(thresholds, bool):
        t = np.full(spec.num_classes, float(thresholds))
    else:
        try:
            t = np.asarray(thresholds, np.float64).reshape(-1)
        except (TypeError, ValueError):
            t = np.array([np.nan])
        if t.size != spec.num_classes:
            raise InputError(f"thresholds: got {t.size} value(s) for {spec.num_classes} labels; give one number, one "
                             "per label (label order) or a {label: threshold} dict")
    if not (np.isfinite(t) & (t >= 0) & (t <= 1)).all():
        raise InputError(f"thresholds must be numbers in [0, 1] (sigmoid probabilities); got {t.tolist()[:10]}")
    return t


def _check_spec(spec: ModelSpec, session: Session, path: Path) -> None:
    want = spec.input.shape[1:]
    have = tuple(session.input_shape[1:])
    if len(have) != len(want) or any(isinstance(h, int) and h != w for h, w in zip(have, want)):
        raise SpecError(
            f"{path.name}: the spec says input {spec.input.layout} {want} but the model takes {have}; "
            "the spec belongs to another model. Re-export, or fix the sidecar JSON"
        )
    if session.num_classes is not None and session.num_classes != spec.num_classes:
        raise SpecError(
            f"{path.name}: the model outputs {session.num_classes} classes but the spec has {spec.num_classes} labels; "
            "the spec belongs to another model: pass the spec that belongs to this file (its sidecar), or re-export"
        )
    dtypes = session.input_dtypes  # what run() takes, as the runtime reports it; () when it does not say
    if dtypes and spec.input.dtype not in dtypes:
        raise SpecError(
            f"{path.name}: the spec says input dtype {spec.input.dtype} but the model takes {' or '.join(dtypes)}; "
            "the spec belongs to another export (fused uint8 vs float input?). Re-export, or fix the sidecar JSON"
        )


def _warn_int8_saturation(spec: ModelSpec, backend: str, path: Path) -> None:
    """INT8 with full-range 8-bit weights (built for a VNNI or ARM CPU, or without the overflow fix) loaded on an x86
    CPU without VNNI (see cpuinfo). OpenVINO's U8S8 kernels saturate there and accuracy can drop far below what was
    measured where it was built; ONNX Runtime's backend runs such weights on U8U8 kernels instead
    (backends/onnxruntime.py), which is right but slower than the form built for this CPU. Said once at load."""
    if spec.artifact.get("precision") != "int8" or backend not in ("onnxruntime", "openvino"):
        return
    steps = [s for s in spec.lineage if s.step in ("quantize", "qat", "adopt")]  # adopt: what the adopted file's weights are
    params = steps[-1].params if steps else {}
    fix = params.get("overflow_fix")
    if fix == "enable" or params.get("weight_form") == "7-bit":
        return
    from .cpuinfo import cpu_model_and_flags, int8_saturates

    if not int8_saturates():
        return
    if backend == "onnxruntime":
        if spec.target_cpu in ("x86-vnni", "arm64"):
            warnings.warn(
                f"{path.name}: INT8 built for {spec.target_cpu}, with 8-bit weights; on this CPU without VNNI "
                f"({cpu_model_and_flags()[0]}) ONNX Runtime runs them on its U8U8 kernels, which compute the graph as "
                "written but slower than the form built for this CPU class: --target-cpu x86-avx2 (7-bit weights on the "
                "fast U8S8 kernels, bias-corrected)", RuntimeWarning, stacklevel=3)
        return
    built = f"built for {spec.target_cpu}" if spec.target_cpu else "built without a recorded target CPU"
    warnings.warn(
        f"{path.name}: INT8 {built}, with full-range 8-bit weights (overflow_fix {fix or 'not recorded'}), on a CPU "
        f"without VNNI ({cpu_model_and_flags()[0]}): OpenVINO's U8S8 kernels saturate on this CPU and accuracy can "
        "drop far below what was measured on the build machine. Rebuild it for this device: --target-cpu x86-avx2 "
        "(`edgecls deploy`/`compress`, or quantize_file(..., target_cpu='x86-avx2')), which turns on the overflow "
        "fix (7-bit weights)", RuntimeWarning, stacklevel=3)


class Predictor:
    """Load an artifact (.pt, .onnx, .xml, .tflite, .engine, .pte) and classify images with the preprocessing stored in its spec.

    backend: None picks by suffix; a runtime's name (edgecls.runtime.runtimes.RUNTIMES: 'onnxruntime', 'executorch', ...)
        forces one.
    device: where it runs; None: the runtime's default (cpu; cuda for TensorRT engines, which run nowhere else).
    color: default channel order of numpy frames ('BGR' for OpenCV capture); None requires it per call.
    threads: the runtime's threads (PyTorch's count is process-wide: it is set around each call and restored;
        ExecuTorch's pool is process-wide too: the last Predictor's `threads` applies to every .pte model).
        OpenCV's pool, which preprocessing uses, stays as the app set it (cv2.setNumThreads).
    spec: overrides the embedded/sidecar spec; it must match the model's real input shape, dtype and class count.
    workers: threads of the pool behind predict_async().
    self_check: run the reference inputs the artifact carries (edgecls.runtime.selfcheck) on this device's runtime first and
        raise SelfCheckError when they disagree with what was verified at export (run_self_check() reports instead).
    thresholds: multi-label models: override the per-label thresholds stored in the spec (one number for all, one per
        label, or {label: threshold}); predict(..., thresholds=...) overrides them per call.
    reject: open-set rejection. True: images whose score is below the threshold fitted for this artifact (spec.open_set,
        `edgecls fit-reference`) are answered Prediction(known=False, label "unknown", index -1), the closest class
        kept in topk; an OpenSet(score, threshold) sets one by hand; False/None (default): always a training class.
    cache_dir: OpenVINO's compiled-model cache: the first load writes the compiled blob there, later processes load it
        instead of compiling (Lite0 on 2 cores: compile 180 -> 85 ms FP32, 280 -> 120 ms INT8). Other runtimes have no
        compile step and reject it.

    Thread safety: one Predictor may be shared by many threads. ONNX Runtime runs concurrent calls on one session;
    OpenVINO gives each calling thread its own infer request; PyTorch and LiteRT serialize calls with a lock;
    ExecuTorch serializes every call in the process (its XNNPACK delegates share one thread pool).

    Runtime settings: OpenVINO compiles with the LATENCY hint, f32 inference precision and `threads` inference
    threads, and runs one request at a time through start_async()/wait() on its pinned stream thread (what
    `benchmark_app -hint none -nstreams 1 -api async -nireq 1 -nthreads T -infer_precision f32` measures).
    ONNX Runtime's worker threads do not spin between runs, so the cores stay free for decoding and preprocessing.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        backend: str | None = None,
        *,
        device: str | None = None,
        threads: int | None = None,
        color: str | None = None,
        spec: ModelSpec | None = None,
        topk: int = 5,
        workers: int = 2,
        cache_dir: str | os.PathLike | None = None,
        self_check: bool = False,
        reject: bool | OpenSet | None = None,
        thresholds: Any = None,
    ):
        self.path = Path(path)
        if color not in (None, "RGB", "BGR"):
            raise InputError(f"color={color!r} is not valid; use 'RGB' or 'BGR'")
        if threads is not None and (not isinstance(threads, int) or threads <= 0):
            raise InputError(f"threads={threads!r} must be a positive integer or None")
        self.runtime = runtime_for(self.path, backend)
        if cache_dir is not None and not self.runtime.compiled_cache:
            raise InputError(f"cache_dir is for runtimes that compile on load (OpenVINO .xml); {self.runtime.name} "
                             f"loads {self.path.name} without a compile step, so leave cache_dir out")
        self.backend = backend_for(self.path, self.runtime.name)
        self._session = self.backend.open(
            self.path, device=self.runtime.device if device is None else device, threads=threads, spec=spec,
            cache_dir=os.path.expanduser(str(cache_dir)) if cache_dir is not None else None)
        self.spec = _resolve_spec(self.path, spec, self._session.embedded_spec)
        _check_spec(self.spec, self._session, self.path)
        _warn_int8_saturation(self.spec, self.runtime.name, self.path)
        if self.spec.multilabel and reject not in (None, False):
            raise InputError(f"{self.path.name} is a multi-label model: it answers 'none of its labels' itself (every "
                             "score under its threshold), so reject= does not apply; leave it out")
        self.open_set = _resolve_reject(reject, self.spec, self.path)
        self.thresholds = resolve_thresholds(thresholds, self.spec)  # multi-label: per label; None otherwise
        self.monitor = None  # a DriftMonitor once start_monitor() is called; predict() and stream() feed it
        self.color, self.topk, self.threads = color, int(topk), threads
        self.device = device or self._session.device
        self.workers = int(workers)
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        self.self_check_result = None
        if self_check:
            result = self.run_self_check()
            if not result.passed:
                from ..errors import SelfCheckError

                raise SelfCheckError(f"{self.path.name} on {self.backend_name} ({self.device}): {result}", result)

    def run_self_check(self):
        """Run the reference inputs stored with the artifact on this runtime and judge them by the precision's export
        tolerances; returns (and keeps, as .self_check_result) an edgecls.runtime.selfcheck.SelfCheckResult."""
        from . import selfcheck

        blob, source = selfcheck.find(self.path, self._session)
        self.self_check_result = selfcheck.run(self.infer, self.spec, blob, source)
        return self.self_check_result

    @property
    def backend_name(self) -> str:
        return self.runtime.name

    @property
    def session(self) -> Session:
        """The backend's session (the runtime's own objects, for what edgecls does not wrap); gone after close()."""
        if self._session is None:
            raise InferenceError(f"this Predictor for {self.path.name} was closed; create a new Predictor to run it again")
        return self._session

    @property
    def max_batch(self) -> int | None:
        """The batch size a fixed-batch artifact runs (larger batches go as several calls); None: any batch at once."""
        return self.session.max_batch

    @property
    def labels(self) -> tuple[str, ...]:
        return self.spec.labels

    def __repr__(self) -> str:
        return f"Predictor({str(self.path)!r}, backend={self.backend_name!r}, arch={self.spec.arch!r}, classes={self.spec.num_classes})"

    # --- steps, public so apps and benchmarks can time them apart ----------------------------------------
    def preprocess(self, image: Any, *, color: str | None = None) -> np.ndarray:
        """Image -> batch-of-one input tensor, exactly as the artifact wants it (fast OpenCV path)."""
        img, order = load_image(image, color=color or self.color, channels=self.spec.input.channels)
        return _pre.fast(img, order, self.spec)

    def infer(self, batch: np.ndarray) -> np.ndarray:
        """Preprocessed batch -> logits (N, classes). Loops when the artifact has a fixed batch size."""
        batch = _pre.check_input_batch(batch, self.spec)
        want = np.dtype(self.spec.input.dtype)
        if batch.dtype != want:
            raise InputError(f"input batch has dtype {batch.dtype}, the artifact takes {want}; use predictor.preprocess()")
        session = self.session
        step = session.max_batch
        if step is None or len(batch) == step:
            return np.asarray(session.run(batch), dtype=np.float32)
        if len(batch) % step:
            raise InputError(f"this artifact runs batches of exactly {step}; got {len(batch)}")
        return np.concatenate([session.run(batch[i : i + step]) for i in range(0, len(batch), step)]).astype(np.float32)

    def scores(self, logits: np.ndarray) -> np.ndarray:
        """Calibrated probabilities: softmax(logits / spec.temperature); multi-label models: sigmoid(logits) per label.
        NaN/inf logits are an InferenceError."""
        logits = np.asarray(logits)
        if logits.ndim != 2 or logits.shape[1] != self.spec.num_classes:
            raise InputError(f"logits must have shape (N, {self.spec.num_classes}), got {logits.shape}; pass what infer() returns")
        bad = ~np.isfinite(logits).all(axis=1)
        if bad.any():
            raise InferenceError(
                f"{self.path.name} produced NaN/inf logits for batch row(s) {np.flatnonzero(bad)[:5].tolist()}: the model "
                "is numerically broken (NaN/inf weights, fp16 overflow, a broken INT8 scale). Re-export it in fp32 and "
                "check the weights; with a preprocessed float batch, check its values"
            )
        return sigmoid(logits) if self.spec.multilabel else softmax(logits, self.spec.temperature)

    def ood_scores(self, logits: np.ndarray, score: str | None = None) -> np.ndarray:
        """Open-set score per row of logits (higher = more like the training classes): `score` ('msp', 'max_logit',
        'energy'), by default the one rejection uses. msp and energy use spec.temperature."""
        if self.spec.multilabel:
            raise InputError("open-set scores are defined on softmax outputs of a single-label model; this model is "
                             "multi-label (its scores are per-label sigmoids)")
        name = score or (self.open_set.score if self.open_set is not None else "msp")
        return ood_score(logits, name, self.spec.temperature)

    def to_predictions(self, probs: np.ndarray, topk: int | None = None, *, ood: np.ndarray | None = None,
                       thresholds: Any = None) -> list[Prediction]:
        """Probabilities -> Predictions. ood: the open-set score per row (ood_scores(logits)); with rejection on and
        score 'msp' it can be left out (it is the top probability). thresholds: multi-label override for this call."""
        probs = np.asarray(probs)
        if probs.ndim != 2 or probs.shape[1] != self.spec.num_classes or not np.isfinite(probs).all():
            raise InputError(f"scores must be finite, shape (N, {self.spec.num_classes}); got {probs.shape}: pass what scores() returns")
        k = max(1, min(int(topk or self.topk), self.spec.num_classes))
        labels, out = self.spec.labels, []
        if self.spec.multilabel:
            t = self.thresholds if thresholds is None else resolve_thresholds(thresholds, self.spec)
            present = labels_above(probs, t)
            for row, on in zip(probs, present):
                order = topk_indices(row, self.spec.num_classes if on.any() else k)
                ranked = [Top(i, labels[i], v) for i, v in zip(order.tolist(), row[order].tolist())]
                tops = tuple(ranked[:k])
                out.append(Prediction(tops[0].index, tops[0].label, tops[0].score, tops,
                                      labels=tuple(x for x in ranked if on[x.index]), multilabel=True))
            return out
        if thresholds is not None:
            resolve_thresholds(thresholds, self.spec)  # raises: a single-label model
        rej = self.open_set
        if rej is not None and ood is None:
            if rej.score != "msp":
                raise InputError(f"rejection by {rej.score!r} needs the logits: call postprocess(logits), or pass "
                                 "ood=predictor.ood_scores(logits)")
            ood = probs.max(axis=1)
        if ood is not None and len(ood) != len(probs):
            raise InputError(f"ood has {len(ood)} scores for {len(probs)} rows; pass ood_scores() of the same logits")
        for r, row in enumerate(probs):
            idx = topk_indices(row, k)
            tops = tuple(Top(i, labels[i], v) for i, v in zip(idx.tolist(), row[idx].tolist()))
            if rej is None:
                out.append(Prediction(tops[0].index, tops[0].label, tops[0].score, tops, labels=tops[:1]))
                continue
            s = float(ood[r])
            known = s >= rej.threshold
            out.append(Prediction(tops[0].index if known else -1, tops[0].label if known else UNKNOWN, tops[0].score,
                                  tops, known, s, tops[:1] if known else ()))
        return out

    def postprocess(self, logits: np.ndarray, topk: int | None = None, *, thresholds: Any = None) -> list[Prediction]:
        probs = self.scores(logits)
        ood = self.ood_scores(logits) if self.open_set is not None else None
        return self.to_predictions(probs, topk, ood=ood, thresholds=thresholds)

    # --- drift monitoring -----------------------------------------------------------------------------------
    def start_monitor(self, **options: Any):
        """Watch for drift: every later predict() / stream() frame is compared, window by window, with the reference
        statistics stored in the spec (edgecls fit-reference). Options: see edgecls.runtime.drift.DriftMonitor (window,
        false_alarm_rate or a fixed psi_threshold, on_drift callback, log path). Returns the monitor, also kept as `self.monitor`."""
        from .drift import DriftMonitor

        if self.spec.multilabel:
            raise InputError("drift monitoring's reference (class prior, softmax confidence) is for single-label models; "
                             "it does not take multi-label models yet")

        self.monitor = DriftMonitor(self.spec, **options)
        return self.monitor

    def observe(self, batch: np.ndarray, logits: np.ndarray, predictions: Sequence[Prediction]) -> None:
        """Feed one processed batch to the drift monitor (no-op without one); predict() and stream() call it."""
        if self.monitor is not None:
            self.monitor.update(batch, logits, predictions)

    # --- the one call apps make -----------------------------------------------------------------------------
    def predict(self, x: Any, *, color: str | None = None, topk: int | None = None,
                thresholds: Any = None) -> Prediction | list[Prediction]:
        """Classify one image (numpy HxWx3 uint8 frame, PIL image or path) or a list of them.

        Returns a Prediction (index, label, score, topk, labels) or, for a list, a list of them in order.
        thresholds: multi-label models only, this call's per-label thresholds (see Predictor(thresholds=...)).
        """
        if isinstance(x, (list, tuple)):
            if not x:
                raise InputError("predict() got an empty list; pass at least one image")
            batch = np.concatenate([self.preprocess(i, color=color) for i in x])
            return self._run(batch, topk, thresholds)
        if isinstance(x, np.ndarray) and x.ndim == 4:
            raise InputError(
                f"predict() got a 4-D array {x.shape}; pass a list of HxWx3 frames, or use infer() for a preprocessed batch"
            )
        return self._run(self.preprocess(x, color=color), topk, thresholds)[0]

    def _run(self, batch: np.ndarray, topk: int | None, thresholds: Any = None) -> list[Prediction]:
        logits = self.infer(batch)
        preds = self.postprocess(logits, topk, thresholds=thresholds)
        self.observe(batch, logits, preds)
        return preds

    def predict_batch(self, images: Sequence[Any], *, color: str | None = None, topk: int | None = None) -> list[Prediction]:
        return self.predict(list(images), color=color, topk=topk)

    # --- apps with their own loop ---------------------------------------------------------------------------
    def predict_async(self, x: Any, *, color: str | None = None, topk: int | None = None) -> Future:
        """Submit one image (or a list); returns a concurrent.futures.Future of the Prediction(s).

        Runs on a small pool owned by the Predictor (`workers`); close() or `with Predictor(...)` shuts it down.
        """
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="edgecls-predict")
            return self._pool.submit(self.predict, x, color=color, topk=topk)

    def stream(self, source: Any, **options: Any):
        """Iterate StreamResults over a camera index, video file/URL or an iterator of frames; see edgecls.runtime.stream."""
        from .stream import stream

        return stream(self, source, **options)

    def close(self) -> None:
        """Finish queued predict_async() calls, then release the runtime session (its memory, threads, file handles).
        Later calls raise InferenceError."""
        with self._pool_lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None
        session, self._session = self._session, None
        if session is not None:
            session.close()

    def __enter__(self) -> Predictor:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
