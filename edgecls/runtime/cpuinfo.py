"""What this CPU can do for INT8: read from /proc/cpuinfo (Linux), never assumed.

Why it matters: on x86 without a VNNI dot-product instruction, ONNX Runtime's and OpenVINO's U8S8 kernels
multiply-add pairs of uint8 x int8 products into int16 (vpmaddubsw) and saturate when both are large. Measured on
this project's AVX2-only EPYC: pretrained EfficientNet-Lite0 INT8 (ONNX Runtime, 8-bit weights) kept the top-1 of
FP32 on 6 of 11 photos and 11 of 11 with the same QDQ graph evaluated in float; 7-bit weights (reduce_range /
NNCF's overflow fix) remove the saturation.
"""

from __future__ import annotations

import functools
import platform
from pathlib import Path

VNNI_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")


@functools.lru_cache(maxsize=1)
def cpu_model_and_flags() -> tuple[str | None, frozenset[str]]:
    model, flags = None, set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip().lower()
            if key in ("model name", "hardware", "cpu model") and not model:
                model = value.strip()
            if key in ("flags", "features"):
                flags |= set(value.split())
    except OSError:
        pass
    return model or platform.processor() or None, frozenset(flags)


def int8_saturates() -> bool | None:
    """True on an x86 CPU without VNNI (U8S8 int16 saturation risk), False on x86 with VNNI or on ARM,
    None when the flags cannot be read."""
    arch = platform.machine().lower()
    _, flags = cpu_model_and_flags()
    if arch in ("x86_64", "amd64", "i686", "x86"):
        return None if not flags else not any(f in flags for f in VNNI_FLAGS)
    return False if arch in ("aarch64", "arm64") else None
