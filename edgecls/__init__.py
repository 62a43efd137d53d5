"""edgecls: take an image classifier from training to a fast, verified model on an edge device.

The facade. What a camera app needs (Predictor, ModelSpec, the error types) is imported here directly and pulls in
only the device runtime; the tooling functions (create_model, export, deploy, save, load, ...) are the real
functions of their modules, imported on first use so `import edgecls` on a device never loads torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from .errors import (
    ArtifactChangedError,
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
from .runtime.predictor import Prediction, Predictor, Top
from .runtime.spec import InputSpec, LineageStep, ModelSpec, Preprocess

# name -> module holding it; resolved on first access (PEP 562), so help() and editors see the real signature
_LAZY = {
    "adopt": "edgecls.exporters.adopt",
    "create_model": "edgecls.models",
    "list_archs": "edgecls.models",
    "export": "edgecls.exporters",
    "deploy": "edgecls.deployment",
    "DeployConfig": "edgecls.deployment",
    "DeployResult": "edgecls.deployment",
    "save": "edgecls.models.pt",
    "load": "edgecls.models.pt",
    "__version__": "edgecls.version",
}
_RENAMED = {"save": "save_pt", "load": "load_pt", "__version__": "__version__"}

if TYPE_CHECKING:  # what editors and type checkers resolve the lazy names to
    from .deployment import DeployConfig, DeployResult, deploy
    from .exporters import export
    from .models import create_model, list_archs
    from .models.pt import load_pt as load
    from .models.pt import save_pt as save


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'edgecls' has no attribute {name!r}")
    if name == "__version__":
        from .version import package_version

        value = package_version()
    else:
        value = getattr(importlib.import_module(_LAZY[name]), _RENAMED.get(name, name))
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "ArtifactChangedError", "BackendUnavailableError", "DeployConfig", "DeployResult", "EdgeclsError", "ExportError",
    "InferenceError", "InputError", "InputSpec", "LineageStep", "ModelFileError", "ModelSpec", "Prediction", "Predictor",
    "Preprocess", "SpecError", "Top", "UnknownArchError", "WeightsUnavailableError", "__version__", "adopt", "create_model",
    "deploy", "export", "list_archs", "load", "save",
]
