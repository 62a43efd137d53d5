"""constraints.txt: the exact version of every package `pip install -e '.[dev]'` brings (direct and transitive), as
installed in the environment the test suite passed in. pyproject.toml declares ranges (what users may combine edgecls
with); `make install` and CI install with `-c constraints.txt`, so CI runs the same versions every time.

    python tools/lock.py           # rewrite constraints.txt from the running environment
    python tools/lock.py --check   # exit 1 if a pyproject requirement is missing from constraints.txt or outside its range

Written for x86-64 Linux, CPython 3.11 (this project's CI machines): packages only other platforms pull are not in it.
"""

from __future__ import annotations

import argparse
import sys
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parent.parent
LOCK = REPO / "constraints.txt"
SELF = "edgecls"
HEADER = """\
# The versions CI installs and the test suite passed with (make install: pip install -c constraints.txt ...).
# pyproject.toml declares ranges; this file pins one tested combination of them, direct and transitive.
# Regenerate after changing an environment on purpose: python tools/lock.py (x86-64 Linux, CPython 3.11).
"""


def pyproject() -> dict:
    try:
        import tomllib
    except ImportError:  # Python 3.10: the dev extra brings tomli
        import tomli as tomllib
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def project_requirements(extras: tuple[str, ...] = ("dev",)) -> list[Requirement]:
    """The core requirements and those of `extras`, with edgecls's own extras (edgecls[torch,...]) expanded."""
    meta = pyproject()["project"]
    optional = meta.get("optional-dependencies", {})
    out, seen, todo = [Requirement(r) for r in meta["dependencies"]], set(), list(extras)
    while todo:
        extra = todo.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for text in optional[extra]:
            req = Requirement(text)
            if canonicalize_name(req.name) == SELF:
                todo += sorted(req.extras)
            else:
                out.append(req)
    return out


def applies(req: Requirement, extras: set[str]) -> bool:
    if req.marker is None:
        return True
    return any(req.marker.evaluate({"extra": e}) for e in extras or {""})


def installed_closure(reqs: list[Requirement]) -> dict[str, str]:
    """name -> installed version of every distribution `reqs` need here, transitively."""
    found: dict[str, str] = {}
    todo = [(r, {""}) for r in reqs if applies(r, {""})]
    while todo:
        req, _ = todo.pop()
        name = canonicalize_name(req.name)
        try:
            dist = distribution(req.name)
        except PackageNotFoundError:
            sys.exit(f"{req.name} is required ({req}) but not installed here: install the project first (make install)")
        key = f"{name}[{','.join(sorted(req.extras))}]"
        if key in found:
            continue
        found[key] = dist.version
        for text in dist.requires or ():
            sub = Requirement(text)
            if applies(sub, set(req.extras) | {""}):
                todo.append((sub, set(sub.extras)))
    return {k.split("[")[0]: v for k, v in sorted(found.items())}


def write() -> None:
    pins = installed_closure(project_requirements())
    LOCK.write_text(HEADER + "".join(f"{n}=={v}\n" for n, v in sorted(pins.items())))
    print(f"{LOCK.name}: {len(pins)} packages")


def read_lock() -> dict[str, str]:
    pins = {}
    for line in LOCK.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[canonicalize_name(name)] = version
    return pins


def problems() -> list[str]:
    """Every requirement of the core and all extras must be locked at a version inside its range."""
    pins = read_lock()
    meta = pyproject()["project"]
    extras = tuple(e for e in meta.get("optional-dependencies", {}) if e not in ("onnx-gpu", "tensorrt", "tensorrt-export"))
    out = []
    for req in project_requirements(extras):
        if not applies(req, {""}):  # for another Python or platform than the lock's
            continue
        name = canonicalize_name(req.name)
        if name not in pins:
            out.append(f"{req}: not in {LOCK.name}")
        elif not req.specifier.contains(pins[name], prereleases=True):
            out.append(f"{req}: {LOCK.name} has {pins[name]}, outside the range")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="check constraints.txt against pyproject.toml instead")
    if ap.parse_args().check:
        found = problems()
        print("\n".join(found) or f"{LOCK.name} agrees with pyproject.toml")
        return 1 if found else 0
    write()
    return 0


if __name__ == "__main__":
    sys.exit(main())
