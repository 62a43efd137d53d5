"""Shared, real fixtures: pretrained EfficientNet-Lite0 exported once per session to every CPU format."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import edgecls
from edgecls.data.samples import sample_images

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository's tools/ (data locator)
from tools import shared_data  # noqa: E402


def missing_data(reason: str):
    """Data the README promises is absent: fail under `make test`/CI (EDGECLS_REQUIRE_DATA=1), skip otherwise."""
    if shared_data.require_data():
        pytest.fail(f"{reason} (EDGECLS_REQUIRE_DATA is set: the tests need this data)")
    pytest.skip(reason)


def fashion_mnist_dir() -> Path:
    """The Fashion-MNIST IDX folder the README promises (Debian's dataset-fashion-mnist), or missing_data()."""
    from edgecls.data.datasets import DataError, find_fashion_mnist

    try:
        return find_fashion_mnist()
    except DataError as exc:
        missing_data(str(exc))


@pytest.fixture(scope="session")
def fashion_mnist() -> Path:
    return fashion_mnist_dir()


@pytest.fixture(scope="session")
def hymenoptera(tmp_path_factory) -> Path:
    """The real ants/bees photo folder (mixed sizes, a palette image, a non-photo GIF): root with train/ and val/."""
    try:
        return shared_data.extract_hymenoptera(tmp_path_factory.mktemp("hymenoptera"))
    except FileNotFoundError as exc:
        missing_data(str(exc))


@pytest.fixture(scope="session")
def cifar10_small(tmp_path_factory) -> tuple[Path, Path]:
    """(train, val) ImageFolders of real CIFAR-10 JPEGs, 4 classes: 40 training and 15 validation images per class."""
    d = tmp_path_factory.mktemp("cifar10")
    classes = ("airplane", "automobile", "cat", "ship")
    try:
        return (shared_data.extract_cifar10(d / "train", per_class=40, classes=classes),
                shared_data.extract_cifar10(d / "val", per_class=15, classes=classes, offset=40))
    except FileNotFoundError as exc:
        missing_data(str(exc))


@pytest.fixture(scope="session")
def photos() -> dict[str, np.ndarray]:
    return sample_images()


@pytest.fixture(scope="session")
def lite0():
    return edgecls.create_model("efficientnet_lite0", pretrained=True)


@pytest.fixture(scope="session")
def artifacts(lite0, tmp_path_factory):
    """name -> verified exports: pt, onnx (uint8 NHWC, fused), onnx_dyn (dynamic batch), onnx_f32 (float NCHW), xml, tflite."""
    model, spec = lite0
    d = tmp_path_factory.mktemp("artifacts")
    out = {
        "pt": edgecls.export(model, spec, d / "lite0.pt").path,
        "onnx": edgecls.export(model, spec, d / "lite0.onnx").path,
        "onnx_dyn": edgecls.export(model, spec, d / "lite0_dyn.onnx", dynamic_batch=True).path,
        "onnx_f32": edgecls.export(model, spec, d / "lite0_f32.onnx", fuse_preprocess=False).path,
        "xml": edgecls.export(model, spec, d / "lite0.xml").path,
        "tflite": edgecls.export(model, spec, d / "lite0.tflite").path,
    }
    return out


@pytest.fixture(scope="session")
def predictors(artifacts):
    return {name: edgecls.Predictor(path, threads=2) for name, path in artifacts.items()}


@pytest.fixture(scope="session")
def dists(tmp_path_factory) -> tuple[Path, Path]:
    """(sdist, wheel) that `python -m build` makes from a copy of the tracked source, built once per session and shared
    by the tests that install it (tests/packaging_env.py)."""
    from packaging_env import build

    return build(tmp_path_factory.mktemp("dists"))


# Fuzz tests run a fixed budget; in CI the examples are derandomized so a run is reproducible.
from hypothesis import settings as _hsettings  # noqa: E402

_hsettings.register_profile("ci", derandomize=True, deadline=None)
if __import__("os").environ.get("CI"):
    _hsettings.load_profile("ci")


@pytest.fixture(scope="session")
def quantized_artifacts(lite0, photos, tmp_path_factory):
    """name -> verified INT8/FP16 exports of the same model: the two static TFLite INT8 schemes (the slow part,
    ~20-40 s each, calibrated on the bundled photos) and OpenVINO FP16 weights (a few seconds)."""
    import warnings

    model, spec = lite0
    d = tmp_path_factory.mktemp("quantized")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "calibrating on 11 images": known, these are smoke-scale calibrations
        return {
            "tflite_int8": edgecls.export(model, spec, d / "lite0_int8.tflite", precision="int8", calibration=photos).path,
            "tflite_int8_all": edgecls.export(model, spec, d / "lite0_int8_all.tflite", precision="int8_all").path,
            "xml_fp16": edgecls.export(model, spec, d / "lite0_fp16.xml", fp16_weights=True).path,
        }


@pytest.fixture(scope="session")
def executorch_artifacts(lite0, photos, tmp_path_factory):
    """name -> verified ExecuTorch (.pte, XNNPACK) exports of pretrained Lite0: pte (FP32) and pte_int8 (PT2E, calibrated
    on the bundled photos). Its own fixture: a lowering takes ~20-60 s here, so only tests that need a .pte pay it."""
    import warnings

    from edgecls.exporters import int8_executorch

    model, spec = lite0
    d = tmp_path_factory.mktemp("executorch")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "calibrating on 11 images": a smoke-scale calibration, on purpose
        return {
            "pte": edgecls.export(model, spec, d / "lite0.pte").path,
            "pte_int8": int8_executorch(model, spec, photos, d / "lite0_int8.pte").path,
        }


# Fixtures that cost more than ~30 s each here (a deploy run, a training run, ExecuTorch lowering, INT8 builds): a test
# that needs one is slow, whatever its own body costs, so `make test-fast` (-m "not slow") never builds them.
SLOW_FIXTURES = {"deployed", "ml_deployed", "trained", "exported", "executorch_artifacts", "quantized_artifacts"}


def pytest_collection_modifyitems(config, items):
    import pytest

    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
