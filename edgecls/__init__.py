"""edgecls: take an image classifier from training to a fast, verified model on an edge device."""

from __future__ import annotations

from .errors import (
    BackendUnavailableError,
    EdgeclsError,
    ExportError,
    InferenceError,
    InputError,
    ModelFileError,
    SpecError,
    UnknownArchError,
    WeightsUnavailableError,
)
from .predictor import Prediction, Predictor, Top
from .spec import InputSpec, LineageStep, ModelSpec, Preprocess


def __getattr__(name: str):
    """`__version__`, from the installed package's metadata on first use (see edgecls.version)."""
    if name != "__version__":
        raise AttributeError(f"module 'edgecls' has no attribute {name!r}")
    from .version import package_version

    globals()["__version__"] = package_version()
    return globals()["__version__"]


def create_model(*args, **kwargs):
    """Build a registered architecture and its ModelSpec (needs edgecls[torch]); see edgecls.models."""
    from .models import create_model as _create

    return _create(*args, **kwargs)


def export(*args, **kwargs):
    """Export a PyTorch model to .pt/.onnx/.xml, verified against PyTorch; see edgecls.exporters.export."""
    from .exporters import export as _export

    return _export(*args, **kwargs)


def deploy(*args, **kwargs):
    """A folder of photos -> trained, INT8, exported, verified and benchmarked models + report; see edgecls.deploy."""
    from .deploy import deploy as _deploy

    return _deploy(*args, **kwargs)


def save(model, spec, path):
    """Save a PyTorch model and its spec as an edgecls .pt (weights only, no pickled code)."""
    from .artifacts import save_pt

    return save_pt(model, spec, path)


def load(path):
    """Load an edgecls .pt: returns (model, spec)."""
    from .artifacts import load_pt

    return load_pt(path)


__all__ = [
    "BackendUnavailableError", "EdgeclsError", "ExportError", "InferenceError", "InputError", "InputSpec", "LineageStep",
    "ModelFileError", "ModelSpec", "Prediction", "Predictor", "Preprocess", "SpecError", "Top",
    "UnknownArchError", "WeightsUnavailableError", "__version__", "create_model", "deploy", "export", "load", "save",
]
