"""Typed errors. Every message says what was wrong and what to do about it."""

from __future__ import annotations


class EdgeclsError(Exception):
    """Base class of every error edgecls raises on purpose."""


class SpecError(EdgeclsError, ValueError):
    """A ModelSpec is missing, malformed, or does not match its model."""


class ModelFileError(EdgeclsError, OSError):
    """A model file is missing, truncated, corrupt or of an unknown kind."""


class ArtifactChangedError(ModelFileError):
    """A file edgecls exported was changed by another tool (re-saved with FP16 weights, quantized, simplified): its graph
    is not the one the spec it carries was written for. `edgecls adopt FILE` re-embeds the spec for the new graph."""


class InputError(EdgeclsError, ValueError):
    """An argument, image or batch handed to the Predictor (or a runtime) cannot be used as given."""


class ImageFormatError(InputError):
    """Image bytes in a format the caller does not accept (a server decodes only JPEG, PNG and WebP)."""


class ImageTooLargeError(InputError):
    """An image over a pixel limit, refused from its header before its pixels are decoded."""


class InferenceError(EdgeclsError, RuntimeError):
    """The runtime ran but its output cannot be used (NaN/inf logits), or the Predictor was closed."""


class BackendUnavailableError(EdgeclsError, ImportError):
    """The runtime a backend needs is not installed."""


class ExportError(EdgeclsError, RuntimeError):
    """A conversion failed or produced an artifact that disagrees with PyTorch."""


class SelfCheckError(EdgeclsError, RuntimeError):
    """An artifact's on-device self-check failed (or it has no reference data): the runtime here computes something
    other than what was verified at export. `.result` holds the figures (edgecls.runtime.selfcheck.SelfCheckResult)."""

    def __init__(self, message: str, result=None):
        super().__init__(message)
        self.result = result


class UnknownArchError(EdgeclsError, KeyError):
    """An architecture name is not in edgecls's registry."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class WeightsUnavailableError(EdgeclsError, RuntimeError):
    """Pretrained weights were asked for but cannot be obtained offline."""


class StreamError(EdgeclsError, RuntimeError):
    """A video source cannot be opened, or a live source stayed down past the reconnect policy."""


class AdversarialError(EdgeclsError, ValueError):
    """A budget outside [1, 255] grey levels, a bad step count, or a model the attacks cannot use."""


class ExplainError(InputError):
    """A model Grad-CAM cannot explain (no convolutional layer, an unknown layer name)."""


class CorruptionError(EdgeclsError, ValueError):
    """An unknown corruption name, a severity outside 1-5, or an image a corruption cannot take."""


class DataError(InputError):
    """A dataset is missing, empty, corrupt or unusable for training."""


class ManifestError(DataError):
    """A multi-label manifest is missing, malformed, or names files/labels it should not."""


class ConfigError(EdgeclsError, ValueError):
    """A setting (config file, settings mapping or command-line flag) that is unknown, has a value it cannot take, or
    conflicts with another one."""


class TrainError(ConfigError):
    """Training settings that cannot work, together or with the given model, teacher or data."""


class DeployError(EdgeclsError, ValueError):
    """A deploy setting or input that cannot work (the message says what to change)."""


class UnknownRuntimeError(EdgeclsError, ValueError):
    """A runtime, backend or format name that is not in the runtime table (edgecls.runtime.runtimes)."""


class UnknownTargetError(UnknownRuntimeError):
    """A deploy/compress target name that is not in the table, or a runtime that has no INT8 target."""


class CompressError(EdgeclsError):
    """The compression config is invalid, or a step cannot meet what was asked (e.g. the accuracy budget).

    rows: the figures of every attempt the failing step made (also written to compress.json)."""

    def __init__(self, message: str, rows: list[dict] | None = None):
        super().__init__(message)
        self.rows = rows or []


class RequestError(EdgeclsError):
    """A request to `edgecls serve` that cannot be answered as sent: `status` is the HTTP status it gets (400 bad
    input, 401 no or wrong token, 404 no such model, 408 too slow, 413 too large, 415 not an accepted image format, 503
    queue full, 504 deadline passed), `headers` what goes with it (Retry-After, WWW-Authenticate, Connection: close)."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.headers = headers or {}


def require(module: str, extra: str):
    """Import an optional runtime, or raise an error naming the extra that installs it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise BackendUnavailableError(
            f"'{module}' is not installed ({exc}). Install it with: pip install 'edgecls[{extra}]'"
        ) from exc
