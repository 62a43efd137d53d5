"""Reading settings files into dataclasses: one place for the YAML and unknown-key rules of every config."""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .errors import ConfigError


def setting(default: Any, help: str, choices: tuple | None = None, metavar: str | None = None) -> Any:  # noqa: A002 - argparse's own word
    """A config dataclass field that carries its help text (and choices, and the placeholder the command line shows for
    its value) for the CLI, docs and reports."""
    meta = {"help": help} | ({"choices": choices} if choices else {}) | ({"metavar": metavar} if metavar else {})
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


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """' (did you mean 'lr'?)' when a known name is close to `name` (a typo), else ''."""
    close = difflib.get_close_matches(str(name), [str(k) for k in known], n=3, cutoff=0.6)
    return f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""


def check_keys(given: Iterable[str], known: Iterable[str], error: type[Exception], what: str) -> None:
    """Unknown keys are errors (a typo never silently falls back to a default); each names the known keys close to it,
    and the full list is given when one has none. `what` names a key: "training setting", "quantize option"."""
    known = list(known)
    unknown = [k for k in given if k not in known]
    if not unknown:
        return
    hints = {k: did_you_mean(k, known) for k in unknown}
    text = ", ".join(f"{k!r}{hint}" for k, hint in hints.items())
    rest = "" if all(hints.values()) else f"; known: {', '.join(sorted(map(str, known)))}"
    raise error(f"unknown {what}{'s' if len(unknown) > 1 else ''} {text}{rest}")


def known_fields(cls, d: dict[str, Any], error: type[Exception], what: str) -> None:
    """The keys of `d` are fields of the config dataclass `cls` (what: "training", "deploy", ...)."""
    check_keys(d, [f.name for f in dataclasses.fields(cls)], error, f"{what} setting")


_UNITS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hr": 3600}


def parse_duration(value: Any, error: type[Exception] = ConfigError, what: str = "time_limit") -> float | None:
    """Seconds from a duration as people write it: 2700, "2700", "45m", "1h30m", "90min", "2h", "600s". None stays
    None. Anything else is `error` saying how to write one."""
    import re

    if value is None:
        return None
    if isinstance(value, bool):
        raise error(f"{what}={value!r}: give a duration such as 45m, 1h30m or 2700 (seconds)")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        text = str(value).strip().lower().replace(" ", "")
        parts = re.fullmatch(r"((?:\d+(?:\.\d+)?(?:h|hr|m|min|s|sec))+|\d+(?:\.\d+)?)", text)
        if not parts:
            raise error(f"{what}={value!r}: give a duration such as 45m, 1h30m, 90min or 2700 (seconds)")
        seconds = sum(float(n) * _UNITS[u or "s"] for n, u in re.findall(r"(\d+(?:\.\d+)?)(h|hr|min|m|sec|s)?", text))
    if not seconds > 0:
        raise error(f"{what}={value!r}: a time limit must be more than 0 seconds")
    return seconds


def format_duration(seconds: float) -> str:
    """90 -> '1m30s', 5400 -> '1h30m', 42.4 -> '42s': as parse_duration reads it back."""
    s = int(round(seconds))
    h, m, sec = s // 3600, s % 3600 // 60, s % 60
    return "".join(f"{v}{u}" for v, u in ((h, "h"), (m, "m"), (sec, "s")) if v) or "0s"


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

    _error: type[Exception] = ConfigError
    _what: str = "settings"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def help(cls) -> dict[str, dict[str, Any]]:
        """field name -> {"help", "default", "choices"?}: what each setting means and which values it takes."""
        return settings_help(cls)

    @classmethod
    def check_keys(cls, d: dict[str, Any]) -> None:
        """Every key of `d` is a setting of this config, else `_error` naming the close ones."""
        known_fields(cls, d, cls._error, cls._what)

    @classmethod
    def from_dict(cls, d: dict[str, Any]):
        if not isinstance(d, dict):
            raise cls._error(f"{cls._what} settings must be a mapping of setting: value, got {type(d).__name__}")
        cls.check_keys(d)
        return cls(**d)

    @classmethod
    def read_yaml(cls, path: str | Path) -> dict[str, Any]:
        """The settings a YAML file gives, keys checked, values not yet: flags may still override them."""
        d = read_yaml_mapping(path, cls._error, cls._what)
        cls.check_keys(d)
        return d

    @classmethod
    def from_yaml(cls, path: str | Path):
        return cls.from_dict(cls.read_yaml(path))
