"""Every backend x precision answers like PyTorch FP32 on the same real photos (scikit-image's, edgecls.data.samples).

Each artifact gets the reference pixels (PIL resize/crop, as verification does), so only the runtime and the
precision are under test. Tolerances per precision:

  precision      top-1 vs PyTorch                       max |softmax diff|   why
  fp32           every photo                            2e-3                 same math, other kernel order
  fp16           every photo                            2e-2                 ~3 significant digits per op
  dynamic_int8   every confident photo (p >= 0.5),      0.25                 measured 0.18 (EfficientNet-Lite0)
  int8 (PT2E)    >= 80% of all photos                   0.25                 measured 0.14-0.18 on these photos
  int8_all       same                                   0.6                  every op int8 incl. the logits:
                                                                             measured 0.53 (coffee 0.95 -> 0.55)
Confident photos keeping their top-1 is what a user sees; the INT8 score bounds are measured values with some
headroom (calibration here is only the 11 photos), loose enough not to flake and tight enough to catch a broken
scale, which moves scores to near uniform. The same top-1 rules gate every export (exporters/verify.py).
TensorRT cases need tensorrt and a CUDA GPU and skip with the reason otherwise.
"""

from __future__ import annotations

import numpy as np
import pytest

import edgecls
from edgecls.exporters.verify import CONFIDENT, MIN_TOP1, reference_pixels, torch_logits
from edgecls.runtime import preprocess as P

PROB_TOL = {"fp32": 2e-3, "fp16": 2e-2, "dynamic_int8": 0.25, "int8": 0.25, "int8_all": 0.6}

CPU_CASES = [  # (fixture key, precision)
    ("pt", "fp32"), ("onnx", "fp32"), ("onnx_dyn", "fp32"), ("onnx_f32", "fp32"), ("xml", "fp32"), ("tflite", "fp32"),
    ("xml_fp16", "fp16"), ("tflite_int8", "int8"), ("tflite_int8_all", "int8_all"), ("pte", "fp32"), ("pte_int8", "int8"),
]
FIXTURE = {"pte": "executorch_artifacts", "pte_int8": "executorch_artifacts", "xml_fp16": "quantized_artifacts",
           "tflite_int8": "quantized_artifacts", "tflite_int8_all": "quantized_artifacts"}  # default: artifacts
TRT_CASES = ["fp32", "fp16", "int8"]


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


@pytest.fixture(scope="module")
def reference(lite0, photos):
    model, spec = lite0
    pixels = reference_pixels(photos, spec)
    return pixels, torch_logits(model, spec, pixels)


def check_agrees(pred: edgecls.Predictor, precision: str, reference, photos) -> None:
    pixels, ref = reference
    got = pred.infer(np.concatenate([P.to_input(px, pred.spec) for px in pixels]))
    p_ref, p_got = softmax(ref), softmax(got)
    names = list(photos)
    agree = ref.argmax(1) == got.argmax(1)
    sure = p_ref.max(1) >= CONFIDENT
    assert sure.sum() >= 2, "the photos should include confident ones (coffee, rocket)"
    lost = [names[i] for i in np.flatnonzero(sure & ~agree)]
    assert not lost, f"{pred.backend_name} {precision} changed the top-1 of confident photos {lost}"
    assert agree.mean() >= MIN_TOP1[precision], f"top-1 agreement {agree.mean():.0%} < {MIN_TOP1[precision]:.0%}"
    dp = float(np.abs(p_ref - p_got).max())
    assert dp <= PROB_TOL[precision], f"{pred.backend_name} {precision}: max |softmax diff| {dp:.3f} > {PROB_TOL[precision]}"


@pytest.mark.slow
@pytest.mark.parametrize("key,precision", CPU_CASES, ids=[k for k, _ in CPU_CASES])
def test_cpu_backend_agrees_with_pytorch(key, precision, request, reference, photos):
    path = request.getfixturevalue(FIXTURE.get(key, "artifacts"))[key]  # builds only the exports this case needs
    pred = edgecls.Predictor(path, threads=2)
    assert pred.spec.artifact.get("precision", "fp32") == precision
    check_agrees(pred, precision, reference, photos)


def test_int8_artifacts_say_their_scheme(quantized_artifacts):
    pt2e = edgecls.Predictor(quantized_artifacts["tflite_int8"]).spec.artifact
    assert pt2e["quantizer"] == "pt2e" and pt2e["io_dtype"] == {"input": "uint8", "output": "int8"}
    assert pt2e["calibration_images"] == 11 and pt2e["float_islands"] >= 0
    full = edgecls.Predictor(quantized_artifacts["tflite_int8_all"]).spec.artifact
    assert full["quantizer"] == "ai_edge_quantizer" and full["io_dtype"]["output"] == "int8"
    step = edgecls.Predictor(quantized_artifacts["tflite_int8"]).spec.lineage[-1]
    assert step.metrics["confident_top1_agreement"] == 1.0  # the verification that gated the export, recorded


