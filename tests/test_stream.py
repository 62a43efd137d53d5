"""Streams over a real video file the test writes, concurrency on one Predictor, async calls."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import pytest

import edgecls
from edgecls.runtime.stream import StreamError

ESPRESSO = 967


@pytest.fixture(scope="module")
def video(tmp_path_factory, photos):
    """A 1080p MJPG video: 12 frames of coffee, then 12 of chelsea (BGR, as cameras deliver)."""
    path = tmp_path_factory.mktemp("video") / "clip.avi"
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, (1920, 1080))
    assert w.isOpened(), "OpenCV cannot write MJPG here"
    for name in ["coffee"] * 12 + ["chelsea"] * 12:
        w.write(cv2.resize(np.ascontiguousarray(photos[name][..., ::-1]), (1920, 1080)))
    w.release()
    return path


def _reader_threads() -> list:
    return [t for t in threading.enumerate() if t.name == "edgecls-stream-reader"]


@pytest.mark.parametrize("name", ["onnx", "xml"])
def test_stream_every_frame_in_order(predictors, video, name):
    results = list(predictors[name].stream(str(video)))
    assert [r.frame_index for r in results] == list(range(24))
    assert all(r.prediction.index == ESPRESSO for r in results[:12])
    assert all(r.prediction.index in range(281, 286) for r in results[12:])
    assert all(r.dropped == 0 and r.latency_ms > 0 for r in results)
    ts = [r.timestamp for r in results]
    assert ts == sorted(ts)


def test_stream_drop_frames_latest_wins(predictors, video):
    results = list(predictors["onnx"].stream(str(video), drop_frames=True))
    idx = [r.frame_index for r in results]
    assert idx == sorted(set(idx)) and idx[-1] == 23  # in order, no repeats, the last frame always arrives
    assert len(results) + results[-1].dropped == 24  # each frame was either processed or counted as dropped


@pytest.mark.parametrize("drop", [True, False])
def test_slow_consumer_drops_stale_frames_only_when_asked(predictors, photos, drop):
    """A consumer slower than its source: with drop_frames the reader keeps only the newest frame, so frames are
    dropped and counted; without, every frame arrives. The consumer waits until the source is exhausted before it
    takes the second result, the slowest a consumer can be, so this does not depend on timing."""
    exhausted = threading.Event()

    def source():
        yield from (photos["coffee"] for _ in range(24))
        exhausted.set()

    gen = predictors["onnx"].stream(source(), color="RGB", drop_frames=drop)
    results = [next(gen)]
    assert drop or not exhausted.is_set()  # without dropping, the reader blocks on the full queue
    if drop:
        assert exhausted.wait(60)
    results += list(gen)
    idx = [r.frame_index for r in results]
    if drop:
        assert results[-1].dropped > 0 and idx[-1] == 23 and len(results) + results[-1].dropped == 24, idx
    else:
        assert idx == list(range(24)) and results[-1].dropped == 0


def test_stream_smoothing_and_frames(predictors, video):
    results = list(predictors["onnx"].stream(str(video), smoothing=0.3, keep_frames=True))
    assert results[0].frame.shape == (1080, 1920, 3)
    # smoothed scores lag the scene change: the first chelsea frame still reads as espresso
    assert results[12].prediction.index == ESPRESSO and results[-1].prediction.index in range(281, 286)


def test_stream_from_iterator_and_clean_shutdown(predictors, photos):
    frames = (photos["coffee"] for _ in range(1000))
    gen = predictors["onnx"].stream(frames, color="RGB")
    first = [next(gen) for _ in range(3)]
    assert all(r.prediction.index == ESPRESSO for r in first)
    gen.close()
    assert not _reader_threads()


def test_stream_bad_sources(predictors, tmp_path):
    with pytest.raises(StreamError, match="cannot open"):
        list(predictors["onnx"].stream(str(tmp_path / "missing.mp4")))
    with pytest.raises(edgecls.InputError, match="color"):
        list(predictors["onnx"].stream(iter([np.zeros((8, 8, 3), np.uint8)])))
    with pytest.raises(edgecls.InputError, match="cannot stream"):
        list(predictors["onnx"].stream(3.5))
    bad_frames = iter([np.zeros((64, 64, 3), np.uint8), np.zeros((64, 64), np.uint8)])
    with pytest.raises(edgecls.InputError, match="grayscale"):
        list(predictors["onnx"].stream(bad_frames, color="RGB"))
    assert not _reader_threads()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["onnx", "xml", "pt", "tflite"])
def test_threads_sharing_one_predictor_match_serial(predictors, photos, name):
    pred = predictors[name]
    imgs = list(photos.values())
    serial = [pred.predict(i, color="RGB") for i in imgs]

    def work(seed: int):
        order = np.random.default_rng(seed).integers(0, len(imgs), 25)
        return [(int(j), pred.predict(imgs[j], color="RGB")) for j in order]

    with ThreadPoolExecutor(8) as ex:
        for rows in ex.map(work, range(8)):
            for j, p in rows:
                assert p.index == serial[j].index
                assert [t.index for t in p.topk] == [t.index for t in serial[j].topk]
                assert p.score == pytest.approx(serial[j].score, abs=1e-5)


def test_predict_async(artifacts, photos):
    with edgecls.Predictor(artifacts["onnx"]) as pred:
        futs = [pred.predict_async(photos["coffee"], color="RGB") for _ in range(6)]
        batch = pred.predict_async([photos["coffee"], photos["chelsea"]], color="RGB")
        assert all(f.result(timeout=60).index == ESPRESSO for f in futs)
        assert [p.index for p in batch.result(timeout=60)][0] == ESPRESSO
        bad = pred.predict_async(np.zeros((4, 4), np.uint8), color="RGB")
        with pytest.raises(edgecls.InputError):
            bad.result(timeout=60)


def test_live_source_reconnect_policy(video, tmp_path):
    """A live source that ends is reopened (with backoff); one that stays gone raises StreamError."""
    import shutil

    from edgecls.runtime.stream import Capture

    clip = tmp_path / "live.avi"
    shutil.copy(video, clip)
    cap = Capture(str(clip), reconnect=2, backoff_s=0.01)
    cap.live = True  # treat the file like a camera: end of data is a disconnect
    n = sum(1 for _ in range(24) if cap.read() is not None)
    assert n == 24
    assert cap.read() is not None  # reconnected: the source delivers again
    clip.unlink()
    cap.cap.release()
    with pytest.raises(StreamError, match="did not come back after 2 reconnects"):
        while True:
            cap.read()
    cap.close()


# --- network sources: a real HTTP server and a real stalled TCP peer on loopback ---------------------------------
@pytest.fixture
def http_folder(video):
    """A plain HTTP file server over the test video's folder (what serving a recorded clip looks like)."""
    import functools
    import http.server

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(video.parent)))
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    yield f"http://127.0.0.1:{srv.server_port}"
    srv.shutdown()
    srv.server_close()


