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
import torch

import edgecls
from edgecls import ExportError, ModelSpec
from edgecls.runtime.artifacts import sidecar_path
from edgecls.runtime.spec import SPEC_KEY


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


@pytest.mark.slow
def test_publish_moves_only_the_artifact_its_companions_and_sidecar(artifacts, tmp_path):
    """A staging folder that also holds other files (QAT stages its ONNX next to the IR) publishes only the IR pair,
    and the sidecar travels with it in the same publish."""
    import shutil

    from edgecls.exporters.openvino import onnx_to_openvino
    from edgecls.runtime.artifacts import publish

    stage, out = tmp_path / "stage", tmp_path / "out"
    stage.mkdir()
    out.mkdir()
    src = shutil.copy(artifacts["onnx"], stage / "qat_qdq.onnx")
    spec = ModelSpec.from_json(sidecar_path(artifacts["onnx"]).read_text())
    ir_spec = onnx_to_openvino(src, spec, stage / "int8_qat.xml")
    publish(stage / "int8_qat.xml", out / "int8_qat.xml", ir_spec)
    assert sorted(p.name for p in out.iterdir()) == ["int8_qat.bin", "int8_qat.xml", "int8_qat.xml.json"]
    assert sorted(p.name for p in stage.iterdir()) == ["qat_qdq.onnx"]
    assert edgecls.Predictor(out / "int8_qat.xml").spec == ModelSpec.from_json((out / "int8_qat.xml.json").read_text())


class TracedBranch(torch.nn.Module):
    """Data-dependent control flow, a classic export bug: torch.onnx.export traces the branch its example input takes
    (a blank image), so the ONNX graph answers differently from PyTorch on every real photo."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        logits = self.net(x)
        if x.flatten(2).std(-1).amax() > 0.01:  # a real photo varies; the exporter's blank example does not
            return logits
        return logits.flip(-1)


@pytest.mark.slow
def test_failed_verification_inside_export_publishes_nothing(lite0, tmp_path):
    """export() itself runs the check, raises, and leaves the previous artifact and sidecar untouched, no leftovers."""
    model, spec = lite0
    old = tmp_path / "m.onnx"
    edgecls.export(model, spec, old, verify=False)
    before, side_before = old.read_bytes(), sidecar_path(old).read_bytes()
    with pytest.raises(ExportError, match="disagrees with PyTorch.*not published"):
        edgecls.export(TracedBranch(model).eval(), spec, old)
    assert old.read_bytes() == before and sidecar_path(old).read_bytes() == side_before
    assert {p.name for p in tmp_path.iterdir()} == {"m.onnx", "m.onnx.json"}  # the staging folder is gone too


class Killed(BaseException):
    """Stands in for the process dying: nothing after it runs but `finally` blocks."""


@pytest.mark.slow
def test_crash_between_the_openvino_renames_is_caught_at_load(lite0, tmp_path, monkeypatch):
    """The .xml/.bin pair is published by two renames. A writer that dies between them leaves the new weights beside
    the old topology: same shapes, so OpenVINO would run it. The checksum in the .xml catches it at load."""
    import copy

    from edgecls.errors import ModelFileError

    model, spec = lite0
    target = tmp_path / "m.xml"
    edgecls.export(model, spec, target, verify=False)
    other = copy.deepcopy(model)
    with torch.no_grad():
        other.get_classifier().bias.add_(1.0)  # other weights, same graph
    real_replace = os.replace

    def die_before_the_main_file(src, dst):
        if str(dst) == str(target):
            raise Killed
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", die_before_the_main_file)
    with pytest.raises(Killed):
        edgecls.export(other, spec, target, verify=False)
    monkeypatch.undo()
    with pytest.raises(ModelFileError, match="m.bin is not the weights file m.xml was written with"):
        edgecls.Predictor(target)
    edgecls.export(other, spec, target, verify=False)  # re-exporting repairs it
    assert edgecls.Predictor(target).spec.arch == "efficientnet_lite0"


@pytest.mark.slow
def test_sidecar_only_format_checks_the_file_it_describes(lite0, artifacts, tmp_path):
    """Where the spec lives only in the sidecar (TensorRT engines), export records the file's sha256 there: a sidecar
    from another build is refused. Shown with an ONNX file that has no embedded spec, on the real ORT runtime."""
    from edgecls.errors import ModelFileError
    from edgecls.runtime.artifacts import file_sha256

    model, spec = lite0
    p = tmp_path / "raw.onnx"
    torch.onnx.export(model, (torch.zeros(1, 3, 224, 224),), str(p), dynamo=False, opset_version=17)
    raw = spec.replace(input=spec.input.replace(batch=1), artifact={"format": "onnx", "sha256": file_sha256(p)})
    sidecar_path(p).write_text(raw.to_json())
    assert edgecls.Predictor(p).spec == raw
    other = onnx.load(str(artifacts["onnx_f32"]))  # another build of the same model, without its embedded spec
    del other.metadata_props[:]
    onnx.save(other, str(p))  # the sidecar left as it was
    with pytest.raises(ModelFileError, match="checksum mismatch"):
        edgecls.Predictor(p)


KILL_SCRIPT = """
import sys, edgecls
model, spec = edgecls.create_model("efficientnet_lite0", pretrained=True)
print("ready", flush=True)
while True:
    edgecls.export(model, spec, sys.argv[1], verify=False)
"""


@pytest.mark.slow
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
