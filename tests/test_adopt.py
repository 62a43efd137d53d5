"""Artifacts that survive the ecosystem's own tools: a model re-saved without a change (onnx.save, OpenVINO save_model
with FP32 weights, a flatbuffer read/write) still loads with its spec; one a tool changed (OpenVINO save_model with its
default FP16 weights, NNCF, ONNX Runtime's quantize_static, onnxslim, ai_edge_quantizer) is refused with an error that
names what happened and `edgecls adopt`, which makes it load again with the right precision, its lineage and a passing
self-check on this machine. Each tool runs for real, through its own save path."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import onnx
import openvino as ov
import pytest

import edgecls
from edgecls.cli import main
from edgecls.errors import ArtifactChangedError, ModelFileError, SelfCheckError, SpecError
from edgecls.runtime.artifacts import file_sha256, read_sidecar, sidecar_path
from edgecls.runtime.runtimes import artifact_files


def copy(src: Path, dst_dir: Path, name: str | None = None) -> Path:
    """An artifact with its .bin and sidecar, under `name` (same suffix) in dst_dir."""
    dst = dst_dir / (name or Path(src).name)
    for f in artifact_files(src):
        shutil.copy2(f, dst.with_suffix(f.suffix))
    shutil.copy2(sidecar_path(src), sidecar_path(dst))
    return dst


def loads(path: Path, photos) -> edgecls.Predictor:
    p = edgecls.Predictor(path)
    assert p.predict(photos["coffee"], color="RGB").label == "espresso"
    return p


def adopted(path: Path, capsys, *args) -> edgecls.Predictor:
    """`edgecls adopt` on the command line; the file then loads, its self-check passes, its last step is the adoption."""
    assert main(["adopt", str(path), *map(str, args)]) == 0
    out = capsys.readouterr().out
    assert "adopted" in out and "PASS" in out, out
    p = edgecls.Predictor(path, self_check=True)
    assert p.spec.lineage[-1].step == "adopt" and read_sidecar(path) == p.spec
    return p


def calibration(artifacts, n: int = 48) -> list[np.ndarray]:
    from edgecls.data.samples import photo_crops

    with edgecls.Predictor(artifacts["onnx"]) as p:
        return [p.preprocess(c, color="RGB") for c in photo_crops(n)]


def test_a_resave_without_a_change_still_loads(artifacts, photos, tmp_path):
    m = onnx.load(str(artifacts["onnx"]))
    onnx.save(m, str(tmp_path / "resaved.onnx"))
    ov.save_model(ov.Core().read_model(str(artifacts["xml"])), str(tmp_path / "resaved.xml"), compress_to_fp16=False)
    from ai_edge_litert.tools import flatbuffer_utils as fb

    fb.write_model(fb.read_model(str(artifacts["tflite"])), str(tmp_path / "resaved.tflite"))
    for name in ("resaved.onnx", "resaved.xml", "resaved.tflite"):
        p = loads(tmp_path / name, photos)
        assert p.spec.artifact["precision"] == "fp32" and p.run_self_check().passed


def test_openvino_save_model_is_named_not_blamed_on_a_crash_and_adopt_fixes_it(artifacts, photos, tmp_path, capsys):
    """The issue's report: save_model (FP16 weights by default) kept edgecls's metadata with the old .bin checksum, and
    the Predictor blamed an interrupted export."""
    path = tmp_path / "resaved.xml"
    ov.save_model(ov.Core().read_model(str(artifacts["xml"])), str(path))
    with pytest.raises(ArtifactChangedError) as e:
        edgecls.Predictor(path)
    text = str(e.value)
    assert "changed after edgecls exported it" in text and "`edgecls adopt resaved.xml`" in text
    assert "interrupted" not in text and "checksum" not in text
    assert main(["info", str(path)]) == 2 and "edgecls adopt resaved.xml" in capsys.readouterr().err
    p = adopted(path, capsys)
    assert p.spec.artifact["precision"] == "fp16" and p.spec.lineage[-1].params["precision"] == "fp32 -> fp16"
    loads(path, photos)


def test_an_interrupted_export_still_reads_as_two_exports(artifacts, tmp_path):
    """The same graph with another .bin (the renames of two exports crossed) keeps its own message."""
    xml = copy(artifacts["xml"], tmp_path)
    fp16 = tmp_path / "other" / "w.xml"
    fp16.parent.mkdir()
    edgecls_ir = ov.Core().read_model(str(artifacts["xml"]))
    ov.save_model(edgecls_ir, str(fp16), compress_to_fp16=False)
    data = bytearray(fp16.with_suffix(".bin").read_bytes())
    data[-4:] = b"\x00\x00\x80\x3f"  # one weight changed: another export's .bin
    xml.with_suffix(".bin").write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="checksum mismatch") as e:
        edgecls.Predictor(xml)
    assert not isinstance(e.value, ArtifactChangedError) and "two exports" in str(e.value)


def test_a_file_that_lost_its_spec_is_adopted_with_spec_from(artifacts, photos, tmp_path, capsys):
    path = tmp_path / "stripped.onnx"
    m = onnx.load(str(artifacts["onnx"]))
    del m.metadata_props[:]  # a tool that writes a fresh ModelProto
    onnx.save(m, str(path))
    with pytest.raises(SpecError, match=r"edgecls adopt stripped.onnx --spec-from ORIGINAL"):
        edgecls.Predictor(path)
    with pytest.raises(SpecError, match="--spec-from ORIGINAL"):
        edgecls.adopt(path)
    p = adopted(path, capsys, "--spec-from", artifacts["onnx"])
    assert p.spec.labels == edgecls.Predictor(artifacts["onnx"]).spec.labels
    loads(path, photos)


def test_adopt_writes_nothing_for_a_model_the_tool_broke_or_a_spec_that_does_not_fit(artifacts, tmp_path):
    path = tmp_path / "broken.onnx"
    m = onnx.load(str(artifacts["onnx"]))
    w = next(t for t in m.graph.initializer if t.name.endswith("classifier.weight"))
    arr = onnx.numpy_helper.to_array(w)[::-1].copy()  # the classes' weights shuffled: a tool bug
    w.CopyFrom(onnx.numpy_helper.from_array(arr, w.name))
    onnx.save(m, str(path))
    before = file_sha256(path)
    with pytest.raises(SelfCheckError, match="not adopted, nothing written"):
        edgecls.adopt(path)
    assert file_sha256(path) == before and not sidecar_path(path).exists()

    other = tmp_path / "other.json"
    spec = edgecls.Predictor(artifacts["onnx"]).spec
    other.write_text(spec.replace(labels=spec.labels[:10]).to_json())
    with pytest.raises(SpecError, match="does not fit"):
        edgecls.adopt(path, spec_from=other)
    assert file_sha256(path) == before


def test_adopt_takes_only_the_formats_tools_rewrite(artifacts, tmp_path):
    from edgecls.errors import ExportError

    with pytest.raises(ExportError, match="takes the files other tools rewrite"):
        edgecls.adopt(artifacts["pt"])


@pytest.mark.slow
def test_onnxslim_and_quantize_static(artifacts, photos, tmp_path, capsys):
    import onnxslim
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, quantize_static

    slim = tmp_path / "slim.onnx"
    onnx.save(onnxslim.slim(onnx.load(str(artifacts["onnx"]))), str(slim))
    with pytest.raises(ArtifactChangedError, match="edgecls adopt slim.onnx`"):
        edgecls.Predictor(slim)
    assert adopted(slim, capsys).spec.artifact["precision"] == "fp32"

    calib = calibration(artifacts)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter({"input": x} for x in calib)

        def get_next(self):
            return next(self.it, None)

    q = tmp_path / "lite0_int8.onnx"
    quantize_static(str(artifacts["onnx"]), str(q), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    reduce_range=True)  # 7-bit weights: exact on CPUs without VNNI too
    with pytest.raises(ArtifactChangedError, match="edgecls adopt lite0_int8.onnx`"):
        edgecls.Predictor(q)
    p = adopted(q, capsys)
    assert p.spec.artifact["precision"] == "int8" and "onnx.quantize" in p.spec.lineage[-1].params["tool"]
    assert p.self_check_result.graph_rel_diff is not None  # judged against the Q/DQ graph's exact answers
    assert p.spec.lineage[-1].params["overflow_fix"] == "enable"  # reduce_range's 7-bit weights, read from the file
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # so no U8S8-saturation warning on a CPU without VNNI
        edgecls.Predictor(q)
    loads(q, photos)
    assert main(["check", str(q)]) == 0


@pytest.mark.slow
def test_nncf_quantize_then_save_model(artifacts, photos, tmp_path, capsys):
    """What an OpenVINO user does with an edgecls .xml: nncf.quantize, then openvino.save_model. With 7-bit weights
    (OverflowFix.ENABLE), as OpenVINO advises for CPUs without VNNI: full-range weights saturate there, and the
    adoption's self-check then refuses the model (what it is for), which would make this test depend on the CPU."""
    import nncf
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters, OverflowFix

    q = tmp_path / "lite0_nncf.xml"
    model = nncf.quantize(ov.Core().read_model(str(artifacts["xml"])), nncf.Dataset(calibration(artifacts)),
                          subset_size=48, advanced_parameters=AdvancedQuantizationParameters(overflow_fix=OverflowFix.ENABLE))
    ov.save_model(model, str(q))
    with pytest.raises(ArtifactChangedError, match="edgecls adopt lite0_nncf.xml`"):
        edgecls.Predictor(q)
    p = adopted(q, capsys)
    assert p.spec.artifact["precision"] == "int8" and "NNCF" in p.spec.lineage[-1].params["tool"]
    loads(q, photos)


@pytest.mark.slow
def test_ai_edge_quantizer(artifacts, photos, tmp_path, capsys):
    """LiteRT's own quantizer on the FP32 .tflite: it keeps the metadata entries, with the large ones stored after the
    flatbuffer, which edgecls reads too."""
    from ai_edge_quantizer import quantizer, recipe

    q = tmp_path / "lite0_dyn.tflite"
    qt = quantizer.Quantizer(Path(artifacts["tflite"]).read_bytes(), recipe.dynamic_wi8_afp32())
    q.write_bytes(bytes(qt.quantize().quantized_model))
    with pytest.raises(ArtifactChangedError, match="edgecls adopt lite0_dyn.tflite`"):
        edgecls.Predictor(q)
    p = adopted(q, capsys)
    assert p.spec.artifact["precision"] == "dynamic_int8"
    loads(q, photos)
