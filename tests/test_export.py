"""Exports embed their spec, write sidecars, verify against PyTorch, and never half-write."""

import json
import os
import signal
import subprocess
import sys
import time

import onnx
import openvino as ov
import pytest

import edgecls
from edgecls import ExportError, ModelSpec
from edgecls.artifacts import sidecar_path
from edgecls.spec import SPEC_KEY


def test_spec_embedded_and_sidecar_agree(artifacts):
    side = ModelSpec.from_json(sidecar_path(artifacts["onnx"]).read_text())
    m = onnx.load(str(artifacts["onnx"]))
    props = {p.key: p.value for p in m.metadata_props}
    assert ModelSpec.from_json(props[SPEC_KEY]) == side
    assert json.loads(props["labels"])[967] == "espresso"
    ir = ov.Core().read_model(str(artifacts["xml"]))
    assert ModelSpec.from_json(ir.get_rt_info([SPEC_KEY]).astype(str)) == ModelSpec.from_json(
        sidecar_path(artifacts["xml"]).read_text()
    )


def test_export_records_verification_in_lineage(artifacts):
    spec = edgecls.Predictor(artifacts["onnx"]).spec
    step = spec.lineage[-1]
    assert step.step == "export" and step.params["format"] == "onnx"
    assert step.metrics["top1_agreement"] == 1.0 and step.metrics["rel_diff"] < 1e-3
    assert spec.input.dtype == "uint8" and spec.input.layout == "NHWC" and spec.input.normalized_in_graph
    assert spec.artifact == {"format": "onnx", "precision": "fp32", "opset": 17}


def test_onnx_graph_properties(artifacts):
    static = onnx.load(str(artifacts["onnx"]))
    dyn = onnx.load(str(artifacts["onnx_dyn"]))
    assert static.opset_import[0].version == 17
    dims = lambda m: [d.dim_value or d.dim_param for d in m.graph.input[0].type.tensor_type.shape.dim]  # noqa: E731
    assert dims(static) == [1, 224, 224, 3]
    assert dims(dyn)[0] == "batch"
    assert static.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.UINT8
    f32 = onnx.load(str(artifacts["onnx_f32"]))
    assert dims(f32) == [1, 3, 224, 224]


def test_bad_options_are_errors(lite0, tmp_path):
    model, spec = lite0
    with pytest.raises(ExportError, match="does not take"):
        edgecls.export(model, spec, tmp_path / "m.onnx", fp16_weights=True)
    with pytest.raises(ExportError, match="suffix"):
        edgecls.export(model, spec, tmp_path / "m.h5")  # a Keras file: no edgecls format
    with pytest.raises(ExportError, match="opset"):
        edgecls.export(model, spec, tmp_path / "m.onnx", opset=9)
    assert not list(tmp_path.iterdir())


def test_publish_moves_only_the_artifact_and_its_companions(artifacts, tmp_path):
    """A staging folder that also holds other files (QAT stages its ONNX next to the IR) publishes only the IR pair."""
    import shutil

    from edgecls.exporters import _publish
    from edgecls.exporters.openvino import onnx_to_openvino

    stage, out = tmp_path / "stage", tmp_path / "out"
    stage.mkdir()
    out.mkdir()
    src = shutil.copy(artifacts["onnx"], stage / "qat_qdq.onnx")
    spec = ModelSpec.from_json(sidecar_path(artifacts["onnx"]).read_text())
    onnx_to_openvino(src, spec, stage / "int8_qat.xml")
    _publish(stage / "int8_qat.xml", out / "int8_qat.xml")
    assert sorted(p.name for p in out.iterdir()) == ["int8_qat.bin", "int8_qat.xml"]
    assert sorted(p.name for p in stage.iterdir()) == ["qat_qdq.onnx"]
    assert ov.Core().read_model(out / "int8_qat.xml").inputs


def test_failed_verification_publishes_nothing(lite0, tmp_path):
    """A spec whose preprocessing lies about the model (BGR instead of RGB) is caught and nothing is written."""
    model, spec = lite0
    old = tmp_path / "m.onnx"
    edgecls.export(model, spec, old)
    before = old.read_bytes()
    # the fused graph normalizes with this spec's mean/std: a wrong std changes the logits vs PyTorch's model spec
    lying = spec.replace(preprocess=spec.preprocess.__class__(**{**spec.preprocess.__dict__, "std": (0.25, 0.25, 0.25)}))
    from edgecls.exporters.verify import verify_artifact
    from edgecls.exporters.onnx import torch_to_onnx

    bad = tmp_path / "bad.onnx"
    art = torch_to_onnx(model, lying, bad)
    from edgecls.samples import sample_images

    with pytest.raises(ExportError, match="disagrees"):
        verify_artifact(bad, art, model, spec, sample_images(("coffee", "chelsea")))
    assert old.read_bytes() == before


KILL_SCRIPT = """
import sys, edgecls
model, spec = edgecls.create_model("efficientnet_lite0", pretrained=True)
print("ready", flush=True)
while True:
    edgecls.export(model, spec, sys.argv[1], verify=False)
"""


def test_kill_during_export_leaves_a_loadable_artifact(lite0, tmp_path):
    model, spec = lite0
    target = tmp_path / "m.onnx"
    edgecls.export(model, spec, target)
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(target)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(float(os.environ.get("EDGECLS_KILL_AFTER", "2.5")))  # inside some export: conversion, staging, publishing
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    pred = edgecls.Predictor(target)
    assert pred.spec.arch == "efficientnet_lite0"
    # leftovers may only be hidden staging folders, never a partial file at the final path
    assert {p.name for p in tmp_path.iterdir() if not p.name.startswith(".")} == {"m.onnx", "m.onnx.json"}
    # the next export clears the dead process's staging folder and temporary files
    edgecls.export(model, spec, target, verify=False)
    assert {p.name for p in tmp_path.iterdir()} == {"m.onnx", "m.onnx.json"}


def test_tflite_carries_spec_and_labels(artifacts):
    from edgecls.exporters.tflite import read_tflite_metadata

    meta = read_tflite_metadata(artifacts["tflite"].read_bytes())
    spec = ModelSpec.from_json(meta[SPEC_KEY])
    assert spec == ModelSpec.from_json(sidecar_path(artifacts["tflite"]).read_text())
    assert meta["labels"].decode().splitlines()[967] == "espresso"
    assert spec.input.layout == "NHWC" and spec.input.dtype == "uint8" and spec.artifact["format"] == "tflite"
