"""edgecls's version, from the installed package's metadata (pyproject.toml is the one place it is written)."""

from __future__ import annotations

import functools


@functools.lru_cache(maxsize=1)
def package_version() -> str:
    """Looked up on first use: importing importlib.metadata costs ~100 ms, which a camera app's start should not pay
    for a version string."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("edgecls")
    except PackageNotFoundError:  # a source tree on sys.path that was never installed
        return "0+unknown"
