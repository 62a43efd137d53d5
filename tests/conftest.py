"""Shared, real fixtures: pretrained EfficientNet-Lite0 exported once per session to every CPU format."""

from __future__ import annotations

import numpy as np
import pytest

import edgecls
from edgecls.samples import sample_images


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


# Fuzz tests run a fixed budget; in CI the examples are derandomized so a run is reproducible.
from hypothesis import settings as _hsettings  # noqa: E402

_hsettings.register_profile("ci", derandomize=True, deadline=None)
if __import__("os").environ.get("CI"):
    _hsettings.load_profile("ci")
