"""Every CPU backend, real weights, real photos: same answers through one API."""

import cv2
import numpy as np
import pytest
from PIL import Image

import edgecls
from edgecls.runtime import preprocess as P

CATS = set(range(281, 286))
ESPRESSO = 967
BACKENDS = ["pt", "onnx", "onnx_dyn", "onnx_f32", "xml", "tflite"]


def reference_logits(model, spec, img):
    import torch

    with torch.inference_mode():
        return model(torch.from_numpy(P.reference(img, "RGB", spec))).numpy()[0]


@pytest.mark.parametrize("name", BACKENDS)
def test_known_photos(predictors, photos, name):
    pred = predictors[name]
    assert pred.predict(photos["chelsea"], color="RGB").index in CATS
    coffee = pred.predict(photos["coffee"], color="RGB")
    assert coffee.index == ESPRESSO and coffee.label == "espresso"


@pytest.mark.slow
@pytest.mark.parametrize("name", BACKENDS)
def test_top5_sets_match_pytorch_on_every_photo(predictors, photos, name):
    base = predictors["pt"]
    for img in photos.values():
        x_ref = base.preprocess(img, color="RGB")
        want = {t.index for t in base.postprocess(base.infer(x_ref))[0].topk}
        got = predictors[name].predict(img, color="RGB")
        assert {t.index for t in got.topk} == want


@pytest.mark.slow
def test_fast_path_keeps_confident_answers_of_the_reference(lite0, predictors, photos):
    """Where the reference preprocessing gives a confident answer (p > 0.5), the fast path gives the same top-1."""
    model, spec = lite0
    checked = 0
    for img in photos.values():
        ref = reference_logits(model, spec, img)
        p = np.exp(ref - ref.max())
        p /= p.sum()
        if p.max() > 0.5:
            checked += 1
            assert predictors["onnx"].predict(img, color="RGB").index == int(ref.argmax())
    assert checked >= 2


def test_scores_are_softmax_of_pytorch_logits(lite0, predictors, photos):
    model, spec = lite0
    pred = predictors["onnx"]
    x = P.reference_pixels(photos["coffee"], "RGB", spec)
    logits = reference_logits(model, spec, photos["coffee"])
    p = np.exp(logits - logits.max())
    p /= p.sum()
    got = pred.postprocess(pred.infer(P.to_input(x, pred.spec)), topk=3)[0]
    np.testing.assert_allclose([t.score for t in got.topk], np.sort(p)[::-1][:3], rtol=1e-4)


def test_input_kinds_agree(predictors, photos, tmp_path):
    pred = predictors["onnx"]
    rgb = photos["chelsea"]
    path = tmp_path / "chelsea.png"
    Image.fromarray(rgb).save(path)
    bgr = np.ascontiguousarray(rgb[..., ::-1])
    a = pred.predict(rgb, color="RGB")
    assert pred.predict(bgr, color="BGR").topk == a.topk
    assert pred.predict(Image.fromarray(rgb)).topk == a.topk
    assert pred.predict(str(path)).topk == a.topk
    assert pred.predict(path).topk == a.topk


def test_batches_and_fixed_batch_models(predictors, photos):
    imgs = [photos["chelsea"], photos["coffee"], photos["rocket"]]
    singles = [predictors["onnx"].predict(i, color="RGB") for i in imgs]
    for name in ("onnx", "onnx_dyn", "xml", "pt", "tflite"):
        batch = predictors[name].predict(imgs, color="RGB")
        assert [b.index for b in batch] == [s.index for s in singles]
    assert len(predictors["onnx_dyn"].predict_batch(imgs, color="RGB")) == 3


def test_predictor_default_color_for_camera_apps(artifacts, photos):
    pred = edgecls.Predictor(artifacts["onnx"], color="BGR")
    bgr = np.ascontiguousarray(photos["coffee"][..., ::-1])
    assert pred.predict(bgr).index == ESPRESSO


def test_temperature_softens_scores_without_reordering(artifacts, photos):
    base = edgecls.Predictor(artifacts["onnx"])
    hot = edgecls.Predictor(artifacts["onnx"], spec=base.spec.replace(temperature=3.0))
    a, b = base.predict(photos["coffee"], color="RGB"), hot.predict(photos["coffee"], color="RGB")
    assert [t.index for t in a.topk] == [t.index for t in b.topk]
    assert b.score < a.score


