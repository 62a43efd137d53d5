"""Compression: INT8 (PTQ per runtime, QAT with NNCF), structured pruning, distillation, under an accuracy budget.

Each function returns a new ModelSpec with a lineage entry; `edgecls compress CONFIG.yaml` chains them (pipeline.py).
Heavy imports (torch, nncf, torch-pruning, runtimes) happen inside the functions.
"""

from ..errors import CompressError
from .config import CompressConfig
from .pipeline import run
from .ptq import onnx_ptq, openvino_ptq

__all__ = ["CompressConfig", "CompressError", "run", "onnx_ptq", "openvino_ptq"]
