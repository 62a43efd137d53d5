"""Reading settings files into dataclasses: one place for the YAML and unknown-key rules of every config."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any


def setting(default: Any, help: str, choices: tuple | None = None) -> Any:  # noqa: A002 - argparse's own word
    """A config dataclass field that carries its help text (and choices) for the CLI, docs and reports."""
    meta = {"help": help} | ({"choices": choices} if choices else {})
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def settings_help(cls) -> dict[str, dict[str, Any]]:
    """field name -> {"help", "default", "choices"?} of a config dataclass built with `setting`."""
    out = {}
    for f in dataclasses.fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
        out[f.name] = {"help": f.metadata.get("help", ""), "default": default,
                       **({"choices": f.metadata["choices"]} if "choices" in f.metadata else {})}
    return out


def known_fields(cls, d: dict[str, Any], error: type[Exception], what: str) -> None:
    """Unknown keys are errors (a typo never silently falls back to a default)."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - names)
    if unknown:
        raise error(f"unknown {what} setting(s) {unknown}; known: {sorted(names)}")


def load_yaml(text: str) -> Any:
    """yaml.safe_load, but `5e-4` and `1e3` are numbers: PyYAML follows YAML 1.1, which needs a dot in a float
    (`5.0e-4`), so `lr: 5e-4` would arrive as the string '5e-4' and fail later with a TypeError."""
    import re

    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_implicit_resolver("tag:yaml.org,2002:float", re.compile(
        r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"), list("-+0123456789"))
    return yaml.load(text, Loader=Loader)  # noqa: S506 - a SafeLoader subclass


def read_yaml_mapping(path: str | Path, error: type[Exception], what: str) -> dict[str, Any]:
    import yaml

    try:
        d = load_yaml(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise error(f"cannot read {what} config {path}: {exc}") from exc
    if not isinstance(d, dict):
        raise error(f"{path} must hold a mapping of settings")
    return d


class SettingsFile:
    """to_dict / help / from_dict / from_yaml for a config dataclass built with `setting`; a subclass names its error
    type and what its settings are called (`_error`, `_what`)."""

    _error: type[Exception] = ValueError
    _what: str = "settings"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def help(cls) -> dict[str, dict[str, Any]]:
        """field name -> {"help", "default", "choices"?}: what each setting means and which values it takes."""
        return settings_help(cls)

    @classmethod
    def from_dict(cls, d: dict[str, Any]):
        known_fields(cls, d, cls._error, cls._what)
        return cls(**d)

    @classmethod
    def from_yaml(cls, path: str | Path):
        return cls.from_dict(read_yaml_mapping(path, cls._error, cls._what))
