"""The project's real image data (../shared/data), found and extracted for tests and benchmarks (never committed).

Two archives (see that folder's README): `cifar10-train.tar.gz` (CIFAR-10's training split as 50,000 JPEGs,
`train/<class>/<nnnn>.jpg`) and `hymenoptera.tar` (`hymenoptera/{train,val}/{ants,bees}`, real photos of mixed sizes,
one palette image, one GIF that is not a photo). The folder is found by $EDGECLS_SHARED_DATA, else as `shared/data`
beside the repository or beside any folder above it, else /work/shared/data.

Missing data: `make test` sets EDGECLS_REQUIRE_DATA=1, so a test that needs data the README promises fails instead of
skipping (CI must not stay green on a machine without it); a plain `pytest` run skips with the reason.
"""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CIFAR10 = "cifar10-train.tar.gz"
HYMENOPTERA = "hymenoptera.tar"
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def shared_data_dir() -> Path | None:
    env = os.environ.get("EDGECLS_SHARED_DATA")
    if env:
        return Path(env) if Path(env).is_dir() else None
    for folder in (REPO, *REPO.parents):
        cand = folder / "shared" / "data"
        if (cand / HYMENOPTERA).is_file() or (cand / CIFAR10).is_file():
            return cand
    fallback = Path("/work/shared/data")
    return fallback if fallback.is_dir() else None


def archive(name: str) -> Path:
    """Path of one archive, or FileNotFoundError naming where it was looked for."""
    d = shared_data_dir()
    if d is None or not (d / name).is_file():
        raise FileNotFoundError(
            f"{name} not found (looked in $EDGECLS_SHARED_DATA, shared/data beside {REPO} and its parents, /work/shared/data); "
            "set EDGECLS_SHARED_DATA to the folder holding it"
        )
    return d / name


def require_data() -> bool:
    """True when missing data must fail the tests (make test / CI), not skip them."""
    return os.environ.get("EDGECLS_REQUIRE_DATA", "") not in ("", "0")


def extract_hymenoptera(dest: str | os.PathLike) -> Path:
    """Extract the ants/bees folder under `dest`; returns `dest/hymenoptera` (with train/ and val/). Idempotent."""
    dest = Path(dest)
    root = dest / "hymenoptera"
    if not (root / "val").is_dir():
        dest.mkdir(parents=True, exist_ok=True)
        with tarfile.open(archive(HYMENOPTERA)) as tf:
            tf.extractall(dest, filter="data")
    return root


def extract_cifar10(dest: str | os.PathLike, per_class: int | None = None, classes: tuple[str, ...] | None = None,
                    offset: int = 0) -> Path:
    """Extract CIFAR-10 training images as an ImageFolder `dest/<class>/<file>.jpg`; returns `dest`.

    per_class: take the files ranked offset..offset+per_class-1 by name in each class (all when None), so two calls
    with disjoint ranges give disjoint subsets (e.g. a train and a validation folder).
    classes: only these classes (default all ten).
    """
    dest = Path(dest)
    want = set(classes or CIFAR10_CLASSES)
    unknown = want - set(CIFAR10_CLASSES)
    if unknown:
        raise ValueError(f"unknown CIFAR-10 classes {sorted(unknown)}; choose from {CIFAR10_CLASSES}")
    with tarfile.open(archive(CIFAR10)) as tf:
        members = [m for m in tf.getmembers() if m.isfile() and m.name.count("/") == 2]
        by_class: dict[str, list] = {}
        for m in members:
            c = m.name.split("/")[1]
            if c in want:
                by_class.setdefault(c, []).append(m)
        picked = set()
        for ms in by_class.values():
            picked.update(m.name for m in sorted(ms, key=lambda m: m.name)[offset: None if per_class is None else offset + per_class])
        # extract in archive order: a gzip stream cannot seek back, so reading members out of order re-decompresses
        # the archive from its start for each one
        for m in members:
            if m.name not in picked:
                continue
            target = dest / m.name.split("/", 1)[1]
            if target.is_file():
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            data = tf.extractfile(m).read()
            tmp = target.with_name(f".{target.name}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, target)
    return dest


def cache_dir() -> Path:
    """A git-ignored folder of the repository where benchmarks keep what they extract (`.data/`)."""
    d = REPO / ".data"
    d.mkdir(exist_ok=True)
    return d
