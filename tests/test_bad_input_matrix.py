"""Every bad input at edgecls's boundaries, one row each: the call, the typed error it must raise, a pattern naming the
problem and a pattern naming the fix. Runs on a small real model (MobileNetV3-Small 0.5 at 64x64, exported for real
to .pt, ONNX and OpenVINO), so the whole table takes seconds.

Count the cases:  pytest --collect-only -q tests/test_bad_input_matrix.py | tail -1
"""

from __future__ import annotations

import copy
import io
import pickle
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import onnx
import pytest
import torch
from PIL import Image
from serve_client import bomb_png
from test_export import TracedBranch  # data-dependent control flow that ONNX tracing freezes

import edgecls
from edgecls import BackendUnavailableError, ExportError, InferenceError, InputError, ModelFileError, ModelSpec, SpecError
from edgecls.errors import CompressError, ConfigError, DeployError, ExplainError, TrainError
from edgecls.runtime.artifacts import sidecar_path
from edgecls.runtime.spec import MAX_LABELS, MAX_SPEC_BYTES, SCHEMA_VERSION
from edgecls.runtime.stream import StreamError


@dataclass
class Ctx:
    """The real artifacts the cases break: a tiny model exported to .pt, .onnx (fused uint8) and .xml."""

    model: Any
    spec: ModelSpec
    pt: Path
    onnx: Path
    xml: Path
    tmp: Path

    def copy(self, src: Path, name: str, with_sidecar: bool = True) -> Path:
        dst = self.tmp / name
        shutil.copy(src, dst)
        if with_sidecar:
            shutil.copy(sidecar_path(src), sidecar_path(dst))
        if src.suffix == ".xml":
            shutil.copy(src.with_suffix(".bin"), dst.with_suffix(".bin"))
        return dst

    def onnx_spec(self) -> ModelSpec:
        return ModelSpec.from_json(sidecar_path(self.onnx).read_text())

    def pred(self) -> edgecls.Predictor:
        return edgecls.Predictor(self.onnx, color="RGB")

    def spec_dict(self, **top) -> dict:
        d = self.spec.to_dict()
        d.update(top)
        return d


@pytest.fixture(scope="module")
def ctx(tmp_path_factory) -> Ctx:
    d = tmp_path_factory.mktemp("matrix")
    model, spec = edgecls.create_model("mobilenetv3_small_050", labels=("ant", "bee", "cat", "dog"), input_size=64)
    model.eval()
    pt = edgecls.export(model, spec, d / "tiny.pt", verify=False).path
    onnx_path = edgecls.export(model, spec, d / "tiny.onnx", verify=False).path
    xml = edgecls.export(model, spec, d / "tiny.xml", verify=False).path
    scratch = d / "scratch"
    scratch.mkdir()
    return Ctx(model, spec, pt, onnx_path, xml, scratch)


@dataclass(frozen=True)
class Case:
    id: str
    run: Callable[[Ctx], Any]
    error: type[Exception]
    problem: str  # regex: what was wrong
    fix: str  # regex: what to do about it


def spec_case(id: str, change: Callable[[dict], None], problem: str, fix: str = "To fix|re-export|upgrade") -> Case:
    def run(c: Ctx):
        d = c.spec.to_dict()
        change(d)
        ModelSpec.from_dict(d)

    return Case(id, run, SpecError, problem, fix)


def _set(path: str, value: Any) -> Callable[[dict], None]:
    def change(d: dict) -> None:
        *parents, last = path.split(".")
        for p in parents:
            d = d[p]
        d[last] = value

    return change


def _nested(depth: int) -> Any:
    v: Any = 1
    for _ in range(depth):
        v = [v]
    return v


