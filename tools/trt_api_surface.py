"""Record the Python API surface of real TensorRT wheels, for the CPU tests' fake `tensorrt` (tests/fake_tensorrt.py).

TensorRT's Python module is a pybind11 extension linked against libnvinfer / libnvonnxparser / libnvinfer_plugin,
which ship in separate multi-GB `-libs` wheels (on PyPI only as stubs that fetch from NVIDIA's own index). The
extension only calls nine C entry points of those libraries (createInferBuilder_INTERNAL, ...), none at import time,
so this script compiles three tiny stand-in libraries that export those nine symbols (returning NULL) and imports
the real bindings against them. Nothing is built or run: it only reads what the module declares: every module
attribute, every class's members (method / property with its pybind11 signatures), every enum's members.

    python tools/trt_api_surface.py                  # both generations edgecls supports -> tests/data/tensorrt_api/
    python tools/trt_api_surface.py --wheel some/tensorrt_cu13_bindings-11.4.0.106-cp312-...whl

Needs pip (to download the bindings wheel for this Python; nothing is installed) and a C compiler (cc).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "data" / "tensorrt_api"
# (bindings distribution, version): JetPack 6.x ships TensorRT 10.3; 11.4 is what the `tensorrt` extra pins
WHEELS = [("tensorrt-cu12-bindings", "10.3.0"), ("tensorrt-cu13-bindings", "11.4.0.106")]
ENTRY_POINTS = [  # the only symbols the bindings import from TensorRT's libraries (nm -D --undefined-only)
    "createInferBuilder_INTERNAL", "createInferRefitter_INTERNAL", "createInferRuntime_INTERNAL",
    "createNvOnnxParserRefitter_INTERNAL", "createNvOnnxParser_INTERNAL", "getBuilderPluginRegistry",
    "getNvOnnxParserVersion", "getPluginRegistry", "initLibNvInferPlugins",
]

INTROSPECT = r'''
import inspect, json, sys
import tensorrt_bindings as trt

def sigs(obj):
    doc = getattr(obj, "__doc__", None) or ""
    name = getattr(obj, "__name__", "")
    out = [line.strip() for line in doc.splitlines() if name and line.strip().split("(", 1)[0].split(". ", 1)[-1] == name]
    return [s.split(". ", 1)[-1] if s[:1].isdigit() else s for s in out]

def is_enum(cls):
    return isinstance(getattr(cls, "__members__", None), dict)

surface = {"version": trt.__version__, "module": {}, "classes": {}, "enums": {}, "functions": {}, "values": {}}
for name in sorted(dir(trt)):
    if name.startswith("__"):
        continue
    obj = getattr(trt, name)
    if inspect.isclass(obj):
        if is_enum(obj):
            surface["module"][name] = "enum"
            surface["enums"][name] = {k: int(v) for k, v in sorted(obj.__members__.items())}
            continue
        surface["module"][name] = "class"
        members = {}
        for m in sorted(dir(obj)):
            if m.startswith("__") and m not in ("__init__", "__enter__", "__exit__", "__len__", "__getitem__"):
                continue
            try:
                raw = inspect.getattr_static(obj, m)
            except AttributeError:
                continue
            if isinstance(raw, property):
                members[m] = {"kind": "property", "settable": raw.fset is not None}
            elif isinstance(raw, (staticmethod, classmethod)):
                members[m] = {"kind": "static", "signatures": sigs(getattr(obj, m))}
            elif inspect.isclass(raw) and is_enum(raw):  # a nested enum (ILogger.Severity)
                members[m] = {"kind": "enum", "members": {k: int(v) for k, v in sorted(raw.__members__.items())}}
            elif callable(raw):
                members[m] = {"kind": "method", "signatures": sigs(raw)}
            elif is_enum(type(raw)):  # e.g. Logger.WARNING, set by tensorrt's __init__ from ILogger.Severity
                members[m] = {"kind": "enum_value", "enum": type(raw).__name__, "value": int(raw)}
            else:
                members[m] = {"kind": "value"}
        bases = [b.__name__ for b in obj.__mro__[1:] if b.__module__.startswith("tensorrt")]
        surface["classes"][name] = {"bases": bases, "members": members}
    elif callable(obj):
        surface["module"][name] = "function"
        surface["functions"][name] = sigs(obj)
    elif inspect.ismodule(obj):
        surface["module"][name] = "module"
    elif is_enum(type(obj)):  # trt.float32 is DataType.FLOAT
        surface["module"][name] = "enum_value"
        surface["values"][name] = {"enum": type(obj).__name__, "value": int(obj)}
    else:
        surface["module"][name] = "value"
json.dump(surface, sys.stdout, indent=1, sort_keys=True)
'''


def download(dist: str, version: str, dest: Path) -> Path:
    tag = f"{sys.version_info.major}{sys.version_info.minor}"
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--python-version", tag,
                    "--platform", "manylinux_2_28_x86_64", "--platform", "manylinux_2_17_x86_64", "-d", str(dest),
                    f"{dist}=={version}"], check=True, stdout=subprocess.DEVNULL)
    return next(dest.glob("*.whl"))


def stand_in_libraries(folder: Path, major: str) -> None:
    src = folder / "stub.c"
    src.write_text("".join(f"void *{s}(void) {{ return 0; }}\n" for s in ENTRY_POINTS))
    for lib in ("libnvinfer", "libnvonnxparser", "libnvinfer_plugin"):
        so = f"{lib}.so.{major}"
        subprocess.run(["cc", "-shared", "-fPIC", "-o", str(folder / so), f"-Wl,-soname,{so}", str(src)], check=True)


def surface_of(wheel: Path) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        with zipfile.ZipFile(wheel) as z:
            z.extractall(tmp / "site")
        version = wheel.name.split("-")[1]
        stand_in_libraries(tmp, version.split(".")[0])
        env = {**os.environ, "LD_LIBRARY_PATH": str(tmp), "PYTHONPATH": str(tmp / "site")}
        out = subprocess.run([sys.executable, "-c", INTROSPECT], env=env, check=True, capture_output=True, text=True)
    surface = json.loads(out.stdout)
    surface["source"] = wheel.name
    surface["generated_by"] = "tools/trt_api_surface.py"
    return surface


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--wheel", nargs="*", help="bindings wheels to read (default: download the versions in WHEELS)")
    ap.add_argument("-o", "--out-dir", default=str(OUT))
    a = ap.parse_args()
    out = Path(a.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        wheels = [Path(w) for w in a.wheel] if a.wheel else [download(d, v, Path(tmp) / v) for d, v in WHEELS]
        for wheel in wheels:
            s = surface_of(wheel)
            path = out / f"tensorrt-{s['version']}.json"
            path.write_text(json.dumps(s, indent=1, sort_keys=True) + "\n")
            n = sum(len(c["members"]) for c in s["classes"].values())
            print(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: {len(s['classes'])} classes, "
                  f"{n} members, {len(s['enums'])} enums ({wheel.name})")


if __name__ == "__main__":
    main()
