"""What this CPU can do for INT8, and the CPU classes INT8 is built for: read from /proc/cpuinfo (Linux), never assumed.

Why it matters: on x86 without a VNNI dot-product instruction, ONNX Runtime's and OpenVINO's U8S8 kernels
multiply-add pairs of uint8 x int8 products into int16 (vpmaddubsw) and saturate when both are large. Measured on
this project's AVX2-only EPYC: pretrained EfficientNet-Lite0 INT8 (ONNX Runtime, 8-bit weights) kept the top-1 of
FP32 on 6 of 11 photos and 11 of 11 with the same QDQ graph evaluated in float. x86 with VNNI and ARM (NEON widening
multiplies, or sdot/udot) accumulate in 32 bits and do not saturate.

An INT8 artifact is built for a target CPU class (TARGET_CPUS, `--target-cpu`), recorded as spec.target_cpu: the
build picks the overflow handling that class needs, and the Predictor compares it with the CPU it runs on.
"""

from __future__ import annotations

import functools
import os
import platform
from pathlib import Path

from ..errors import ConfigError

VNNI_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")
X86 = ("x86_64", "amd64", "i686", "x86")
ARM64 = ("aarch64", "arm64")

# The CPU classes an INT8 build can be made for. "this" (resolve_target_cpu) names the building machine's class.
TARGET_CPUS = {
    "x86-vnni": "x86-64 with VNNI (AVX-512 VNNI, AVX-VNNI or AMX: Ice Lake and later Xeon/Core, Zen 4+): no saturation",
    "x86-avx2": "x86-64 with AVX2 but no VNNI (Atom/Celeron, Core before Ice Lake, Zen 2/3): U8S8 kernels saturate",
    "arm64": "aarch64 (Jetson, Raspberry Pi 4/5, phones, Graviton): no saturation",
}

# (implementer, part) of /proc/cpuinfo -> core name, for the ARM cores edge devices carry (Linux's cputype.h)
ARM_PARTS = {
    ("0x41", "0xd03"): "Cortex-A53", ("0x41", "0xd04"): "Cortex-A35", ("0x41", "0xd05"): "Cortex-A55",
    ("0x41", "0xd07"): "Cortex-A57", ("0x41", "0xd08"): "Cortex-A72", ("0x41", "0xd09"): "Cortex-A73",
    ("0x41", "0xd0a"): "Cortex-A75", ("0x41", "0xd0b"): "Cortex-A76", ("0x41", "0xd0c"): "Neoverse-N1",
    ("0x41", "0xd0d"): "Cortex-A77", ("0x41", "0xd40"): "Neoverse-V1", ("0x41", "0xd41"): "Cortex-A78",
    ("0x41", "0xd42"): "Cortex-A78AE", ("0x41", "0xd44"): "Cortex-X1", ("0x41", "0xd46"): "Cortex-A510",
    ("0x41", "0xd47"): "Cortex-A710", ("0x41", "0xd48"): "Cortex-X2", ("0x41", "0xd49"): "Neoverse-N2",
    ("0x41", "0xd4b"): "Cortex-A78C", ("0x41", "0xd4f"): "Neoverse-V2", ("0x4e", "0x004"): "NVIDIA Carmel",
}
# ARM features that decide INT8 speed: dot product (ARMv8.2+), int8 matrix multiply (ARMv8.6+), SVE
ARM_INT8_FEATURES = {"asimddp": "dot product", "i8mm": "int8 matmul", "sve": "SVE"}


def parse_cpuinfo(text: str) -> tuple[str | None, frozenset[str]]:
    """/proc/cpuinfo text -> (CPU model, flags). x86 names its model; ARM lists implementer/part codes per core,
    named here from ARM_PARTS (big.LITTLE clusters apart: "4x Cortex-A76 + 4x Cortex-A55")."""
    names: dict[str, str] = {}
    flags, parts, implementer = set(), [], None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key, value = key.strip().lower(), value.strip()
        if key in ("model name", "hardware", "cpu model"):
            names.setdefault(key, value)
        if key in ("flags", "features"):
            flags |= set(value.split())
        if key == "cpu implementer":
            implementer = value
        if key == "cpu part":
            parts.append(ARM_PARTS.get((implementer or "", value), f"ARM part {implementer}/{value}"))
    if parts:  # ARM: the cores say more than "ARMv8 Processor rev 1 (v8l)" or a SoC's "Hardware: BCM2835" line
        counts = {p: parts.count(p) for p in dict.fromkeys(parts)}
        return " + ".join(f"{n}x {p}" for p, n in counts.items()), frozenset(flags)
    return next((names[k] for k in ("model name", "cpu model", "hardware") if k in names), None), frozenset(flags)