def test_http_video_file_ends_at_eof(predictors, video, http_folder):
    """A video file over http has a known length: it ends like a local file (it was treated as a live camera and
    reopened from the start forever)."""
    url = f"{http_folder}/{video.name}"
    done: list = []
    th = threading.Thread(target=lambda: done.append([r.frame_index for r in predictors["onnx"].stream(url, reconnect=2)]),
                          daemon=True)
    th.start()
    th.join(120)
    assert not th.is_alive(), "the stream over an http video file never ended"
    assert done == [list(range(24))]


@pytest.fixture
def stalled_server():
    """A TCP server that accepts connections and never sends a byte: a camera that hangs."""
    import socket

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    held = []
    stop = threading.Event()

    def accept():
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(srv.accept()[0])
            except OSError:
                continue

    th = threading.Thread(target=accept, daemon=True)
    th.start()
    yield f"http://127.0.0.1:{srv.getsockname()[1]}/video.mjpg"
    stop.set()
    th.join(5)
    for c in held:
        c.close()
    srv.close()


def test_stalled_source_times_out_instead_of_hanging(predictors, stalled_server):
    import time

    t = time.monotonic()
    with pytest.raises(StreamError, match="cannot open video source"):
        next(predictors["onnx"].stream(stalled_server, open_timeout_s=1.0, read_timeout_s=1.0))
    assert time.monotonic() - t < 20  # OpenCV's own default is 30 s per attempt


class _StallAfterHalf:
    """An HTTP server that sends the header and the first half of a real video, then stalls with the socket open."""

    def __init__(self, data: bytes):
        import socket

        self.data, self.srv, self.conns = data, socket.socket(), []
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(16)
        self.url = f"http://127.0.0.1:{self.srv.getsockname()[1]}/live"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            self.conns.append(c)
            c.recv(65536)
            # no Content-Length; the reader gets the first frames, then its next read waits on a silent socket
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: video/x-msvideo\r\n\r\n" + self.data[: len(self.data) // 2])

    def close(self):
        self.srv.close()
        for c in self.conns:
            c.close()


def test_closing_a_stream_while_the_source_stalls_returns(predictors, video):
    """The reader is blocked in a read from a source that stopped sending: closing the stream must not wait for
    OpenCV's 30 s default (a live source then reconnects, each attempt another 30 s)."""
    import time

    server = _StallAfterHalf(video.read_bytes())
    try:
        gen = predictors["onnx"].stream(server.url, open_timeout_s=2.0, read_timeout_s=1.0, backoff_s=0.2)
        first = next(gen)
        assert first.prediction.index == ESPRESSO
        for r in gen:  # drain what arrived; the source then stalls inside a read
            if r.frame_index >= 4:
                break
        t = time.monotonic()
        gen.close()
        closed_in = time.monotonic() - t
        assert closed_in < 10, f"closing took {closed_in:.1f} s"
        for _ in range(100):
            if not _reader_threads():
                break
            time.sleep(0.1)
        assert not _reader_threads()
    finally:
        server.close()
