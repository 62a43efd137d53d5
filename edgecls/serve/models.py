"""The models a server holds: each name's artifact, checked and batched, and the hot swap to a new file.

A ModelSlot is one loaded artifact under a name: its Predictor (self-check passed on this machine), the file's
sha256, a version number that goes up with each load, and its Batcher. The Repository maps names to slots. A reload
opens the file again beside the serving slot (on a thread of its own), runs its self-check and a warm-up batch, and
only then replaces the slot in the map, on the event loop: the next request goes to the new model, the requests
already admitted finish on the old one, which closes when the last of them is answered. A file that fails to load or
to pass its self-check is refused and the old slot keeps serving.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import EdgeclsError, InferenceError, ModelFileError, RequestError, SelfCheckError
from ..runtime.artifacts import file_sha256
from ..runtime.images import image_from_bytes
from ..runtime.predictor import Prediction, Predictor
from .batcher import Batcher, Job
from .config import ServeConfig
from .metrics import Metrics

FORMATS = ("JPEG", "PNG", "WEBP")  # the only image formats decoded from a request: an EPS never reaches Ghostscript
log = logging.getLogger("edgecls.serve")


@dataclass(frozen=True)
class Outcome:
    """One image's answer from its batch."""

    prediction: Prediction
    logits: np.ndarray
    scores: np.ndarray
    batch_size: int
    queue_s: float
    infer_s: float
    post_s: float


