"""Video streams: OpenCV capture (webcam index, file, RTSP URL) or any iterator of frames, pipelined.

A reader thread grabs and preprocesses frame N+1 while the caller's thread runs inference on frame N.
drop_frames=True keeps only the newest frame (real time: latency stays bounded, stale frames are counted as
dropped); False processes every frame in order. Live sources (webcam, rtsp://...) are reopened on failure with
backoff; a file or an iterator simply ends.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

import numpy as np

from .errors import EdgeclsError, InputError


class StreamError(EdgeclsError, RuntimeError):
    """A video source cannot be opened, or a live source stayed down past the reconnect policy."""


@dataclass(frozen=True)
class StreamResult:
    frame_index: int  # position in the source (dropped frames leave gaps)
    timestamp: float  # time.monotonic() when the frame was read
    prediction: Any  # Prediction (smoothed scores when smoothing is on)
    latency_ms: float  # read -> result
    dropped: int  # frames dropped so far
    frame: np.ndarray | None = None  # the frame itself when keep_frames=True (for overlays)


_END = object()


def _is_live(source: Any) -> bool:
    return isinstance(source, int) or (isinstance(source, str) and source.split("://")[0].lower() in ("rtsp", "rtmp", "http", "https", "udp", "tcp"))


class _Capture:
    """cv2.VideoCapture with a reconnect policy for live sources."""

    def __init__(self, source: Any, reconnect: int, backoff_s: float):
        import cv2

        self.cv2, self.source, self.reconnect, self.backoff_s = cv2, source, reconnect, backoff_s
        self.live = _is_live(source)
        self.cap = self._open()

    def _open(self):
        cap = self.cv2.VideoCapture(self.source)
        if not cap.isOpened():
            cap.release()
            raise StreamError(f"cannot open video source {self.source!r}: check the path/URL/camera index and codecs")
        return cap

    def read(self) -> np.ndarray | None:
        ok, frame = self.cap.read()
        if ok:
            return frame
        if not self.live:
            return None  # a file ended
        for attempt in range(1, self.reconnect + 1):
            self.cap.release()
            time.sleep(self.backoff_s * attempt)
            try:
                self.cap = self._open()
            except StreamError:
                continue
            ok, frame = self.cap.read()
            if ok:
                return frame
        raise StreamError(f"live source {self.source!r} stopped delivering frames and did not come back after {self.reconnect} reconnects")

    def frames(self) -> Iterator[np.ndarray]:
        while (frame := self.read()) is not None:
            yield frame

    def close(self) -> None:
        self.cap.release()


def stream(
    predictor,
    source: Any,
    *,
    color: str | None = None,
    drop_frames: bool = False,
    smoothing: float | None = None,
    keep_frames: bool = False,
    reconnect: int = 5,
    backoff_s: float = 0.5,
    queue_size: int = 4,
) -> Iterator[StreamResult]:
    """Yield a StreamResult per processed frame. Closing the generator (break / .close()) shuts the reader down."""
    if smoothing is not None and not 0.0 < smoothing <= 1.0:
        raise ValueError(f"smoothing={smoothing} must be in (0, 1]: the weight of the newest frame's scores")
    if isinstance(source, (int, str)):
        cap: _Capture | None = _Capture(source, reconnect, backoff_s)
        frames: Iterable[np.ndarray] = cap.frames()
        color = color or "BGR"  # OpenCV delivers BGR
    elif hasattr(source, "__iter__"):
        cap, frames = None, iter(source)
        if color is None:
            raise InputError("stream() over an iterator of frames needs color='RGB' or 'BGR'")
    else:
        raise InputError(f"cannot stream from a {type(source).__name__}; pass a camera index, a file path/URL or an iterator of frames")

    q: queue.Queue = queue.Queue(maxsize=1 if drop_frames else max(1, queue_size))
    stop = threading.Event()
    dropped = [0]

    def put(item) -> None:
        while not stop.is_set():
            if drop_frames and item is not _END and not isinstance(item, BaseException):
                try:
                    q.get_nowait()  # the newest frame wins: discard the one waiting
                    dropped[0] += 1
                except queue.Empty:
                    pass
            try:
                q.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def reader() -> None:
        try:
            for i, frame in enumerate(frames):
                if stop.is_set():
                    break
                t = time.monotonic()
                x = predictor.preprocess(frame, color=color)
                put((i, t, x, frame if keep_frames else None))
        except BaseException as exc:  # handed to the consumer, raised there
            put(exc)
        finally:
            put(_END)

    th = threading.Thread(target=reader, name="edgecls-stream-reader", daemon=True)
    th.start()
    smoothed: np.ndarray | None = None
    try:
        while True:
            item = q.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            i, t, x, frame = item
            logits = predictor.infer(x)
            if smoothing is not None:
                p = predictor.scores(logits)
                smoothed = p if smoothed is None else smoothing * p + (1 - smoothing) * smoothed
                pred = predictor.to_predictions(smoothed)[0]
            else:
                pred = predictor.postprocess(logits)[0]
            yield StreamResult(i, t, pred, (time.monotonic() - t) * 1e3, dropped[0], frame)
    finally:
        stop.set()
        while th.is_alive():
            try:
                q.get_nowait()
            except queue.Empty:
                pass
            th.join(timeout=0.05)
        if cap is not None:
            cap.close()
