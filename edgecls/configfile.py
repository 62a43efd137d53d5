"""Reading settings files into dataclasses: one place for the YAML and unknown-key rules of every config."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any


def known_fields(cls, d: dict[str, Any], error: type[Exception], what: str) -> None:
    """Unknown keys are errors (a typo never silently falls back to a default)."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - names)
    if unknown:
        raise error(f"unknown {what} setting(s) {unknown}; known: {sorted(names)}")


def read_yaml_mapping(path: str | Path, error: type[Exception], what: str) -> dict[str, Any]:
    import yaml

    try:
        d = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise error(f"cannot read {what} config {path}: {exc}") from exc
    if not isinstance(d, dict):
        raise error(f"{path} must hold a mapping of settings")
    return d
