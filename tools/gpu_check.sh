#!/usr/bin/env bash
# GPU check of edgecls's TensorRT path, for a bare, OFFLINE GPU machine (the lent H200: x86_64, Python 3.12 at
# /opt/torch/.venv/bin/python3 with torch 2.11+cu130, onnx, onnxruntime (CPU), numpy, opencv, timm, pillow, rich;
# NVIDIA driver 580 / CUDA 13; no TensorRT). Prepare here with tools/fetch_gpu_wheels.sh (wheels + photos in .whl/,
# git-ignored, carried by the device tool), then on the GPU machine:
#
#   tools/gpu_check.sh                   # everything that machine allows, in <= 8 minutes, results under $OUT
#   tools/gpu_check.sh --cpu-dry-run     # here, without a GPU: every CPU-side stage for real, TensorRT stages against
#                                        # the fake tensorrt of both generations (protocol only), nothing timed
#
# What it does, in order (each stage under its own timeout; a failing stage is reported and the next one runs):
#   1. installs .whl/*.whl with `pip install --no-index --no-deps --target /tmp/site`; TensorRT 11 and 10 bindings
#      each into their own folder with the `tensorrt` shim their metapackage would install; onnxruntime-gpu, when
#      carried, into its own folder (it replaces onnxruntime)
#   2. env: GPU, driver, CUDA, torch, TensorRT per generation, trtexec, ORT providers
#   3. onnx: pretrained Lite0 FP32 ONNX, FP16 ONNX (ModelOpt AutoCast), symmetric INT8 Q/DQ ONNX (ModelOpt PTQ):
#      zero-points, activation types, top-1/top-5 vs PyTorch on the bundled photos (ONNX Runtime CPU)
#   4. trt --gen 11 and --gen 10: engines FP32/FP16/INT8 (10.x also INT8 by calibrator) through edgecls.export,
#      verified against PyTorch (top-1/top-5, rel logit diff), self-check on the GPU, edgecls-bench model-only p50
#      vs a native reference on the same engine (trtexec if present, else a raw execute_async_v3 loop) -> ratio
#   5. pytest -m gpu (tests/test_backends_agree.py's TensorRT cases) under each generation
#   6. ort-cuda: Predictor(.onnx, device="cuda") through onnxruntime-gpu, when carried
#   7. summary.md: the table, with FP16/FP32 and INT8/FP16 speed-ups
# Stages 4-5 need TensorRT's native libraries, which the wheels fetched here cannot carry (tools/fetch_gpu_wheels.sh
# says why): set TRT11_LIBS / TRT10_LIBS to folders holding libnvinfer.so.11 / .so.10 (an unpacked tensorrt_libs
# wheel or a TensorRT tarball's lib/) where the machine has them; without them those stages report "not importable".
set -uo pipefail
cd "$(dirname "$0")/.."
DRY=0
for arg in "$@"; do
  case "$arg" in
    --cpu-dry-run) DRY=1 ;;
    -h|--help) sed -n 2,30p "$0"; exit 0 ;;
    *) echo "gpu_check.sh: unknown argument $arg (use --cpu-dry-run or nothing)" >&2; exit 2 ;;
  esac
done
if [ "$DRY" = 1 ]; then
  PY=${PY:-$(command -v python3)}
  OUT=${OUT:-$(mktemp -d /tmp/gpu_check_dry.XXXX)}
  SITE=${SITE:-$(mktemp -d /tmp/gpu_check_site.XXXX)}
else
  PY=${PY:-/opt/torch/.venv/bin/python3}
  OUT=${OUT:-gpu_check_out}
  SITE=${SITE:-/tmp/site}
fi
mkdir -p "$OUT"
LOG="$OUT/gpu_check.log"
START=$(date +%s)
say() { echo "[gpu_check $(( $(date +%s) - START ))s] $*" | tee -a "$LOG"; }
stage() {  # stage NAME SECONDS CMD...: run with a timeout, keep going on failure
  local name=$1 secs=$2; shift 2
  say "stage $name (timeout ${secs}s)"
  timeout "$secs" "$@" >>"$LOG" 2>&1
  local rc=$?
  [ $rc = 0 ] && say "stage $name: ok" || say "stage $name: FAILED rc=$rc (see $LOG)"
  return 0
}

