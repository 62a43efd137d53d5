"""PyTorch backend (.pt written by edgecls.save: state dict + spec, loaded with weights_only=True)."""

from __future__ import annotations

import threading
import numpy as np

from ..denormals import flush_denormals
from ..errors import require
from ..spec import ModelSpec

NAME, SUFFIXES, EXTRA = "torch", (".pt",), "torch"
_DEVICES = ("cpu", "cuda")


class TorchSession:
    def __init__(self, path, device: str = "cpu", threads: int | None = None, spec: ModelSpec | None = None):
        torch = require("torch", EXTRA)
        from ..artifacts import load_pt, read_pt
        from ..selfcheck import SELFCHECK_KEY

        if device not in _DEVICES:
            raise ValueError(f"device={device!r} is not valid for torch; choose one of {', '.join(_DEVICES)}")
        if device == "cuda" and not torch.cuda.is_available():
            raise ValueError("device='cuda' asked for, but torch sees no CUDA GPU; use device='cpu'")
        self._torch = torch
        if threads:
            torch.set_num_threads(int(threads))  # process-wide in PyTorch: documented on Predictor
        payload = read_pt(path)
        model, spec = load_pt(path, spec, payload=payload)
        self.embedded_spec = spec
        blob = payload.get(SELFCHECK_KEY)
        self.selfcheck_blob = blob.numpy().tobytes() if blob is not None else None
        self._model = model.to(device).eval()
        self._device = device
        i = spec.input
        self.input_shape = ("N", i.channels, i.height, i.width)
        self.num_classes = spec.num_classes
        self.max_batch = None
        self._lock = threading.Lock()  # eager forward is reentrant, but set_num_threads is global: keep one at a time

    def run(self, batch: np.ndarray) -> np.ndarray:
        torch = self._torch
        with self._lock, torch.inference_mode(), flush_denormals():
            out = self._model(torch.from_numpy(np.ascontiguousarray(batch)).to(self._device))
        return out.float().cpu().numpy()


def open(path, device: str = "cpu", threads: int | None = None, spec: ModelSpec | None = None) -> TorchSession:  # noqa: A001
    return TorchSession(path, device, threads, spec)
