"""Build the C++ side (examples/cpp's camera_app, tests/cpp's spec reader) in a folder of the caller's choosing, the
way README "In a C++ app" tells a user to: CMake, Debian's OpenCV / nlohmann-json / OpenSSL, OpenVINO from its wheel,
and ExecuTorch from its wheel where it is installed (camera_app then runs .pte files too).

`make install` adds the Debian packages (CPP_PACKAGES) when it runs as root with apt-get. `toolchain_problem()` says
what is missing, so a test can skip with that reason where nothing could have installed it and fail where something
should have.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CPP_PACKAGES = ("cmake", "g++", "libopencv-dev", "nlohmann-json3-dev", "libssl-dev")  # = the Makefile's CPP_PACKAGES


class BuildError(RuntimeError):
    """CMake configure or compile failed; the message ends with the tool's last lines. `stage`: "configure" (a library
    or tool CMake cannot find) or "build" (the code does not compile or link)."""

    def __init__(self, message: str, stage: str):
        super().__init__(message)
        self.stage = stage


def openvino_cmake_dir() -> str:
    from openvino.utils import get_cmake_path

    return get_cmake_path()


def executorch_cmake_dir() -> str | None:
    """The executorch wheel's CMake package (its C++ runtime, kernels and XNNPACK delegate), when installed. Found
    without importing executorch (its import pulls in torch)."""
    import importlib.util

    spec = importlib.util.find_spec("executorch")
    if spec is None or not spec.submodule_search_locations:
        return None
    d = Path(list(spec.submodule_search_locations)[0]) / "share" / "cmake"
    return str(d) if (d / "executorch-config.cmake").is_file() else None


def toolchain_problem() -> str | None:
    """What is missing to start a build here, in words (None: CMake, a compiler and the openvino wheel are present;
    CMake's configure step then names any library it cannot find)."""
    missing = [t for t in ("cmake", "c++") if shutil.which(t) is None]
    try:
        if not (Path(openvino_cmake_dir()) / "OpenVINOConfig.cmake").is_file():
            missing.append("the openvino wheel's OpenVINOConfig.cmake")
    except ImportError:
        missing.append("openvino (pip install 'edgecls[openvino]')")
    return f"{', '.join(missing)} missing; {_HINT}" if missing else None


_HINT = f"install the Debian packages {' '.join(CPP_PACKAGES)} (make install does, as root)"


def can_install() -> bool:
    """Whether `make install` could have added the Debian packages on this machine (root with apt-get)."""
    return os.geteuid() == 0 and shutil.which("apt-get") is not None


def _run(cmd: list[str], what: str, stage: str) -> None:
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        tail = "\n".join((r.stdout + r.stderr).strip().splitlines()[-30:])
        hint = f"; {_HINT}" if stage == "configure" else ""
        raise BuildError(f"{what} failed ({' '.join(cmd[:3])} ...{hint}):\n{tail}", stage)


def cmake_build(source: Path, build: Path, target: str, jobs: int = 2, defines: dict[str, str] | None = None) -> Path:
    """Configure `source` into `build` (Release, OpenVINO from the wheel, -D`defines`) and build `target`; returns the
    executable."""
    defines = dict(defines or {})
    if executorch_cmake_dir():  # .pte support where the wheel is installed; the build works without it
        defines.setdefault("executorch_DIR", executorch_cmake_dir())
    extra = [f"-D{k}={v}" for k, v in defines.items()]
    _run(["cmake", "-S", str(source), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release",
          f"-DOpenVINO_DIR={openvino_cmake_dir()}", *extra], f"configuring {source.relative_to(REPO)}", "configure")
    _run(["cmake", "--build", str(build), "--target", target, "-j", str(jobs)], f"building {target}", "build")
    exe = build / target
    if not exe.is_file():
        raise BuildError(f"the build of {target} reported success but {exe} is not there", "build")
    return exe


def camera_app(build: Path) -> Path:
    return cmake_build(REPO / "examples" / "cpp", build, "camera_app")


def parse_specs(build: Path) -> Path:
    return cmake_build(REPO / "tests" / "cpp", build, "parse_specs")


def readme_core(build: Path) -> Path:
    """The C++ block of README "In a C++ app", built as its own program (it must compile as printed)."""
    text = (REPO / "README.md").read_text()
    section = text[text.index("## In a C++ app"):]
    code = section[section.index("```cpp\n") + len("```cpp\n"):]
    build.mkdir(parents=True, exist_ok=True)
    src = build / "readme_core.cpp"
    src.write_text(code[: code.index("```")])
    return cmake_build(REPO / "tests" / "cpp", build / "cmake", "readme_core", defines={"README_CORE": str(src)})