class ModelSlot:
    def __init__(self, name: str, path: Path, predictor: Predictor, sha256: str, version: int, cfg: ServeConfig,
                 metrics: Metrics, infer_pool: ThreadPoolExecutor, decode_pool: ThreadPoolExecutor):
        self.name, self.path, self.predictor, self.sha256, self.version = name, path, predictor, sha256, version
        self.cfg, self.metrics, self.decode_pool = cfg, metrics, decode_pool
        self.loaded_at = time.time()
        step = predictor.max_batch  # a fixed-batch artifact runs its own batch size (padded when short)
        self.batch = step if step else cfg.max_batch
        self.batcher = Batcher(self._run, max_batch=self.batch, max_wait_s=cfg.max_wait_ms / 1e3, executor=infer_pool,
                               workers=cfg.workers)
        self.admitted = 0  # images admitted and not yet answered (bounded by cfg.max_queue)
        self.retiring = False
        self.drift_events = 0
        self._closed: asyncio.Task | None = None

    @property
    def spec(self):
        return self.predictor.spec

    @property
    def queue_depth(self) -> int:
        return self.batcher.depth

    # --- admission ------------------------------------------------------------------------------------------------
    def check_room(self, n: int) -> None:
        """503 with Retry-After when `n` more images would exceed the queue bound (413 when they never could)."""
        if n > self.cfg.max_queue:
            raise RequestError(413, f"{n} images in one request, more than model {self.name} ever holds at once "
                                    f"({self.cfg.max_queue}, --max-queue); split the request")
        if self.admitted + n > self.cfg.max_queue:
            raise RequestError(503, f"model {self.name} has {self.admitted} images in flight, the most it holds is "
                                    f"{self.cfg.max_queue}; retry shortly", {"Retry-After": "1"})

    async def classify(self, images: Sequence[Any], topk: int, timeout_s: float) -> tuple[list[Outcome], float]:
        """Admit, decode and preprocess (decode threads), batch and run the images of one request; (outcomes in
        order, decode seconds). images: encoded bytes, or (HxWxC uint8 frame, 'RGB'|'BGR')."""
        self.check_room(len(images))
        self.admitted += len(images)
        deadline = time.monotonic() + timeout_s
        try:
            loop = asyncio.get_running_loop()
            t0 = time.perf_counter()
            try:
                xs = await asyncio.wait_for(asyncio.gather(*(loop.run_in_executor(self.decode_pool, self._prepare, i)
                                                             for i in images)), deadline - time.monotonic())
                decode_s = time.perf_counter() - t0
                futures = [self.batcher.submit(x, topk) for x in xs]
                outcomes = await asyncio.wait_for(asyncio.gather(*futures), deadline - time.monotonic())
            except asyncio.TimeoutError:
                raise RequestError(504, f"no answer within the request's deadline of {timeout_s * 1e3:.0f} ms (the "
                                        f"model has {self.queue_depth} images queued); retry, or give a longer "
                                        "timeout") from None
            self.metrics.images.labels(self.name).inc(len(images))
            return list(outcomes), decode_s
        finally:
            self.release(len(images))

    def release(self, n: int) -> None:
        self.admitted -= n
        if self.retiring and self.admitted == 0:
            self._close_soon()

    # --- the work, on threads -------------------------------------------------------------------------------------
    def _prepare(self, image: Any) -> np.ndarray:
        if isinstance(image, (bytes, bytearray, memoryview)):
            arr = image_from_bytes(image, channels=self.spec.input.channels, formats=FORMATS,
                                   max_pixels=self.cfg.max_pixels)
            return self.predictor.preprocess(arr, color="RGB")
        frame, color = image
        return self.predictor.preprocess(frame, color=color)

    def _run(self, jobs: list[Job]) -> list[Any]:
        """One batch on an inference thread: infer, scores, predictions, drift; a row with NaN/inf logits fails alone."""
        t0 = time.monotonic()
        n, pred = len(jobs), self.predictor
        batch = jobs[0].x if n == 1 else np.concatenate([j.x for j in jobs])
        step = pred.max_batch
        padded = batch if not step or n % step == 0 else np.concatenate(
            [batch, np.zeros((step - n % step, *batch.shape[1:]), batch.dtype)])
        logits = pred.infer(padded)[:n]
        t1 = time.monotonic()
        ok = np.isfinite(logits).all(axis=1)
        good = logits if ok.all() else logits[ok]
        preds: list[Prediction] = []
        scores = np.empty((0, logits.shape[1]), np.float32)
        if len(good):
            scores = pred.scores(good)
            ood = pred.ood_scores(good) if pred.open_set is not None else None
            preds = pred.to_predictions(scores, max(j.topk for j in jobs), ood=ood)
            pred.observe(batch if ok.all() else batch[ok], good, preds)
        t2 = time.monotonic()
        self.metrics.batch_size.labels(self.name).observe(n)
        out: list[Any] = []
        it = iter(zip(preds, scores))
        for job, fine, row in zip(jobs, ok, logits):
            if not fine:
                out.append(InferenceError(f"{self.path.name} produced NaN/inf logits for this image; the model is "
                                          "numerically broken (re-export it in fp32)"))
                continue
            p, s = next(it)
            out.append(Outcome(p, row, s, n, t0 - job.queued, t1 - t0, t2 - t1))
        return out

    # --- lifetime -------------------------------------------------------------------------------------------------
    def start(self) -> None:
        self.batcher.start()

    def retire(self) -> None:
        """Take no new requests; close once the admitted ones are answered."""
        self.retiring = True
        if self.admitted == 0:
            self._close_soon()

    def _close_soon(self) -> None:
        if self._closed is None:
            self._closed = asyncio.get_running_loop().create_task(self.close())

    async def close(self) -> None:
        await self.batcher.drain()  # no batch is running in the model after this
        await asyncio.get_running_loop().run_in_executor(None, self.predictor.close)

    def describe(self) -> dict:
        s = self.spec
        return {"name": self.name, "version": self.version, "file": self.path.name, "sha256": self.sha256,
                "backend": self.predictor.backend_name, "device": self.predictor.device, "arch": s.arch,
                "task": s.task, "classes": s.num_classes, "labels": list(s.labels),
                "input": {"layout": s.input.layout, "dtype": s.input.dtype, "height": s.input.height,
                          "width": s.input.width, "channels": s.input.channels},
                "batch": {"max": self.batch, "fixed": self.predictor.max_batch is not None},
                "self_check": self.predictor.self_check_result.status if self.predictor.self_check_result else None,
                "drift_reference": s.reference is not None, "drift_events": self.drift_events,
                "loaded_at": self.loaded_at}


