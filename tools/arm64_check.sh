#!/usr/bin/env bash
# edgecls on aarch64 without ARM hardware: x86-built artifacts run by the aarch64 builds of the runtimes under QEMU.
#
#   sudo tools/arm64_check.sh            # set up (first time: ~10 min, ~1.5 GB), then check on each CPU model
#   sudo tools/arm64_check.sh setup      # only build (or reuse) the arm64 root
#   sudo tools/arm64_check.sh check      # only check (the root must exist: tests/test_arm64.py runs this)
#
# Setup, each step skipped when already done (everything under $EDGECLS_ARM64_DIR, default /var/cache/edgecls-arm64):
#   - Debian 13's QEMU user-mode emulator (qemu-user 10.x, static), taken from its .deb with apt-get download:
#     Debian 12's QEMU 7.2 shows arm64 programs the host's x86 /proc/cpuinfo (ONNX Runtime's import segfaults) and
#     its default CPU's SVE emulation gave wrong LiteRT INT8 answers; QEMU >= 8.1 emulates cpuinfo itself.
#   - a binfmt_misc entry for it with the F flag (the emulator is opened once, so it runs inside the chroot without
#     being copied there): "qemu-aarch64" (the name mmdebstrap looks for), or "edgecls-aarch64" where the system has
#     a qemu-aarch64 entry of its own. Remove it with: echo -1 > /proc/sys/fs/binfmt_misc/<that name>
#   - an arm64 Debian 12 root (mmdebstrap, Debian's package) with python3 and libgomp1 (glibc 2.36: OpenVINO's
#     aarch64 wheel needs >= 2.35), and in it a venv with edgecls's device extras from PyPI's aarch64 wheels: no
#     torch, no converter. pip runs with a clean environment (the host's pip settings would leak in otherwise) and the
#     host's CA bundle.
# Check (every run):
#   - edgecls is installed in the root from a wheel built from this checkout (pip install --force-reinstall --no-deps)
#   - on the host: tools/arm64_artifacts.py exports pretrained EfficientNet-Lite0 to FP32 and INT8 (INT8 built
#     for --target-cpu arm64) for ONNX Runtime, OpenVINO and LiteRT, and records what x86 computes on the same inputs
#   - in the root, once per QEMU CPU model ($EDGECLS_ARM64_CPUS, default "cortex-a76 cortex-a72": the Jetson Orin /
#     Raspberry Pi 5 class with dot product, and the ARMv8.0 Raspberry Pi 4 class without it): tools/arm64_probe.py
#     runs every artifact on the x86 tensors and on the raw photos, `edgecls check`, `edgecls info`, `edgecls-bench`
#   - on the host: tools/arm64_artifacts.py judges the results; exit 1 when anything disagrees.
# Results: $EDGECLS_ARM64_DIR/work/summary.json (and one results-<cpu>.json per CPU model). Emulated timings say
# nothing about ARM speed; edgecls-bench marks them as emulated.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DIR=${EDGECLS_ARM64_DIR:-/var/cache/edgecls-arm64}
ROOT=$DIR/root
QEMU=$DIR/qemu/qemu-aarch64
SUITE=${EDGECLS_ARM64_SUITE:-bookworm}
MIRROR=${EDGECLS_DEBIAN_MIRROR:-http://deb.debian.org/debian}
CPUS=${EDGECLS_ARM64_CPUS:-cortex-a76 cortex-a72}
EXTRAS=${EDGECLS_ARM64_EXTRAS:-onnx,openvino,tflite,opencv}
BINFMT=/proc/sys/fs/binfmt_misc
if [ -z "${PYTHON:-}" ]; then
    if [ -x "$HERE/.venv/bin/python" ]; then PYTHON=$HERE/.venv/bin/python; else PYTHON=python3; fi
fi
MODE=${1:-all}

say() { printf '\n== %s\n' "$*"; }
die() { printf 'arm64_check: %s\n' "$*" >&2; exit 2; }

[ "$(id -u)" = 0 ] || die "run as root (it registers a binfmt_misc entry and chroots): sudo $0 $*"
case "$MODE" in setup|check|all) ;; *) die "usage: $0 [setup|check|all]" ;; esac

# --- setup -----------------------------------------------------------------------------------------------------------
get_qemu() {
    [ -x "$QEMU" ] && return
    say "QEMU user mode from Debian 13 (trixie)"
    command -v apt-get >/dev/null || die "needs apt-get (a Debian or Ubuntu host)"
    local w; w=$(mktemp -d)
    mkdir -p "$w/lists/partial" "$w/cache/archives/partial" "$DIR/qemu"
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $MIRROR trixie main" > "$w/sources.list"
    local o=(-o "Dir::Etc::SourceList=$w/sources.list" -o Dir::Etc::SourceParts=/dev/null -o "Dir::State::Lists=$w/lists"
             -o "Dir::Cache=$w/cache" -o APT::Sandbox::User=root -o Debug::NoLocking=1)
    apt-get "${o[@]}" -qq update
    (cd "$w" && apt-get "${o[@]}" -qq download qemu-user)
    dpkg-deb -x "$w"/qemu-user_*.deb "$w/x"
    cp "$w/x/usr/bin/qemu-aarch64" "$QEMU.tmp" && mv "$QEMU.tmp" "$QEMU"
    rm -rf "$w"
    "$QEMU" --version | head -1
}