# 1. install what was carried
WHEELS=$(ls .whl/*.whl 2>/dev/null | grep -v -e tensorrt_cu -e onnxruntime_gpu || true)
if [ -z "$WHEELS" ] && [ "$DRY" = 0 ]; then
  echo "gpu_check.sh: no .whl/*.whl here: run tools/fetch_gpu_wheels.sh on a machine with a package index first" >&2; exit 2
fi
if [ -n "$WHEELS" ] && [ "$DRY" = 0 ]; then
  "$PY" -m pip install -q --no-index --no-deps --target "$SITE" $WHEELS >>"$LOG" 2>&1 || say "pip install into $SITE failed"
fi
trt_site() {  # trt_site GEN WHEELGLOB -> a folder with the bindings and the `tensorrt` shim of the metapackage
  local dir="$SITE-trt$1"
  local whl
  whl=$(ls .whl/$2 2>/dev/null | head -1)
  if [ -n "$whl" ] && [ ! -d "$dir/tensorrt_bindings" ]; then
    "$PY" -m pip install -q --no-index --no-deps --target "$dir" "$whl" >>"$LOG" 2>&1
    mkdir -p "$dir/tensorrt"
    printf 'from tensorrt_bindings import *\nfrom tensorrt_bindings import __version__\n' > "$dir/tensorrt/__init__.py"
  fi
  echo "$dir"
}
[ "$DRY" = 0 ] && TRT11_SITE=$(trt_site 11 'tensorrt_cu13_bindings-11.4*') && TRT10_SITE=$(trt_site 10 'tensorrt_cu12_bindings-10.3*')
ORTGPU_SITE=""
if ls .whl/onnxruntime_gpu-*.whl >/dev/null 2>&1 && [ "$DRY" = 0 ]; then
  ORTGPU_SITE="$SITE-ortgpu"
  "$PY" -m pip install -q --no-index --no-deps --target "$ORTGPU_SITE" .whl/onnxruntime_gpu-*.whl >>"$LOG" 2>&1
fi
[ -f .whl/photos.npz ] && export EDGECLS_SAMPLE_PHOTOS=$PWD/.whl/photos.npz
export PYTHONPATH="$PWD:$SITE${PYTHONPATH:+:$PYTHONPATH}"
say "python $PY, out $OUT, site $SITE, dry run $DRY"

# 2-3. environment and the typed ONNX files (CPU work; runs for real in the dry run too)
stage env 60 "$PY" tools/gpu_check.py env --out "$OUT"
SLOW=$([ "$DRY" = 1 ] && echo 4 || echo 1)  # the dry run is on a 2-core CPU: same work, longer timeouts
stage onnx $((180 * SLOW)) "$PY" tools/gpu_check.py onnx --out "$OUT"

# 4-5. TensorRT, per generation, each in its own process with its own bindings and libraries
for GEN in 11 10; do
  if [ "$DRY" = 1 ]; then
    VER=$([ $GEN = 11 ] && echo 11.4.0.106 || echo 10.3.0)
    stage "trt$GEN (fake $VER)" $((150 * SLOW)) "$PY" tools/gpu_check.py trt --gen $GEN --fake-trt $VER --out "$OUT"
    continue
  fi
  eval "SITE_GEN=\$TRT${GEN}_SITE; LIBS=\${TRT${GEN}_LIBS:-}"
  PP="$SITE_GEN:$PYTHONPATH"
  LDP="${LIBS:+$LIBS:}${LD_LIBRARY_PATH:-}"
  stage "trt$GEN" 200 env PYTHONPATH="$PP" LD_LIBRARY_PATH="$LDP" "$PY" tools/gpu_check.py trt --gen $GEN --out "$OUT" --runs 300
  stage "pytest-gpu-trt$GEN" 120 env PYTHONPATH="$PP" LD_LIBRARY_PATH="$LDP" "$PY" -m pytest -q -x -m gpu -p no:cacheprovider \
    tests/test_backends_agree.py --junitxml "$OUT/pytest_gpu_trt$GEN.xml"
done

# 6. ONNX Runtime's CUDA provider
if [ -n "$ORTGPU_SITE" ]; then
  stage ort-cuda 90 env PYTHONPATH="$ORTGPU_SITE:$PYTHONPATH" "$PY" tools/gpu_check.py ort-cuda --out "$OUT"
else
  stage ort-cuda 60 "$PY" tools/gpu_check.py ort-cuda --out "$OUT"
fi

# 7. the table
stage summary 30 "$PY" tools/gpu_check.py summary --out "$OUT"
cat "$OUT/summary.md" 2>/dev/null
say "done in $(( $(date +%s) - START )) s; results in $OUT"