def _jpeg(img: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG")
    return buf.getvalue()


def _write(c: Ctx, name: str, data: bytes) -> Path:
    p = c.tmp / name
    p.write_bytes(data)
    return p


def _raw_onnx(c: Ctx, name: str) -> Path:
    """The model as plain ONNX, without an embedded spec (what a foreign exporter writes)."""
    m = onnx.load(str(c.onnx))
    del m.metadata_props[:]
    p = c.tmp / name
    onnx.save(m, str(p))
    return p


def _other_weights_bin(c: Ctx) -> Path:
    """An .xml beside the .bin of another export of the same graph (a crash between the two renames)."""
    other = copy.deepcopy(c.model)
    with torch.no_grad():
        other.get_classifier().bias.add_(1.0)
    dst = c.copy(c.xml, "mixed.xml")
    fresh = edgecls.export(other, c.spec, c.tmp / "fresh" / "mixed.xml", verify=False).path
    shutil.copy(fresh.with_suffix(".bin"), dst.with_suffix(".bin"))
    return dst


def _nan_model(c: Ctx) -> Path:
    model = copy.deepcopy(c.model)
    with torch.no_grad():
        model.get_classifier().bias[1] = float("nan")
    return edgecls.save(model, c.spec, c.tmp / "nan.pt")


def _old_torch(c: Ctx, monkeypatch_version: str = "2.5.1"):
    real = torch.__version__
    torch.__version__ = monkeypatch_version
    try:
        edgecls.Predictor(c.pt)
    finally:
        torch.__version__ = real


def _stalled_url(c: Ctx):
    import socket
    import threading

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    held = []
    threading.Thread(target=lambda: held.append(srv.accept()), daemon=True).start()
    try:
        next(c.pred().stream(f"http://127.0.0.1:{srv.getsockname()[1]}/cam.mjpg", open_timeout_s=0.5))
    finally:
        srv.close()


RGB = np.zeros((48, 64, 3), np.uint8)
FIX_SPEC = "To fix|re-export|Re-export|upgrade|export the model"

CASES = [
    # --- the spec: reading JSON ------------------------------------------------------------------------------
    Case("spec-not-json", lambda c: ModelSpec.from_json("{not json"), SpecError, "not valid JSON", "re-export"),
    Case("spec-json-array", lambda c: ModelSpec.from_json("[1, 2]"), SpecError, "must be a JSON object", "export the model"),
    Case("spec-too-big", lambda c: ModelSpec.from_json(" " * (MAX_SPEC_BYTES + 1)), SpecError, "over the .* limit", "not an edgecls spec"),
    Case("spec-nested-too-deep-json", lambda c: ModelSpec.from_json('{"schema_version": 1, "metrics": ' + "[" * 100_000 + "]" * 100_000 + "}"),
         SpecError, "nested too deeply", "Re-export"),
    spec_case("spec-no-schema-version", lambda d: d.pop("schema_version"), "no 'schema_version'", "Export the model with edgecls"),
    spec_case("spec-newer-schema", _set("schema_version", SCHEMA_VERSION + 1), "newer than this edgecls", "upgrade edgecls"),
    spec_case("spec-schema-version-text", _set("schema_version", "1"), "schema_version.*Expected `int`", FIX_SPEC),
    spec_case("spec-unknown-field", _set("colour", "RGB"), "unknown field `colour`", "misspelt"),
    spec_case("spec-unknown-nested-field", _set("preprocess.mena", [0.5]), r"preprocess.*unknown field `mena`", "misspelt"),
    spec_case("spec-missing-arch", lambda d: d.pop("arch"), "incomplete.*`arch`", FIX_SPEC),
    spec_case("spec-arch-empty", _set("arch", ""), r"spec\.arch.*length >= 1", FIX_SPEC),
    spec_case("spec-labels-empty", _set("labels", []), r"spec\.labels.*length >= 1", FIX_SPEC),
    spec_case("spec-labels-string", _set("labels", "ab"), r"spec\.labels.*Expected `array`", FIX_SPEC),
    spec_case("spec-label-not-string", _set("labels", ["a", 3]), r"spec\.labels\[1\].*Expected `str`", FIX_SPEC),
    spec_case("spec-labels-duplicate", _set("labels", ["a", "a"]), "duplicates", "distinct name"),
    spec_case("spec-label-newline", _set("labels", ["ant\n", "bee"]), "control character", "remove it"),
    spec_case("spec-label-escape-seq", _set("labels", ["\x1b[31mred", "bee"]), "control character", "remove it"),
    spec_case("spec-label-too-long", _set("labels", ["x" * 10_000, "y"]), r"labels\[0\].*length <= 512", FIX_SPEC),
    spec_case("spec-too-many-labels", _set("labels", [f"c{i}" for i in range(MAX_LABELS + 1)]), "length <= 100000", FIX_SPEC),
    spec_case("spec-height-zero", _set("input.height", 0), r"input\.height.*>= 1", FIX_SPEC),
    spec_case("spec-height-huge", _set("input.height", 10**12), r"input\.height.*<= 8192", FIX_SPEC),
    spec_case("spec-height-float", _set("input.height", 64.5), r"input\.height.*Expected `int`", FIX_SPEC),
    spec_case("spec-height-bool", _set("input.width", True), r"input\.width.*Expected `int`", FIX_SPEC),
    spec_case("spec-channels-4", _set("input.channels", 4), r"input\.channels", "choose one of 1 \\(grayscale\\), 3"),
    spec_case("spec-layout", _set("input.layout", "CHWN"), r"input\.layout.*'CHWN'", "choose one of NCHW, NHWC"),
    spec_case("spec-dtype-int8", _set("input.dtype", "int8"), r"input\.dtype.*'int8'", "choose one of float32"),
    spec_case("spec-uint8-not-fused", _set("input.dtype", "uint8"), "uint8.*needs normalized_in_graph=true", "use float32/float16"),
    spec_case("spec-fused-float", _set("input.normalized_in_graph", True), "normalized_in_graph=true needs input.dtype='uint8'",
              "set input.dtype"),
    spec_case("spec-batch-zero", _set("input.batch", 0), r"input\.batch", FIX_SPEC),
    spec_case("spec-crop-pct", _set("preprocess.crop_pct", 1.5), r"crop_pct.*<= 1\.0", FIX_SPEC),
    spec_case("spec-interpolation", _set("preprocess.interpolation", "lanczos9"), "interpolation.*lanczos9", "choose one of nearest, bilinear"),
    spec_case("spec-resize-mode", _set("preprocess.resize_mode", "fit"), "resize_mode.*'fit'", "choose one of center_crop, stretch"),
    spec_case("spec-color", _set("preprocess.color", "rgb"), r"preprocess\.color.*'rgb'", "choose one of RGB, BGR"),
    spec_case("spec-mean-std-lengths", _set("preprocess.mean", [0.5, 0.5]), "mean .* and std .* same length", "one value per channel"),
    spec_case("spec-mean-per-channel", lambda d: d["preprocess"].update(mean=[0.5], std=[0.5]), "mean has 1 values but input.channels=3",
              "one mean/std per input channel"),
    spec_case("spec-std-zero", _set("preprocess.std", [0.5, 0.0, 0.5]), r"std\[1\].*> 0", FIX_SPEC),
    spec_case("spec-mean-nan", _set("preprocess.mean", [0.5, float("nan"), 0.5]), r"mean\[1\]", FIX_SPEC),
    spec_case("spec-temperature-zero", _set("temperature", 0), r"temperature.*> 0", FIX_SPEC),
    spec_case("spec-temperature-inf", _set("temperature", float("inf")), r"temperature.*<= 10000", FIX_SPEC),
    spec_case("spec-metrics-not-object", _set("metrics", [1, 2]), r"spec\.metrics.*Expected `object`", FIX_SPEC),
    spec_case("spec-metrics-too-deep", _set("metrics", {"a": _nested(40)}), "nested deeper than 16", "keep params/metrics/artifact flat"),
    spec_case("spec-metrics-inf", _set("metrics", {"a": float("inf")}), "cannot be written as JSON", "plain numbers"),
    spec_case("spec-lineage-not-list", _set("lineage", {"step": "x"}), r"spec\.lineage.*Expected `array`", FIX_SPEC),
    spec_case("spec-lineage-no-step", _set("lineage", [{"params": {}}]), r"lineage\[0\].*`step`", FIX_SPEC),
    spec_case("spec-lineage-params-deep", _set("lineage", [{"step": "x", "params": {"a": _nested(40)}}]), "nested deeper", "flat"),
    # --- the spec: built in code ----------------------------------------------------------------------------
    Case("spec-code-params-not-json", lambda c: c.spec.with_step("x", {"a": object()}), SpecError, "not JSON", "plain numbers"),
    Case("spec-code-replace-validates", lambda c: c.spec.replace(temperature=-1.0), SpecError, r"temperature.*> 0", FIX_SPEC),
    Case("spec-code-inputspec-int8", lambda c: edgecls.InputSpec(dtype="int8"), SpecError, "input.dtype", "choose one of"),
    Case("spec-code-preprocess-std", lambda c: edgecls.Preprocess(std=(0.2, 0.0, 0.2)), SpecError, r"std\[1\]", FIX_SPEC),
    # --- model files ------------------------------------------------------------------------------------------
    Case("model-missing-onnx", lambda c: edgecls.Predictor(c.tmp / "nope.onnx"), ModelFileError, "not found", "check the path"),
    Case("model-missing-xml", lambda c: edgecls.Predictor(c.tmp / "nope.xml"), ModelFileError, "not found", "check the path"),
    Case("model-missing-pt", lambda c: edgecls.Predictor(c.tmp / "nope.pt"), ModelFileError, "not found", "check the path"),
    Case("model-missing-tflite", lambda c: edgecls.Predictor(c.tmp / "nope.tflite"), ModelFileError, "not found", "check the path"),
    Case("model-unknown-suffix", lambda c: edgecls.Predictor(_write(c, "m.tflite2", b"x")), ModelFileError, "suffix", "pass backend="),
    Case("model-truncated-onnx", lambda c: edgecls.Predictor(_write(c, "t.onnx", c.onnx.read_bytes()[:3000])), ModelFileError,
         "truncated|corrupt", "Re-export"),
    Case("model-garbage-onnx", lambda c: edgecls.Predictor(_write(c, "g.onnx", np.random.default_rng(0).bytes(4096))), ModelFileError,
         "cannot load", "Re-export"),
    Case("model-truncated-pt", lambda c: edgecls.Predictor(_write(c, "t.pt", c.pt.read_bytes()[:5000])), ModelFileError,
         "truncated", "Re-save it with edgecls.save"),
    Case("model-pt-pickled-code", lambda c: edgecls.Predictor(_evil_pt(c)), ModelFileError, "pickled code", "Re-save it with edgecls.save"),
    Case("model-pt-plain-torch", lambda c: edgecls.Predictor(_torch_save(c, {"weights": torch.zeros(3)}, "plain.pt")), ModelFileError,
         "not an edgecls model", "save it with edgecls.save"),
    Case("model-pt-no-weights", lambda c: edgecls.Predictor(_torch_save(c, {"format": "edgecls.pt/1"}, "hdr.pt")), ModelFileError,
         "no spec/state_dict", "re-save it"),
    Case("model-pt-raw-pickle", lambda c: edgecls.Predictor(_write(c, "p.pt", pickle.dumps({"format": "edgecls.pt/1"}))), ModelFileError,
         "not a readable edgecls .pt", "Re-save it"),
    Case("model-xml-without-bin", lambda c: edgecls.Predictor(_xml_without_bin(c)), ModelFileError, r"needs its weights file .*\.bin", "copy both files"),
    Case("model-xml-truncated-bin", lambda c: edgecls.Predictor(_xml_truncated_bin(c)), ModelFileError, "truncated|mismatch|not the weights", "Re-export"),
    Case("model-xml-bin-from-other-export", lambda c: edgecls.Predictor(_other_weights_bin(c)), ModelFileError, "checksum mismatch",
         "Re-export the model, or copy the .xml and .bin of one export"),
    Case("model-tflite-not-flatbuffer", lambda c: edgecls.Predictor(_write(c, "g.tflite", b"\x00" * 64)), ModelFileError,
         "no TFL3 identifier", "re-export"),
    Case("model-tflite-truncated", lambda c: edgecls.Predictor(_write(c, "t.tflite", b"\x1c\x00\x00\x00TFL3" + b"\x00" * 40)),
         ModelFileError, "LiteRT cannot load", "re-export"),
    Case("model-pt-needs-torch-2.6", _old_torch, BackendUnavailableError, "torch 2.5.1", r"pip install 'torch>=2\.6'"),
    # --- the spec against the model ---------------------------------------------------------------------------
    Case("spec-none-for-raw-onnx", lambda c: edgecls.Predictor(_raw_onnx(c, "raw.onnx")), SpecError, "carries no edgecls spec",
         "copy the .json .* or pass spec="),
    Case("spec-sidecar-broken", lambda c: edgecls.Predictor(_with_sidecar(_raw_onnx(c, "rawb.onnx"), "{broken")), SpecError,
         "sidecar|not valid JSON", "re-export"),
    Case("spec-sidecar-of-other-shape", lambda c: edgecls.Predictor(_with_sidecar(_raw_onnx(c, "rawc.onnx"),
         c.spec.replace(input=c.spec.input.replace(height=32, width=32)).to_json())), SpecError, "another model", "Re-export, or fix the sidecar"),
    Case("spec-sidecar-checksum", lambda c: edgecls.Predictor(_with_sidecar(_raw_onnx(c, "rawd.onnx"),
         c.spec.replace(artifact={"format": "onnx", "sha256": "0" * 64}).to_json())), ModelFileError, "checksum mismatch", "re-export"),
    Case("spec-wrong-class-count", lambda c: edgecls.Predictor(c.onnx, spec=c.onnx_spec().replace(labels=("a", "b", "c"))), SpecError,
         "outputs 4 classes but the spec has 3 labels", "pass the spec that belongs"),
    Case("spec-wrong-dtype", lambda c: edgecls.Predictor(c.onnx, spec=c.onnx_spec().replace(
         input=c.onnx_spec().input.replace(dtype="float32", normalized_in_graph=False))), SpecError, "dtype float32 but the model takes uint8",
         "Re-export"),
    Case("spec-pt-wrong-class-count", lambda c: edgecls.Predictor(c.pt, spec=c.spec.replace(labels=("a", "b", "c"))), SpecError,
         "outputs 4 classes", "pass the spec that belongs"),
    Case("spec-pt-wrong-size", lambda c: edgecls.Predictor(c.pt, spec=c.spec.replace(input=c.spec.input.replace(height=32, width=32))),
         SpecError, "another model", "Re-export"),
    # --- images -----------------------------------------------------------------------------------------------
    Case("image-float32", lambda c: c.pred().predict(RGB.astype(np.float32)), InputError, "dtype float32", r"np\.clip"),
    Case("image-float-nan", lambda c: c.pred().predict(np.full((8, 8, 3), np.nan, np.float32)), InputError, "dtype float32", "astype"),
    Case("image-int32", lambda c: c.pred().predict(RGB.astype(np.int32)), InputError, "dtype int32", "convert it to uint8"),
    Case("image-empty", lambda c: c.pred().predict(np.zeros((0, 64, 3), np.uint8)), InputError, r"shape \(0, 64, 3\)", "expected a non-empty"),
    Case("image-5-channels", lambda c: c.pred().predict(np.zeros((8, 8, 5), np.uint8)), InputError, "5 channels", r"expected 3 \(HxWx3\)"),
    Case("image-4d-array", lambda c: c.pred().predict(np.zeros((2, 8, 8, 3), np.uint8)), InputError, "4-D array", "pass a list"),
    Case("image-1d-array", lambda c: c.pred().predict(np.zeros((3,), np.uint8)), InputError, r"shape \(3,\)", "expected a non-empty HxWx3"),
    Case("image-wrong-type", lambda c: c.pred().predict({"pixels": 1}), InputError, "cannot use a dict", "pass a numpy HxWx3 uint8 frame"),
    Case("image-empty-list", lambda c: c.pred().predict([]), InputError, "empty list", "pass at least one image"),
    Case("image-no-color", lambda c: edgecls.Predictor(c.onnx).predict(RGB), InputError, "needs its channel order", "color='BGR'"),
    Case("image-bad-color", lambda c: c.pred().predict(RGB, color="RGBA"), InputError, "'RGBA' is not valid", "use 'RGB' or 'BGR'"),
    Case("image-huge-frame", lambda c: c.pred().predict(np.lib.stride_tricks.as_strided(np.zeros(3, np.uint8), shape=(20000, 20000, 3),
         strides=(0, 0, 1))), InputError, "over the 100,000,000 limit", "downscale it first"),
    Case("image-file-missing", lambda c: c.pred().predict(c.tmp / "missing.jpg"), InputError, "not found", "check the path"),
    Case("image-file-not-image", lambda c: c.pred().predict(_write(c, "junk.jpg", b"not an image" * 10)), InputError,
         "not an image file", "JPEG or PNG"),
    Case("image-file-empty", lambda c: c.pred().predict(_write(c, "empty.png", b"")), InputError, "not an image file", "JPEG or PNG"),
    Case("image-file-truncated", lambda c: c.pred().predict(_write(c, "trunc.jpg", _jpeg(np.full((256, 256, 3), 90, np.uint8))[:300])),
         InputError, "truncated or corrupt", "save it again"),
    Case("image-file-bomb", lambda c: c.pred().predict(_write(c, "bomb.png", bomb_png())), InputError, "too large to decode safely",
         "downscale"),
    Case("image-predictor-color", lambda c: edgecls.Predictor(c.onnx, color="rgb"), InputError, "color='rgb'", "use 'RGB' or 'BGR'"),
    # --- preprocessed batches, logits, lifetimes ------------------------------------------------------------------
    Case("batch-wrong-shape", lambda c: c.pred().infer(np.zeros((1, 3, 64, 64), np.uint8)), InputError, "must have shape",
         r"predictor\.preprocess\(\)"),
    Case("batch-wrong-dtype", lambda c: c.pred().infer(np.zeros((1, 64, 64, 3), np.float32)), InputError, "dtype float32",
         r"predictor\.preprocess\(\)"),
    Case("batch-not-array", lambda c: c.pred().infer([[1, 2]]), InputError, "must have shape", r"predictor\.preprocess\(\)"),
    Case("logits-nan", lambda c: edgecls.Predictor(_nan_model(c), color="RGB").predict(RGB), InferenceError, "NaN/inf logits",
         "Re-export it in fp32"),
    Case("logits-wrong-shape", lambda c: c.pred().postprocess(np.zeros((1, 7), np.float32)), InputError, r"shape \(N, 4\)",
         r"pass what infer\(\) returns"),
    Case("logits-inf", lambda c: c.pred().postprocess(np.array([[np.inf, 0, 0, 0]], np.float32)), InferenceError, "NaN/inf",
         "check the weights"),
    Case("predictor-closed", lambda c: _closed(c).predict(RGB), InferenceError, "was closed", "create a new Predictor"),
    Case("predict-async-bad-image", lambda c: c.pred().predict_async(np.zeros((8, 8, 5), np.uint8)).result(timeout=60), InputError,
         "5 channels", "expected 3"),
    # --- streams ----------------------------------------------------------------------------------------------
    Case("stream-bad-source", lambda c: next(c.pred().stream(3.5)), InputError, "cannot stream from a float", "pass a camera index"),
    Case("stream-iterator-no-color", lambda c: next(edgecls.Predictor(c.onnx).stream(iter([RGB]))), InputError, "needs color",
         "color='RGB' or 'BGR'"),
    Case("stream-missing-file", lambda c: next(c.pred().stream(str(c.tmp / "missing.mp4"))), StreamError, "cannot open video source",
         "check the path/URL"),
    Case("stream-stalled-url", _stalled_url, StreamError, "cannot open video source", "open_timeout_s"),
    # --- export -----------------------------------------------------------------------------------------------
    Case("export-unknown-option", lambda c: edgecls.export(c.model, c.spec, c.tmp / "m.onnx", fp16_weights=True), ExportError,
         "does not take option", "it takes"),
    Case("export-option-typo", lambda c: edgecls.export(c.model, c.spec, c.tmp / "m.onnx", dynamic_bach=True), ExportError,
         "does not take option", "did you mean 'dynamic_batch'"),
    Case("export-unknown-suffix", lambda c: edgecls.export(c.model, c.spec, c.tmp / "m.caffemodel"), ExportError, "cannot tell the format",
         "use a suffix of"),
    Case("export-format-suffix-mismatch", lambda c: edgecls.export(c.model, c.spec, c.tmp / "m.onnx", format="openvino"), ExportError,
         "end in .xml", "name the file"),
    Case("export-unknown-format", lambda c: edgecls.export(c.model, c.spec, c.tmp / "m.onnx", format="caffe"), ExportError,
         "unknown export format", "choose one of"),
    Case("export-opset", lambda c: edgecls.export(c.model, c.spec, c.tmp / "m.onnx", opset=9), ExportError, "opset=9 is outside",
         "pass an opset"),
    Case("export-tflite-precision", lambda c: edgecls.export(c.model, c.spec, c.tmp / "m.tflite", precision="int4"), ExportError,
         "int4", "choose one of"),
    Case("export-tflite-float-calibration", lambda c: edgecls.export(c.model, c.spec, c.tmp / "m.tflite", precision="int8_all",
         calibration=[np.zeros((8, 8, 3), np.float32)]), ExportError, "uint8", "uint8"),
    Case("export-verification-fails", lambda c: edgecls.export(TracedBranch(c.model).eval(), c.spec, c.tmp / "tb.onnx",
         images={"noise": np.random.default_rng(0).integers(0, 255, (96, 96, 3), dtype=np.uint8),
                 "grad": np.tile(np.arange(96, dtype=np.uint8)[:, None, None], (1, 96, 3))}), ExportError,
         "disagrees with PyTorch", "not published"),
    Case("export-onnx-from-fused-spec", lambda c: _onnx_from_fused(c), ExportError, "spec input is float32 NCHW", "as create_model gives"),
    Case("export-overflow-fix", lambda c: _overflow_fix("on"), ExportError, "overflow_fix='on'", "use one of"),
    Case("export-target-cpu-float", lambda c: edgecls.export(c.model, c.spec, c.tmp / "m.tflite", target_cpu="arm64"),
         ExportError, "target_cpu='arm64' is for INT8 builds", "leave target_cpu out"),
    Case("deploy-target-cpu", lambda c: _deploy_config(c, target_cpu="cortex-a72"), DeployError, "target_cpu 'cortex-a72'",
         "use one of x86-vnni, x86-avx2, arm64 or 'this'"),
    # --- settings and tooling -------------------------------------------------------------------------------------
    Case("train-setting-typo", lambda c: _train_config({"epochz": 3}), TrainError, "unknown training setting 'epochz'",
         r"did you mean 'epochs'\?"),
    Case("train-setting-value", lambda c: _train_config({"optimizer": "adam"}), TrainError, "optimizer='adam'", "use 'adamw' or 'sgd'"),
    Case("deploy-train-typo", lambda c: _deploy_config(c, train={"lrr": 5e-4}), DeployError, "unknown training setting 'lrr'",
         r"did you mean 'lr'\?"),
    Case("train-time-limit", lambda c: _train_config({"time_limit": "45 minutes"}), TrainError, "time_limit='45 minutes'",
         "45m, 1h30m"),
    Case("deploy-time-limit-zero", lambda c: _deploy_config(c, time_limit=0), DeployError, "time_limit=0", "more than 0 seconds"),
    Case("deploy-seeds", lambda c: _deploy_config(c, seeds=0), DeployError, "seeds=0", "1 to 50 seeds"),
    Case("deploy-time-limit-in-train", lambda c: _deploy_config(c, train={"time_limit": "5m"}), DeployError,
         "time_limit", "--time-limit"),
    Case("compress-step-option-typo", lambda c: _compress_config([{"prune": {"target_mac": 0.3}}]), CompressError,
         "unknown prune option 'target_mac'", r"did you mean 'target_macs'\?"),
    Case("compress-step-name-typo", lambda c: _compress_config([{"quantise": {}}]), CompressError, "'quantise'",
         r"did you mean 'quantize'\?"),
    Case("prune-two-goals", lambda c: _prune(c, target_macs=0.5, ratio=0.3), CompressError, "not both", "give one of"),
    Case("create-model-in-chans", lambda c: edgecls.create_model("mobilenetv3_small_050", in_chans=2), SpecError, "in_chans=2",
         "use 1 or 3"),
    Case("create-model-label-count", lambda c: edgecls.create_model("mobilenetv3_small_050", num_classes=3, labels=("a", "b")),
         SpecError, "num_classes=3 but 2 labels", "drop one of them"),
    Case("split-val-fraction", lambda c: _split(1.5), ConfigError, "val_fraction=1.5", r"must be in \(0, 1\)"),
    Case("auroc-one-kind", lambda c: _auroc(), InputError, "0 unknown", "needs scores of both kinds"),
    Case("explain-steps", lambda c: _explain(c, steps=1), ExplainError, "steps=1", "use steps >= 2"),
]


def _train_config(d: dict):
    from edgecls.train import TrainConfig

    return TrainConfig.from_dict(d)


def _deploy_config(c: Ctx, **settings):
    from edgecls.deployment.config import DeployConfig

    return DeployConfig(data=str(c.tmp), **settings)


def _compress_config(steps: list):
    from edgecls.compress import CompressConfig

    return CompressConfig.from_dict({"model": "m.pt", "steps": steps})


def _prune(c: Ctx, **goal):
    from edgecls.compress.prune import prune

    return prune(copy.deepcopy(c.model), c.spec, **goal)


def _split(fraction: float):
    from edgecls.data.datasets import ArrayDataset, stratified_split

    return stratified_split(ArrayDataset(np.zeros((4, 8, 8, 3), np.uint8), np.array([0, 0, 1, 1]), ("a", "b")), fraction, 0)


def _auroc():
    from edgecls.openset.metrics import auroc

    return auroc(np.array([0.9, 0.8]), np.array([]))


def _explain(c: Ctx, **options):
    from edgecls.robustness.explain import explain

    return explain(c.pt, [c.tmp / "x.png"], c.tmp / "explain", **options)


def _evil_pt(c: Ctx) -> Path:
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    return _torch_save(c, {"format": "edgecls.pt/1", "obj": Evil()}, "evil.pt")


def _torch_save(c: Ctx, obj: Any, name: str) -> Path:
    p = c.tmp / name
    torch.save(obj, p)
    return p


def _xml_without_bin(c: Ctx) -> Path:
    dst = c.copy(c.xml, "nobin.xml")
    dst.with_suffix(".bin").unlink()
    return dst


def _xml_truncated_bin(c: Ctx) -> Path:
    dst = c.copy(c.xml, "truncbin.xml")
    dst.with_suffix(".bin").write_bytes(c.xml.with_suffix(".bin").read_bytes()[:1000])
    return dst


def _with_sidecar(p: Path, text: str) -> Path:
    sidecar_path(p).write_text(text)
    return p


def _closed(c: Ctx) -> edgecls.Predictor:
    p = c.pred()
    p.close()
    return p


def _onnx_from_fused(c: Ctx):
    from edgecls.exporters.onnx import torch_to_onnx

    fused = edgecls.Predictor(c.onnx).spec
    torch_to_onnx(c.model, fused, c.tmp / "again.onnx")


def _overflow_fix(value: str):
    from edgecls.compress.ptq import resolve_overflow_fix

    resolve_overflow_fix(value)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_a_typed_error_naming_problem_and_fix(ctx, case):
    with pytest.raises(case.error) as info:
        case.run(ctx)
    assert isinstance(info.value, edgecls.EdgeclsError), f"{type(info.value).__name__} is not an edgecls error"
    msg = str(info.value)
    assert re.search(case.problem, msg), f"the message does not name the problem ({case.problem!r}): {msg}"
    assert re.search(case.fix, msg), f"the message does not name the fix ({case.fix!r}): {msg}"


def test_case_ids_are_unique():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids)) and len(ids) >= 60, len(ids)