class Repository:
    """name -> the ModelSlot serving it; the thread pools every model shares."""

    def __init__(self, paths: dict[str, Path], cfg: ServeConfig):
        self.paths, self.cfg = dict(paths), cfg
        self.slots: dict[str, ModelSlot] = {}
        self.metrics = Metrics(lambda: list(self.slots.values()))
        self.infer_pool = ThreadPoolExecutor(cfg.workers, thread_name_prefix="edgecls-infer")
        self.decode_pool = ThreadPoolExecutor(cfg.decode_threads or os.cpu_count() or 1,
                                              thread_name_prefix="edgecls-decode")
        self.load_pool = ThreadPoolExecutor(1, thread_name_prefix="edgecls-load")
        self.ready = False
        self._locks: dict[str, asyncio.Lock] = {}

    @property
    def default(self) -> str:
        return next(iter(self.paths))

    def load_all(self) -> None:
        """Open every model (at start, before the server listens); the first failure closes the others and raises."""
        try:
            for name, path in self.paths.items():
                self.slots[name] = self.open(name, path, 1)
        except BaseException:
            for slot in self.slots.values():
                slot.predictor.close()
            raise

    def open(self, name: str, path: Path, version: int) -> ModelSlot:
        """Load, self-check and warm up one artifact (on the calling thread); the ModelSlot is not started yet."""
        cfg = self.cfg
        before = file_sha256(path)
        pred = Predictor(path, backend=cfg.backend, device=cfg.device, threads=cfg.threads, topk=cfg.topk,
                         reject=cfg.reject or None)
        try:
            check = pred.run_self_check()
            if check.status == "fail" or (check.status == "no-data" and not cfg.allow_unchecked):
                raise SelfCheckError(f"{path.name} on {pred.backend_name} ({pred.device}): {check}"
                                     + ("; serve it anyway with --allow-unchecked" if check.status == "no-data" else ""),
                                     check)
            if file_sha256(path) != before:
                raise ModelFileError(f"{path} changed while it was being loaded (a copy still being written?); write "
                                     "the new file beside it and rename it over the old one, then load again")
            slot = ModelSlot(name, path, pred, before, version, cfg, self.metrics, self.infer_pool, self.decode_pool)
            spec = pred.spec
            # a runtime allocates (ONNX Runtime's arena, OpenVINO's shapes) on the first run of each batch size: here,
            # not in a request and not as memory growth later
            sizes = {slot.batch} if pred.max_batch else {*range(1, min(slot.batch, 16) + 1),
                                                         *(2**k for k in range(5, 11) if 2**k < slot.batch), slot.batch}
            for n in sorted(sizes):
                pred.infer(np.zeros((n, *spec.input.shape[1:]), np.dtype(spec.input.dtype)))
            if spec.reference is not None and not spec.multilabel:
                pred.start_monitor(window=cfg.drift_window, on_drift=lambda e, slot=slot: self._drift(slot, e))
        except BaseException:
            pred.close()
            raise
        return slot

    def _drift(self, slot: ModelSlot, event: Any) -> None:
        slot.drift_events += 1
        self.metrics.drift.labels(slot.name, event.statistic).inc()
        log.warning("drift on %s v%d: %s", slot.name, slot.version, event.message)

    def get(self, name: str) -> ModelSlot:
        slot = self.slots.get(name)
        if slot is None:
            raise RequestError(404, f"no model named {name!r}; this server has {', '.join(self.slots)}")
        return slot

    async def start(self) -> None:
        for name, slot in self.slots.items():
            slot.start()
            self.metrics.loads.labels(name, "loaded").inc()
        self.ready = True

    async def reload(self, name: str) -> ModelSlot:
        """Hot swap: load the model's file again beside the serving one, self-check it, switch. Refused (400, the
        old one keeps serving) when the file does not load or does not pass."""
        self.get(name)
        async with self._locks.setdefault(name, asyncio.Lock()):
            old = self.slots[name]
            loop = asyncio.get_running_loop()
            try:
                new = await loop.run_in_executor(self.load_pool, self.open, name, self.paths[name], old.version + 1)
            except Exception as exc:  # noqa: BLE001 - whatever the new file does wrong, the old model keeps serving
                self.metrics.loads.labels(name, "refused").inc()
                why = str(exc) if isinstance(exc, EdgeclsError) else f"{type(exc).__name__}: {exc}"
                log.error("reload of %s refused, version %d keeps serving: %s", name, old.version, why)
                raise RequestError(400, f"{self.paths[name].name} was refused and version {old.version} (sha256 "
                                        f"{old.sha256[:12]}) keeps serving: {why}") from exc
            new.start()
            self.slots[name] = new  # one assignment on the event loop: the next request is admitted by the new model
            old.retire()
            self.metrics.loads.labels(name, "loaded").inc()
            log.warning("reloaded %s: version %d (sha256 %s), was %d", name, new.version, new.sha256[:12], old.version)
            return new

    async def reload_all(self) -> dict[str, str]:
        """Every model reloaded (SIGHUP): name -> 'version N' or why it was refused."""
        out = {}
        for name in list(self.slots):
            try:
                out[name] = f"version {(await self.reload(name)).version}"
            except RequestError as exc:
                out[name] = str(exc)
        return out

    async def stop(self) -> None:
        self.ready = False
        for slot in list(self.slots.values()):
            await slot.close()
        for pool in (self.decode_pool, self.infer_pool, self.load_pool):
            pool.shutdown(wait=False, cancel_futures=True)


__all__ = ["FORMATS", "ModelSlot", "Outcome", "Repository"]
