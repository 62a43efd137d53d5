"""Bad input gets a typed edgecls error that names the problem; nothing crashes the interpreter."""

import io
import pickle
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

import edgecls
from edgecls import InputError, ModelFileError, SpecError
from edgecls.errors import UnknownRuntimeError
from edgecls.runtime.artifacts import sidecar_path


# --- model files ------------------------------------------------------------------------------------------
def test_missing_file(tmp_path):
    for suffix in (".onnx", ".xml", ".pt", ".tflite"):
        with pytest.raises(ModelFileError, match="not found"):
            edgecls.Predictor(tmp_path / f"nope{suffix}")


def test_unknown_suffix(tmp_path):
    p = tmp_path / "model.tflite2"
    p.write_bytes(b"x")
    with pytest.raises(ModelFileError, match="suffix"):
        edgecls.Predictor(p)
    with pytest.raises(UnknownRuntimeError, match="unknown backend 'tensorflow'.*onnxruntime"):
        edgecls.Predictor(p, backend="tensorflow")
    with pytest.raises(UnknownRuntimeError, match="'onnx' is the format of runtime 'onnxruntime': pass backend='onnxruntime'"):
        edgecls.Predictor(p, backend="onnx")  # the Python API takes runtime names; aliases are for CLI flags and configs


def _copy_with_sidecar(src, dst):
    shutil.copy(src, dst)
    shutil.copy(sidecar_path(src), sidecar_path(dst))


