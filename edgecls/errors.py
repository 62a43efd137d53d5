"""Typed errors. Every message says what was wrong and what to do about it."""

from __future__ import annotations


class EdgeclsError(Exception):
    """Base class of every error edgecls raises on purpose."""


class SpecError(EdgeclsError, ValueError):
    """A ModelSpec is missing, malformed, or does not match its model."""


class ModelFileError(EdgeclsError, OSError):
    """A model file is missing, truncated, corrupt or of an unknown kind."""


class InputError(EdgeclsError, ValueError):
    """An image or batch handed to the Predictor cannot be used as given."""


class InferenceError(EdgeclsError, RuntimeError):
    """The runtime ran but its output cannot be used (NaN/inf logits), or the Predictor was closed."""


class BackendUnavailableError(EdgeclsError, ImportError):
    """The runtime a backend needs is not installed."""


class ExportError(EdgeclsError, RuntimeError):
    """A conversion failed or produced an artifact that disagrees with PyTorch."""


class SelfCheckError(EdgeclsError, RuntimeError):
    """An artifact's on-device self-check failed (or it has no reference data): the runtime here computes something
    other than what was verified at export. `.result` holds the figures (edgecls.selfcheck.SelfCheckResult)."""

    def __init__(self, message: str, result=None):
        super().__init__(message)
        self.result = result


class UnknownArchError(EdgeclsError, KeyError):
    """An architecture name is not in edgecls's registry."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class WeightsUnavailableError(EdgeclsError, RuntimeError):
    """Pretrained weights were asked for but cannot be obtained offline."""


def require(module: str, extra: str):
    """Import an optional runtime, or raise an error naming the extra that installs it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise BackendUnavailableError(
            f"'{module}' is not installed ({exc}). Install it with: pip install 'edgecls[{extra}]'"
        ) from exc