@functools.lru_cache(maxsize=1)
def cpu_model_and_flags() -> tuple[str | None, frozenset[str]]:
    try:
        model, flags = parse_cpuinfo(Path("/proc/cpuinfo").read_text())
    except OSError:
        model, flags = None, frozenset()
    return model or platform.processor() or None, flags


def int8_saturates() -> bool | None:
    """True on an x86 CPU without VNNI (U8S8 int16 saturation risk), False on x86 with VNNI or on ARM,
    None when the flags cannot be read."""
    arch = platform.machine().lower()
    _, flags = cpu_model_and_flags()
    if arch in X86:
        return None if not flags else not any(f in flags for f in VNNI_FLAGS)
    return False if arch in ARM64 else None


def this_target_cpu() -> str | None:
    """The TARGET_CPUS class of this machine (None: another architecture, or flags that cannot be read)."""
    arch = platform.machine().lower()
    if arch in ARM64:
        return "arm64"
    sat = int8_saturates()
    return None if sat is None else ("x86-avx2" if sat else "x86-vnni")


def resolve_target_cpu(name: str | None) -> str | None:
    """A --target-cpu value -> a TARGET_CPUS class. "this" (and None) is the building machine's class, None where it
    is none of them (another architecture, flags that cannot be read: the build then decides as before target CPUs
    existed). Anything else is a ConfigError listing the classes."""
    if name is None:
        return this_target_cpu()
    key = str(name).strip().lower().replace("_", "-")
    key = {"aarch64": "arm64", "avx2": "x86-avx2", "vnni": "x86-vnni"}.get(key, key)
    if key == "this":
        return this_target_cpu()
    if key not in TARGET_CPUS:
        raise ConfigError(f"target_cpu {name!r}: use one of {', '.join(TARGET_CPUS)} or 'this' (the building machine); "
                          + "; ".join(f"{k}: {v}" for k, v in TARGET_CPUS.items()))
    return key


def target_saturates(target: str | None) -> bool:
    """Whether INT8 built for this class must avoid U8S8 saturation (None: this machine's own answer)."""
    if target is None:
        return bool(int8_saturates())
    return target == "x86-avx2"


def emulation() -> str | None:
    """How this process is emulated, when it is: a user-mode emulator (qemu-user, box64, Rosetta) translates the
    program's instructions but leaves the kernel's own architecture (/proc/sys/kernel/arch) as it is, so the two
    differ. None on real hardware (and where the kernel does not say)."""
    try:
        kernel = Path("/proc/sys/kernel/arch").read_text().strip().lower()
    except OSError:
        return None
    mine = platform.machine().lower()
    same = {k for group in (X86, ARM64) for k in group if mine in group}
    if not kernel or kernel == mine or kernel in same:
        return None
    return f"{mine} code translated on a {kernel} kernel (user-mode emulation: timings say nothing about {mine} speed)"


def board() -> str | None:
    """The board's name from the device tree (Raspberry Pi, Jetson), None on PCs and servers."""
    try:
        return Path("/proc/device-tree/model").read_text(errors="replace").strip("\x00\n ") or None
    except OSError:
        return None


def describe() -> dict:
    """This machine as INT8 sees it: architecture, CPU model, board, the INT8-relevant features, whether U8S8
    saturates here, the target class, and emulation (for `edgecls info`, edgecls-bench and tools/arm64_check.sh)."""
    model, flags = cpu_model_and_flags()
    arch = platform.machine()
    if arch.lower() in ARM64:
        features = [v for k, v in ARM_INT8_FEATURES.items() if k in flags]
        if not any(k in flags for k in ("asimddp",)):
            features.append("no dot product (ARMv8.0: INT8 may not beat FP32)")
    else:
        features = ["VNNI"] if any(f in flags for f in VNNI_FLAGS) else (["AVX2, no VNNI"] if "avx2" in flags else [])
    return {"arch": arch, "model": model, "board": board(), "cores": os.cpu_count(), "int8_features": features,
            "int8_saturates": int8_saturates(), "target_cpu": this_target_cpu(), "emulated": emulation()}


def describe_text(d: dict | None = None) -> str:
    """describe() in one line: 'aarch64, 4x Cortex-A72 (no dot product ...), 4 cores, target class arm64'."""
    d = describe() if d is None else d
    parts = [d["arch"], d["model"] or "unknown CPU"]
    if d["board"]:
        parts.append(d["board"])
    text = ", ".join(parts) + (f" ({'; '.join(d['int8_features'])})" if d["int8_features"] else "")
    text += f", {d['cores']} cores, target class {d['target_cpu'] or 'unknown'}"
    if d["int8_saturates"]:
        text += ", U8S8 INT8 kernels saturate here"
    return text + (f"; EMULATED: {d['emulated']}" if d["emulated"] else "")