register_binfmt() {
    [ -e "$BINFMT/register" ] || mount -t binfmt_misc binfmt_misc "$BINFMT"
    local e
    for e in qemu-aarch64 edgecls-aarch64; do  # already ours (a previous run)?
        if [ -e "$BINFMT/$e" ] && grep -qx "interpreter $QEMU" "$BINFMT/$e"; then
            grep -qx enabled "$BINFMT/$e" || echo 1 > "$BINFMT/$e"
            return
        fi
    done
    # mmdebstrap runs arm64 maintainer scripts through an entry named qemu-aarch64 with the F flag; where the system
    # has one already (Debian 12's qemu-user-static), ours takes another name: the kernel tries the newest entry first
    ENTRY=qemu-aarch64
    [ -e "$BINFMT/$ENTRY" ] && ENTRY=edgecls-aarch64
    # the ELF header of an aarch64 executable (Debian's qemu-aarch64.conf); F: opened now, usable inside chroots
    printf '%s' ":$ENTRY:M::\\x7f\\x45\\x4c\\x46\\x02\\x01\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x02\\x00\\xb7\\x00:\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\x00\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xfe\\xff\\xff\\xff:$QEMU:OPF" > "$BINFMT/register"
}

# run a command in the root: a private mount namespace (proc, dev, sys go away with it), a clean environment
in_root() {
    local cpu=$1; shift
    unshare --mount --propagation private -- /bin/bash -c '
        r=$1; cpu=$2; shift 2
        mount -t proc proc "$r/proc" && mount --rbind /dev "$r/dev" && mount --rbind -o ro /sys "$r/sys"
        exec chroot "$r" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb COLUMNS=160 \
            PATH=/opt/edgecls/bin:/usr/local/bin:/usr/bin:/bin QEMU_CPU="$cpu" PIP_CERT=/etc/edgecls-host-ca.crt \
            PIP_CONFIG_FILE=/dev/null PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_DEFAULT_TIMEOUT=180 PYTHONDONTWRITEBYTECODE=1 "$@"
    ' _ "$ROOT" "$cpu" "$@"
}

make_root() {
    if [ ! -f "$ROOT/etc/os-release" ]; then
        say "arm64 Debian root ($SUITE) with mmdebstrap"
        # arch-test: mmdebstrap's check that arm64 programs run here (through the binfmt entry above)
        if ! command -v mmdebstrap >/dev/null || ! command -v arch-test >/dev/null; then
            apt-get install -y -qq --no-install-recommends mmdebstrap arch-test >/dev/null \
                || (apt-get update -qq && apt-get install -y -qq --no-install-recommends mmdebstrap arch-test >/dev/null)
        fi
        rm -rf "$ROOT.tmp"
        mmdebstrap --mode=root --arch=arm64 --variant=apt --include=python3,python3-venv,python3-pip,ca-certificates,libgomp1 \
            "$SUITE" "$ROOT.tmp" "$MIRROR"
        mv "$ROOT.tmp" "$ROOT"
    fi
    cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
    cp "${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}" "$ROOT/etc/edgecls-host-ca.crt"
    if [ ! -x "$ROOT/opt/edgecls/bin/python" ]; then
        say "venv in the root"
        in_root max /usr/bin/python3 -m venv /opt/edgecls
    fi
}

# --- check -------------------------------------------------------------------------------------------------------------
install_edgecls() {
    say "edgecls wheel from $HERE -> the root (extras: $EXTRAS)"
    local wheels=$ROOT/work/wheels src
    rm -rf "$wheels" && mkdir -p "$wheels"
    src=$(mktemp -d)  # a copy: setuptools writes build/ and *.egg-info beside the sources
    cp -r "$HERE/pyproject.toml" "$HERE/README.md" "$HERE/LICENSE" "$HERE/edgecls" "$src/"
    "$PYTHON" -m pip wheel -q --no-deps --no-build-isolation -w "$wheels" "$src"
    rm -rf "$src"
    local whl; whl=$(cd "$wheels" && ls edgecls-*.whl)
    in_root max /opt/edgecls/bin/pip install -q "/work/wheels/$whl[$EXTRAS]"
    in_root max /opt/edgecls/bin/pip install -q --force-reinstall --no-deps "/work/wheels/$whl"
}

check() {
    [ -x "$ROOT/opt/edgecls/bin/python" ] || die "no arm64 root at $ROOT: run '$0 setup' first"
    register_binfmt
    local work=$ROOT/work
    mkdir -p "$work"
    local t0=$SECONDS
    install_edgecls
    say "x86 artifacts and their x86 outputs"
    "$PYTHON" "$HERE/tools/arm64_artifacts.py" build "$work/case"
    cp "$HERE/tools/arm64_probe.py" "$work/arm64_probe.py"
    local results=()
    for cpu in $CPUS; do
        say "aarch64 ($cpu, emulated): every artifact"
        local t=$SECONDS
        in_root "$cpu" /opt/edgecls/bin/python /work/arm64_probe.py /work/case "/work/results-$cpu.json" --cpu "$cpu"
        echo "$cpu: $((SECONDS - t)) s"
        results+=("$work/results-$cpu.json")
    done
    "$PYTHON" "$HERE/tools/arm64_artifacts.py" judge "$work/case" "${results[@]}" --out "$work/summary.json" \
        --check-seconds $((SECONDS - t0))
}

if [ "$MODE" != check ]; then
    t0=$SECONDS
    get_qemu
    register_binfmt
    make_root
    # first install pulls the runtimes' aarch64 wheels (~2 min); later runs find them installed
    [ -f "$ROOT/opt/edgecls/.deps" ] || { install_edgecls && touch "$ROOT/opt/edgecls/.deps"; }
    echo "setup: $((SECONDS - t0)) s; root $(du -sh "$ROOT" | cut -f1) at $ROOT"
fi
[ "$MODE" = setup ] || check