@pytest.mark.parametrize("name", ["onnx", "pt", "tflite"])
def test_truncated_model_file(artifacts, tmp_path, name):
    src = artifacts[name]
    dst = tmp_path / src.name
    _copy_with_sidecar(src, dst)
    dst.write_bytes(src.read_bytes()[: src.stat().st_size // 2])
    with pytest.raises(ModelFileError, match="truncated|corrupt"):
        edgecls.Predictor(dst)


@pytest.mark.parametrize("name", ["onnx", "pt", "xml", "tflite"])
def test_garbage_model_file(artifacts, tmp_path, name):
    src = artifacts[name]
    dst = tmp_path / src.name
    _copy_with_sidecar(src, dst)
    if name == "xml":
        shutil.copy(src.with_suffix(".bin"), dst.with_suffix(".bin"))
    dst.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(ModelFileError):
        edgecls.Predictor(dst)


def test_openvino_missing_or_truncated_bin(artifacts, tmp_path):
    src = artifacts["xml"]
    dst = tmp_path / src.name
    _copy_with_sidecar(src, dst)
    with pytest.raises(ModelFileError, match=r"\.bin"):
        edgecls.Predictor(dst)
    dst.with_suffix(".bin").write_bytes(src.with_suffix(".bin").read_bytes()[:1000])
    with pytest.raises(ModelFileError):
        edgecls.Predictor(dst)


def test_pt_with_pickled_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    p = tmp_path / "evil.pt"
    torch.save({"format": "edgecls.pt/1", "obj": Evil()}, p)
    with pytest.raises(ModelFileError, match="pickled code"):
        edgecls.Predictor(p)
    p2 = tmp_path / "plain.pt"
    torch.save({"weights": torch.zeros(3)}, p2)
    with pytest.raises(ModelFileError, match="not an edgecls model"):
        edgecls.Predictor(p2)


def test_onnx_without_spec_or_sidecar(lite0, tmp_path):
    model, spec = lite0
    from edgecls.exporters.onnx import torch_to_onnx

    p = tmp_path / "raw.onnx"
    torch.onnx.export(model, (torch.zeros(1, 3, 224, 224),), str(p), dynamo=False, opset_version=17)
    with pytest.raises(SpecError, match="no edgecls spec"):
        edgecls.Predictor(p)
    sidecar_path(p).write_text("{broken")
    with pytest.raises(SpecError, match="JSON"):
        edgecls.Predictor(p)
    # a sidecar that belongs to another model (uint8 NHWC input) is caught against the real input shape
    other = tmp_path / "other.onnx"
    art = torch_to_onnx(model, spec, other)
    sidecar_path(p).write_text(art.to_json())
    with pytest.raises(SpecError, match="another model"):
        edgecls.Predictor(p)


def test_spec_with_wrong_label_count(artifacts):
    pred = edgecls.Predictor(artifacts["onnx"])
    wrong = pred.spec.replace(labels=("a", "b", "c"))
    with pytest.raises(SpecError, match="1000 classes but the spec has 3"):
        edgecls.Predictor(artifacts["onnx"], spec=wrong)


# --- images -----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pred(artifacts):
    return edgecls.Predictor(artifacts["onnx"])


@pytest.mark.parametrize(
    "image,needle",
    [
        (np.zeros((64, 64), np.uint8), "grayscale"),
        (np.zeros((64, 64, 1), np.uint8), "grayscale"),
        (np.zeros((64, 64, 4), np.uint8), "alpha"),
        (np.zeros((64, 64, 3), np.uint16), "uint16"),
        (np.zeros((64, 64, 3), np.float32), "float32"),
        (np.full((64, 64, 3), np.nan, np.float32), "float32"),
        (np.zeros((0, 64, 3), np.uint8), "non-empty"),
        (np.zeros((64, 64, 5), np.uint8), "5 channels"),
        (np.zeros((2, 64, 64, 3), np.uint8), "4-D"),
        (np.zeros((3,), np.uint8), "shape"),
        (b"\x89PNG", "image bytes"),  # encoded bytes are an input now; truncated ones are a decode error
        (object(), "cannot use a object"),
        ([], "empty list"),
    ],
)
def test_bad_frames(pred, image, needle):
    with pytest.raises(InputError, match=needle):
        pred.predict(image, color="RGB")


def test_numpy_frame_needs_color(pred):
    with pytest.raises(InputError, match="color='BGR'"):
        pred.predict(np.zeros((64, 64, 3), np.uint8))
    with pytest.raises(InputError, match="'RGB' or 'BGR'"):
        pred.predict(np.zeros((64, 64, 3), np.uint8), color="RGBA")


def test_huge_frame_is_refused_without_allocating(pred):
    huge = np.lib.stride_tricks.as_strided(np.zeros(3, np.uint8), shape=(20000, 20000, 3), strides=(0, 0, 1))
    with pytest.raises(InputError, match="limit"):
        pred.predict(huge, color="RGB")


@pytest.mark.parametrize(
    "mode,needle",
    [("L", "grayscale"), ("RGBA", "alpha"), ("LA", "alpha"), ("I;16", "16/32-bit"), ("I", "16/32-bit"), ("F", "16/32-bit")],
)
def test_bad_pil_images_are_refused(pred, mode, needle):
    """A PIL image comes from the app's own code, like a numpy frame: refused with the conversion to apply."""
    with pytest.raises(InputError, match=needle):
        pred.predict(Image.new(mode, (64, 48)))


def test_image_files_in_any_mode_are_read_as_training_reads_them(pred, photos, tmp_path):
    """A file's format says what its pixels are, so a grayscale JPEG (23 of 1,000 real ImageNet photos are), a
    16-bit PNG, RGBA/LA/palette PNGs and a CMYK JPEG are classified as training and fit-reference read them
    (data.datasets -> decode.read_rgb), from a path and from bytes alike."""
    from edgecls.data.datasets import ArrayDataset

    photo = Image.fromarray(photos["coffee"])
    gray = np.asarray(photo.convert("L"))
    files = {
        "gray.jpg": photo.convert("L"), "rgba.png": photo.convert("RGBA"), "la.png": photo.convert("LA"),
        "palette.png": photo.quantize(64), "cmyk.jpg": photo.convert("CMYK"),
        "wide.png": Image.fromarray(gray.astype(np.uint16) * 257),  # 16-bit: 8-bit gray scaled to the full range
    }
    for name, im in files.items():
        path = tmp_path / name
        im.save(path)
        as_trained = ArrayDataset([str(path)], np.zeros(1, np.int64), ("x",)).image(0)
        want = pred.predict(as_trained, color="RGB")
        for src in (path, str(path), path.read_bytes()):
            got = pred.predict(src)
            assert (got.index, got.score) == (want.index, want.score), name
    decoded = ArrayDataset([str(tmp_path / "wide.png")], np.zeros(1, np.int64), ("x",)).image(0)
    assert (decoded == gray[..., None]).all()  # 16-bit scaled back to the 8 bits it was made from, channels repeated
    with pytest.raises(InputError, match="grayscale"):  # the same pixels as a numpy frame stay the app's to convert
        pred.predict(gray, color="RGB")


def test_palette_and_cmyk_are_colour_and_accepted(pred, photos):
    rgb = Image.fromarray(photos["coffee"])
    want = pred.predict(rgb).index
    assert pred.predict(rgb.convert("CMYK")).index == want
    assert pred.predict(rgb.quantize(256).convert("P")).index in {want} | {t.index for t in pred.predict(rgb).topk}


def test_corrupt_truncated_and_missing_image_files(pred, photos, tmp_path):
    good = io.BytesIO()
    Image.fromarray(photos["coffee"]).save(good, format="JPEG")
    trunc = tmp_path / "trunc.jpg"
    trunc.write_bytes(good.getvalue()[: len(good.getvalue()) // 3])
    with pytest.raises(InputError, match="truncated or corrupt"):
        pred.predict(trunc)
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"not an image at all" * 10)
    with pytest.raises(InputError, match="not an image"):
        pred.predict(junk)
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(InputError):
        pred.predict(empty)
    with pytest.raises(InputError, match="not found"):
        pred.predict(tmp_path / "missing.jpg")


def test_preprocessed_batch_checks(pred):
    with pytest.raises(InputError, match="shape"):
        pred.infer(np.zeros((1, 3, 224, 224), np.uint8))
    with pytest.raises(InputError, match="dtype"):
        pred.infer(np.zeros((1, 224, 224, 3), np.float32))


def test_nan_in_float_batch(artifacts):
    p = edgecls.Predictor(artifacts["onnx_f32"])
    x = np.zeros((1, 3, 224, 224), np.float32)
    x[0, 0, 0, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        p.infer(x)


def test_bad_constructor_arguments(artifacts):
    with pytest.raises(InputError, match="color"):
        edgecls.Predictor(artifacts["onnx"], color="rgb")
    with pytest.raises(InputError, match="threads"):
        edgecls.Predictor(artifacts["onnx"], threads=0)
    with pytest.raises(InputError, match="device"):
        edgecls.Predictor(artifacts["onnx"], device="tpu")
    with pytest.raises(edgecls.errors.BackendUnavailableError, match="CUDAExecutionProvider"):  # onnxruntime-gpu missing
        edgecls.Predictor(artifacts["onnx"], device="cuda")


def test_unpicklable_payload_types(tmp_path):
    p = tmp_path / "x.pt"
    p.write_bytes(pickle.dumps({"format": "edgecls.pt/1"}))
    with pytest.raises(ModelFileError):
        edgecls.Predictor(p)


def test_pt_header_without_weights(tmp_path):
    p = tmp_path / "x.pt"
    torch.save({"format": "edgecls.pt/1"}, p)
    with pytest.raises(ModelFileError, match="no spec/state_dict"):
        edgecls.Predictor(p)
