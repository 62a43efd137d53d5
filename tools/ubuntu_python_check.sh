#!/bin/bash
# The device install on a Python CI does not run: Ubuntu's own python3 in a chroot (jammy: Python 3.10, what JetPack 6
# and Ubuntu 22.04 ship; noble: 3.12). Installs the wheel into two fresh venvs there, one at the lowest versions of the
# core and device ranges beside OpenCV's GUI build (as tests/test_packaging.py does on 3.11), one at the newest releases,
# and runs the Predictor with its self-check, `edgecls info`, `edgecls check` and edgecls-bench on an .onnx, an .xml and
# a .tflite exported by edgecls. Root, network to the package registries, mmdebstrap (apt-get install mmdebstrap).
#
#   python -m build --wheel --outdir dist .            # the wheel to test
#   edgecls export efficientnet_lite0 --pretrained -f onnx openvino tflite -o art
#   tools/ubuntu_python_check.sh jammy dist/edgecls-*.whl art          # ~1 min for the chroot, ~3 min per venv
#
# Ubuntu's archive key is not in Debian's keyrings, so the throwaway chroot is bootstrapped without signature checks.
set -euo pipefail
suite=${1:?suite: jammy or noble}; wheel=$(realpath "${2:?wheel}"); art=$(realpath "${3:?artifact folder}")
root=${ROOT:-/tmp/edgecls-$suite}
here=$(cd "$(dirname "$0")/.." && pwd)
py=${PYTHON:-python3}

if [ ! -x "$root/usr/bin/python3" ]; then
  mmdebstrap --variant=apt --components=main,universe \
    --include=python3,python3-venv,python3-pip,ca-certificates,libgl1,libglib2.0-0,libgomp1 \
    --aptopt='Acquire::AllowInsecureRepositories "true"' --aptopt='APT::Get::AllowUnauthenticated "true"' \
    "$suite" "$root" http://archive.ubuntu.com/ubuntu
fi
work=$root/work
rm -rf "$work" && mkdir -p "$work"
cp /etc/resolv.conf "$root/etc/resolv.conf"
cp "${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}" "$work/ca.crt"
cp "$wheel" "$work/"
for f in "$art"/*.onnx "$art"/*.xml "$art"/*.bin "$art"/*.tflite "$art"/*.json; do [ -f "$f" ] && cp "$f" "$work/"; done
# the lower bounds the wheel declares (core + device extras), and a real photo
PYTHONPATH="$here/tests:$here" "$py" - "$wheel" "$work" <<'EOF'
import sys
from pathlib import Path

from packaging_env import lower_bounds
from PIL import Image

from edgecls.data.samples import sample_images

lows = lower_bounds(Path(sys.argv[1]))
work = Path(sys.argv[2])
app = {"opencv-python": lows.pop("opencv-python-headless"), "numpy": lows["numpy"]}
(work / "app.txt").write_text("".join(f"{n}=={v}\n" for n, v in app.items()))
(work / "lowest.txt").write_text("".join(f"{n}=={v}\n" for n, v in lows.items()))
Image.fromarray(sample_images(("coffee",))["coffee"]).save(work / "coffee.jpg")
EOF
cat > "$work/check.sh" <<'EOF'
set -euo pipefail
cd /work
export PIP_CERT=/work/ca.crt PIP_DISABLE_PIP_VERSION_CHECK=1
whl=$(ls /work/*.whl)
models=$(ls *.onnx *.xml *.tflite)
for mode in lowest newest; do
  python3 -m venv /v-$mode
  pip=/v-$mode/bin/pip
  if [ $mode = lowest ]; then
    $pip install -q --only-binary=:all: -r app.txt
    $pip install -q --only-binary=:all: -c lowest.txt "$whl[onnx,openvino,tflite]"
  else
    $pip install -q "$whl[onnx,openvino,tflite,opencv]"
  fi
  /v-$mode/bin/python -m pip check
  echo "== $mode on $(/v-$mode/bin/python -V): $(/v-$mode/bin/pip list 2>/dev/null | grep -iE '^(numpy|opencv|onnxruntime|openvino|ai-edge-litert|pillow|msgspec|rich) ' | tr -s ' ' | tr '\n' ';')"
  for m in $models; do
    /v-$mode/bin/python -c "import edgecls; p = edgecls.Predictor('$m', self_check=True); print('$m', p.predict('coffee.jpg').label)"
    /v-$mode/bin/edgecls info "$m" > /dev/null
    /v-$mode/bin/edgecls check "$m" | head -c 60; echo
    /v-$mode/bin/edgecls-bench "$m" --runs 5 --warmup 1 --no-cold -o "bench-$mode-$m" > /dev/null
  done
done
echo "ALL PASSED"
EOF
# the runtimes read /proc/cpuinfo (ONNX Runtime aborts without it) and /sys
for d in proc sys dev; do mountpoint -q "$root/$d" || mount --bind "/$d" "$root/$d"; done
trap 'for d in dev sys proc; do umount "$root/$d" 2>/dev/null || true; done' EXIT
chroot "$root" env -i PATH=/usr/bin:/bin HOME=/root LANG=C.UTF-8 bash /work/check.sh
