"""Video streams: OpenCV capture (webcam index, file, RTSP URL) or any iterator of frames, pipelined.

A reader thread grabs and preprocesses frame N+1 while the caller's thread runs inference on frame N.
drop_frames=True keeps only the newest frame (real time: latency stays bounded, stale frames are counted as
dropped); False processes every frame in order. Live sources (webcam, rtsp://..., an http(s) stream of unknown
length) are reopened on failure with backoff; a file, an http(s) video file (its length is known) or an iterator
simply ends. Network sources open and read with timeouts, so a stalled camera cannot hang the reader, and closing
the stream returns within about one read timeout whatever the source does.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

import numpy as np

from ..errors import InputError, StreamError
from .opencv import load_cv2


@dataclass(frozen=True)
class StreamResult:
    frame_index: int  # position in the source (dropped frames leave gaps)
    timestamp: float  # time.monotonic() when the frame was read
    prediction: Any  # Prediction (smoothed scores when smoothing is on)
    latency_ms: float  # read -> result
    dropped: int  # frames dropped so far
    frame: np.ndarray | None = None  # the frame itself when keep_frames=True (for overlays)


_END = object()


LIVE_SCHEMES = ("rtsp", "rtmp", "udp", "tcp", "srt")  # always a live feed
HTTP_SCHEMES = ("http", "https")  # a video file (known length) or a live MJPEG/HLS camera (unknown length)


def _scheme(source: Any) -> str | None:
    return source.split("://")[0].lower() if isinstance(source, str) and "://" in source else None


class Capture:
    """cv2.VideoCapture with timeouts for network sources and a reconnect policy for live ones.

    open_timeout_s / read_timeout_s: how long FFmpeg may wait to connect / for the next data of a URL before the read
    fails (OpenCV's default is 30 s each). stop: an Event that ends reconnect attempts at once (stream shutdown).
    """

    def __init__(self, source: Any, reconnect: int = 5, backoff_s: float = 0.5, *, open_timeout_s: float = 10.0,
                 read_timeout_s: float = 5.0, stop: threading.Event | None = None):
        cv2 = load_cv2()

        for name, v in (("open_timeout_s", open_timeout_s), ("read_timeout_s", read_timeout_s)):
            if not v > 0:
                raise InputError(f"{name}={v} must be > 0 seconds")
        self.cv2, self.source, self.reconnect, self.backoff_s = cv2, source, reconnect, backoff_s
        self.timeouts_ms = (int(open_timeout_s * 1000), int(read_timeout_s * 1000))
        self.stop = stop or threading.Event()
        self.cap = self._open()
        scheme = _scheme(source)
        if isinstance(source, int) or scheme in LIVE_SCHEMES:
            self.live = True
        elif scheme in HTTP_SCHEMES:  # a file served over http has a frame count; a camera's stream has none
            self.live = not self.cap.get(cv2.CAP_PROP_FRAME_COUNT) > 0
        else:
            self.live = False

    def _open(self):
        cv2 = self.cv2
        if _scheme(self.source):  # FFmpeg's own timeouts; a camera index or a local file has no network to wait on
            cap = cv2.VideoCapture(self.source, cv2.CAP_FFMPEG, [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, self.timeouts_ms[0],
                                                                 cv2.CAP_PROP_READ_TIMEOUT_MSEC, self.timeouts_ms[1]])
        else:
            cap = cv2.VideoCapture(self.source)
        if not cap.isOpened():
            cap.release()
            raise StreamError(f"cannot open video source {self.source!r}: check the path/URL/camera index and codecs "
                              f"(a URL gets {self.timeouts_ms[0] / 1000:g} s to connect: open_timeout_s)")
        return cap

    def read(self) -> np.ndarray | None:
        ok, frame = self.cap.read()
        if ok:
            return frame
        if not self.live:
            return None  # a file ended
        for attempt in range(1, self.reconnect + 1):
            self.cap.release()
            if self.stop.wait(self.backoff_s * attempt):
                return None  # shutting down
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
    open_timeout_s: float = 10.0,
    read_timeout_s: float = 5.0,
) -> Iterator[StreamResult]:
    """Yield a StreamResult per processed frame. Closing the generator (break / .close()) shuts the reader down.

    open_timeout_s / read_timeout_s: for URLs (rtsp, http...), how long to wait to connect and for the next data.
    """
    if smoothing is not None and not 0.0 < smoothing <= 1.0:
        raise InputError(f"smoothing={smoothing} must be in (0, 1]: the weight of the newest frame's scores")
    stop = threading.Event()
    if isinstance(source, (int, str)):
        cap: Capture | None = Capture(source, reconnect, backoff_s, open_timeout_s=open_timeout_s,
                                      read_timeout_s=read_timeout_s, stop=stop)
        frames: Iterable[np.ndarray] = cap.frames()
        color = color or "BGR"  # OpenCV delivers BGR
    elif hasattr(source, "__iter__"):
        cap, frames = None, iter(source)
        if color is None:
            raise InputError("stream() over an iterator of frames needs color='RGB' or 'BGR'")
    else:
        raise InputError(f"cannot stream from a {type(source).__name__}; pass a camera index, a file path/URL or an iterator of frames")

    q: queue.Queue = queue.Queue(maxsize=1 if drop_frames else max(1, queue_size))
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
            if cap is not None:
                cap.close()  # here, not in the consumer: the capture is released by the thread that reads it
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
                # open-set rejection judges the current frame's own score (a logit score has no smoothed version)
                ood = predictor.ood_scores(logits) if predictor.open_set is not None else None
                pred = predictor.to_predictions(smoothed, ood=ood)[0]
            else:
                pred = predictor.postprocess(logits)[0]
            predictor.observe(x, logits, [pred])  # a no-op without a drift monitor
            yield StreamResult(i, t, pred, (time.monotonic() - t) * 1e3, dropped[0], frame)
    finally:
        stop.set()
        # the reader notices `stop` after its current read, which a URL's read timeout bounds; a blocking iterator of
        # the caller's may never return, so the wait is bounded too (the reader is a daemon thread and ends with it)
        deadline = time.monotonic() + read_timeout_s + 2.0
        while th.is_alive() and time.monotonic() < deadline:
            try:
                q.get_nowait()
            except queue.Empty:
                pass
            th.join(timeout=0.05)