def test_1080p_bgr_camera_frame(predictors, photos):
    frame = cv2.resize(np.ascontiguousarray(photos["coffee"][..., ::-1]), (1920, 1080))
    for name in ("onnx", "xml", "tflite"):
        assert predictors[name].predict(frame, color="BGR").index == ESPRESSO


def test_topk_and_repr(predictors, photos):
    p = predictors["xml"].predict(photos["coffee"], color="RGB", topk=3)
    assert len(p.topk) == 3 and p.topk[0].score >= p.topk[1].score >= p.topk[2].score
    assert "espresso" in repr(p) and "openvino" in repr(predictors["xml"])


def test_openvino_cache_dir_fills_and_gives_the_same_answers(artifacts, photos, tmp_path):
    """The compiled-model cache changes load time only: a Predictor loaded from the filled cache answers alike."""
    cache = tmp_path / "cache"
    plain = edgecls.Predictor(artifacts["xml"], threads=1)
    first = edgecls.Predictor(artifacts["xml"], threads=1, cache_dir=cache)
    blobs = sorted(cache.iterdir())
    assert blobs, "OpenVINO wrote no compiled blob"
    again = edgecls.Predictor(artifacts["xml"], threads=1, cache_dir=cache)
    assert sorted(cache.iterdir()) == blobs
    # OpenVINO's own word: the first compiled and wrote the blob, the second loaded it instead of compiling
    assert first.session.loaded_from_cache is False and again.session.loaded_from_cache is True
    assert plain.session.loaded_from_cache is False
    x = plain.preprocess(photos["coffee"], color="RGB")
    np.testing.assert_allclose(again.infer(x), plain.infer(x), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(first.infer(x), plain.infer(x), rtol=1e-5, atol=1e-5)
    with pytest.raises(edgecls.InputError, match="cache_dir is for runtimes that compile on load"):
        edgecls.Predictor(artifacts["onnx"], cache_dir=cache)


@pytest.mark.slow
def test_close_releases_the_runtime_session(artifacts, photos):
    """close() drops the session (the runtime's memory, threads and file handles go with it); later calls say why."""
    import gc
    import weakref

    for name in ("onnx", "xml", "pt", "tflite"):
        pred = edgecls.Predictor(artifacts[name])
        assert pred.predict_async(photos["coffee"], color="RGB").result(timeout=60).index == ESPRESSO
        session = weakref.ref(pred.session)
        pred.close()
        gc.collect()
        assert session() is None, f"{name}: the session outlived close()"
        with pytest.raises(edgecls.InferenceError, match="closed"):
            pred.predict(photos["coffee"], color="RGB")
        pred.close()  # twice is harmless


def test_constructors_leave_process_wide_thread_counts_alone(artifacts, photos):
    """OpenCV's and PyTorch's thread counts are process-wide: a Predictor(threads=1) must not change the app's."""
    import torch

    before = cv2.getNumThreads(), torch.get_num_threads()
    cv2.setNumThreads(3)
    torch.set_num_threads(3)
    try:
        for name in ("onnx", "xml", "pt", "tflite"):
            pred = edgecls.Predictor(artifacts[name], threads=1)
            assert pred.predict(photos["coffee"], color="RGB").index == ESPRESSO
            assert (cv2.getNumThreads(), torch.get_num_threads()) == (3, 3), name
    finally:
        cv2.setNumThreads(before[0])
        torch.set_num_threads(before[1])


def _flushes_denormals() -> bool:  # the FPU's own answer, independent of edgecls
    return float((np.array([1e-39], np.float32) * np.float32(1.0))[0]) == 0.0


def test_flush_to_zero_is_restored_after_pytorch_calls(predictors, photos):
    import torch

    try:
        for state in (True, False, True):
            torch.set_flush_denormal(state)
            assert predictors["pt"].predict(photos["coffee"], color="RGB").index == ESPRESSO
            assert _flushes_denormals() is state
    finally:
        torch.set_flush_denormal(False)


def test_pt_spec_is_checked_against_the_weights(artifacts):
    """The .pt session reports the shape and class count the file really has, so a spec= for another model fails
    like on every other backend (it was built from the given spec and never compared)."""
    spec = edgecls.Predictor(artifacts["pt"]).spec
    with pytest.raises(edgecls.SpecError, match="outputs 1000 classes but the spec has 3 labels"):
        edgecls.Predictor(artifacts["pt"], spec=spec.replace(labels=("a", "b", "c")))
    with pytest.raises(edgecls.SpecError, match="another model"):
        edgecls.Predictor(artifacts["pt"], spec=spec.replace(input=spec.input.replace(height=160, width=160)))
