"""Where a result was measured: CPU and ISA flags, cores, memory, GPU/driver, runtime versions, and on Jetson the
board, L4T/JetPack release, power mode and clocks. Every field is read, never assumed; absent ones are null."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from importlib import metadata
from pathlib import Path

from ..runtime.cpuinfo import board, cpu_model_and_flags, emulation, int8_saturates, this_target_cpu

ISA_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16",
             "asimd", "asimddp", "sve", "i8mm", "bf16")
RUNTIMES = ("edgecls", "numpy", "opencv-python-headless", "opencv-python", "onnxruntime", "onnxruntime-gpu", "openvino",
            "torch", "ai-edge-litert", "tflite-runtime", "tensorrt", "tensorrt-cu12", "tensorrt-cu13", "nncf", "executorch")


def _run(cmd: list[str], timeout: float = 5.0) -> str | None:
    if not shutil.which(cmd[0]):
        return None
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        return r.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _cpu() -> dict:
    model, flags = cpu_model_and_flags()
    return {
        "model": model,
        "arch": platform.machine(),
        "isa": sorted(f for f in ISA_FLAGS if f in flags),
        "int8_saturation_risk": int8_saturates(),
        "int8_target_cpu": this_target_cpu(),  # the --target-cpu class INT8 built for this machine names
        "board": board(),
        "emulated": emulation(),  # user-mode emulation (qemu-user): the timings are the emulator's, not this CPU's
        "logical_cores": os.cpu_count(),
        "affinity_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "affinity": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
    }


def _memory_gb() -> float | None:
    try:
        import psutil

        return round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:  # a device install without psutil: Linux says it in /proc/meminfo
        try:
            kb = int(open("/proc/meminfo").read().split("MemTotal:")[1].split()[0])
            return round(kb / 2**20, 1)
        except (OSError, IndexError, ValueError):
            return None


def _gpu() -> list[dict]:
    out = _run(["nvidia-smi", "--query-gpu=name,driver_version,compute_cap,memory.total", "--format=csv,noheader"])
    gpus = []
    for line in (out or "").splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) >= 4:
            gpus.append({"name": parts[0], "driver": parts[1], "compute_capability": parts[2], "memory": parts[3]})
    return gpus


def _jetson() -> dict | None:
    rel = Path("/etc/nv_tegra_release")
    if not rel.is_file():
        return None
    model = Path("/proc/device-tree/model")
    return {
        "board": model.read_text(errors="replace").strip("\x00\n ") if model.is_file() else None,
        "l4t_release": rel.read_text(errors="replace").splitlines()[0].strip(),
        "power_mode": _run(["nvpmodel", "-q"]),
        "clocks": _run(["jetson_clocks", "--show"]),
        "jtop": _jtop(),
    }


def _jtop() -> dict | None:
    """jetson-stats' view (JetPack, power mode, jetson_clocks), when it and its service are installed. Written to
    jetson-stats 4.x's documented API; not yet run on a Jetson by this project."""
    try:
        from jtop import jtop
    except ImportError:
        return None
    try:
        with jtop() as j:
            if not j.ok():
                return None
            return {"board": {k: str(v) for k, v in j.board.get("hardware", {}).items()},
                    "libraries": {k: str(v) for k, v in j.board.get("libraries", {}).items()},
                    "nvpmodel": str(j.nvpmodel), "jetson_clocks": str(j.jetson_clocks)}
    except Exception as exc:  # noqa: BLE001 - the jtop service down or another version: say so, do not fail the bench
        return {"error": f"{type(exc).__name__}: {str(exc)[:200]}"}


def _versions() -> dict:
    v = {}
    for name in RUNTIMES:
        try:
            v[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    # JetPack installs TensorRT and OpenCV as system packages (no pip metadata): ask the modules themselves
    for dist, module in (("tensorrt", "tensorrt"), ("opencv", "cv2")):
        if not any(k.startswith(dist) for k in v):
            try:
                v[dist] = str(__import__(module).__version__)
            except (ImportError, AttributeError):
                pass
    return v


def fingerprint(threads: list[int] | None = None) -> dict:
    return {
        "hostname": platform.node(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "cpu": _cpu(),
        "memory_gb": _memory_gb(),
        "threads_requested": threads,
        "gpus": _gpu(),
        "jetson": _jetson(),
        "versions": _versions(),
    }
