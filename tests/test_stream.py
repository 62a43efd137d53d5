"""Streams over a real video file the test writes, concurrency on one Predictor, async calls."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import pytest

import edgecls
from edgecls.stream import StreamError

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

    from edgecls.stream import _Capture

    clip = tmp_path / "live.avi"
    shutil.copy(video, clip)
    cap = _Capture(str(clip), reconnect=2, backoff_s=0.01)
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
