"""PyTorch backend (.pt written by edgecls.save: state dict + spec, loaded with weights_only=True)."""

from __future__ import annotations

import contextlib
import threading

import numpy as np

from ..errors import InputError, SpecError
from ..runtime.backends import Session
from ..runtime.denormals import flush_denormals
from ..runtime.spec import ModelSpec
from .pt import load_pt, read_pt, require_torch

_DEVICES = ("cpu", "cuda")


def weights_io(state: dict) -> tuple[int | None, int | None]:
    """(input channels, classes) as the weights say: the first convolution's input channels, the last linear layer's
    outputs (the classifier). None where the state dict has no such tensor."""
    weights = [v for k, v in state.items() if k.endswith("weight") and hasattr(v, "ndim")]
    conv = next((w for w in weights if w.ndim == 4), None)
    linear = next((w for w in reversed(weights) if w.ndim == 2), None)
    return (int(conv.shape[1]) if conv is not None else None), (int(linear.shape[0]) if linear is not None else None)


class TorchSession(Session):
    def __init__(self, path, device: str = "cpu", threads: int | None = None, spec: ModelSpec | None = None):
        torch = require_torch()
        from ..runtime.selfcheck import SELFCHECK_KEY

        if device not in _DEVICES:
            raise InputError(f"device={device!r} is not valid for torch; choose one of {', '.join(_DEVICES)}")
        if device == "cuda" and not torch.cuda.is_available():
            raise InputError("device='cuda' asked for, but torch sees no CUDA GPU; use device='cpu'")
        self._torch = torch
        # The model is built from the file's own spec, never from spec=: what the weights are is the file's to say,
        # and the Predictor checks a given spec against it (shape, classes) like on every other backend.
        payload = read_pt(path)
        try:
            model, own = load_pt(path, payload=payload)
        except SpecError:
            if spec is None:
                raise
            model, own = load_pt(path, spec, payload=payload)  # the file's spec is unreadable: the caller's is all there is
        channels, classes = weights_io(model.state_dict())
        self.embedded_spec = own
        blob = payload.get(SELFCHECK_KEY)
        self.selfcheck_blob = blob.numpy().tobytes() if blob is not None else None
        self._model = model.to(device).eval()
        self.device = device
        i = own.input
        self.input_shape = ("N", channels or i.channels, i.height, i.width)
        self.num_classes = classes or own.num_classes
        self.input_dtypes = ("float32",)
        self.max_batch = None
        self._threads = int(threads) if threads else None
        self._lock = threading.Lock()  # eager forward is reentrant, but the thread count is process-wide: one at a time

    @contextlib.contextmanager
    def _thread_count(self):
        """PyTorch's intra-op thread count is process-wide: set it for this call, then give the caller's back."""
        if not self._threads:
            yield
            return
        torch = self._torch
        before = torch.get_num_threads()
        torch.set_num_threads(self._threads)
        try:
            yield
        finally:
            torch.set_num_threads(before)

    def run(self, batch: np.ndarray) -> np.ndarray:
        torch = self._torch
        with self._lock, self._thread_count(), torch.inference_mode(), flush_denormals():
            out = self._model(torch.from_numpy(np.ascontiguousarray(batch)).to(self.device))
        return out.float().cpu().numpy()

    def close(self) -> None:
        self._model = None


def open(path, *, device: str, threads: int | None, spec: ModelSpec | None, cache_dir: str | None) -> TorchSession:  # noqa: A001
    return TorchSession(path, device, threads, spec)