def test_calibration_input_errors(lite0, tmp_path):
    model, spec = lite0
    with pytest.raises(edgecls.ExportError, match="uint8"):
        edgecls.export(model, spec, tmp_path / "m.tflite", precision="int8_all", calibration=[np.zeros((8, 8, 3), np.float32)])
    with pytest.raises(edgecls.ExportError, match="takes no calibration"):
        edgecls.export(model, spec, tmp_path / "m.tflite", precision="fp16", calibration=[np.zeros((8, 8, 3), np.uint8)])
    with pytest.raises(edgecls.ExportError, match="choose one of"):
        edgecls.export(model, spec, tmp_path / "m.tflite", precision="int4")
    assert not [p for p in tmp_path.iterdir() if not p.name.startswith(".")]


# --- TensorRT: on an NVIDIA GPU only ---------------------------------------------------------------------------
def _trt_missing() -> str | None:
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return "tensorrt is not installed (pip install 'edgecls[tensorrt]')"
    import torch

    return None if torch.cuda.is_available() else "no CUDA GPU visible to torch"


@pytest.fixture(scope="module")
def engines(lite0, photos, tmp_path_factory):
    why = _trt_missing()
    if why:
        pytest.skip(f"TensorRT cases need tensorrt and an NVIDIA GPU: {why}")
    import tensorrt as trt

    model, spec = lite0
    d = tmp_path_factory.mktemp("engines")
    out = {}
    for precision in TRT_CASES:
        try:
            out[precision] = edgecls.export(model, spec, d / f"lite0_{precision}.engine", precision=precision,
                                            calibration=photos if precision == "int8" else None,
                                            timing_cache=d / "timing.cache").path
        except edgecls.ExportError as exc:  # TensorRT 11 refuses FP32-ONNX fp16/calibrator int8 by design
            if int(trt.__version__.split(".")[0]) < 11:
                raise
            out[precision] = exc
    return out


@pytest.mark.gpu
@pytest.mark.parametrize("precision", TRT_CASES)
def test_tensorrt_agrees_with_pytorch(precision, engines, reference, photos):
    got = engines[precision]
    if isinstance(got, Exception):
        assert "TensorRT 11 removed" in str(got)
        pytest.skip(f"TensorRT 11 builds {precision} only from a typed/Q-DQ ONNX: {got}")
    pred = edgecls.Predictor(got, device="cuda")
    art = pred.spec.artifact
    assert art["format"] == "tensorrt" and art["tensorrt"] and art["compute_capability"] and art["gpu"]
    check_agrees(pred, precision, reference, photos)
    assert len(pred.predict([photos["coffee"]] * 3, color="RGB")) == 3  # fixed batch 1: the Predictor loops


@pytest.mark.gpu
def test_tensorrt_refuses_an_engine_from_another_gpu(engines, tmp_path):
    import shutil

    from edgecls.runtime.artifacts import read_sidecar, write_sidecar

    src = engines["fp32"]
    dst = tmp_path / "foreign.engine"
    shutil.copy(src, dst)
    spec = read_sidecar(src)
    write_sidecar(dst, spec.replace(artifact={**spec.artifact, "compute_capability": "1.0"}))
    with pytest.raises(edgecls.errors.ModelFileError, match="rebuild"):
        edgecls.Predictor(dst, device="cuda")


def test_tensorrt_missing_is_a_clear_error(lite0, tmp_path):
    if _trt_missing() is None:
        pytest.skip("tensorrt and a GPU are present: the missing-runtime path cannot be shown here")
    model, spec = lite0
    why = r"pip install 'edgecls\[tensorrt\]'|NVIDIA GPU"  # the runtime is missing, or the GPU it needs
    with pytest.raises((edgecls.errors.BackendUnavailableError, edgecls.ExportError), match=why):
        edgecls.export(model, spec, tmp_path / "m.engine")
    assert not list(tmp_path.iterdir())  # nothing written, not even a staging folder
    # a file that exists, so "not found" cannot stand in for "no runtime" (it did: the file was never there)
    engine = tmp_path / "m.engine"
    engine.write_bytes(b"a plan file this machine cannot run")
    with pytest.raises(edgecls.errors.BackendUnavailableError, match=why):
        edgecls.Predictor(engine, device="cuda")
