"""ServeConfig: every setting of `edgecls serve` with what it means (the command's flags are generated from it).

No web framework is imported here: `edgecls --help` builds the serve command's flags from this class on a device
that may not have the serve extra installed."""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..configfile import SettingsFile, setting
from ..errors import ConfigError

MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")  # what a URL path segment and a metric label can carry


@dataclass
class ServeConfig(SettingsFile):
    _error = ConfigError
    _what = "serve"
    host: str = setting("127.0.0.1", "address to listen on; the default answers this machine only. Listening on a "
                                     "network (0.0.0.0) without --api-key-file is allowed but warned about")
    port: int = setting(8000, "TCP port (0 picks a free one; the line printed at start names it)")
    max_batch: int = setting(8, "most images one model runs at once: concurrent requests are gathered up to this "
                                "(a fixed-batch artifact runs its own batch size)", metavar="N")
    max_wait_ms: float = setting(2.0, "how long the oldest queued image may wait for others to fill a batch; 0 runs "
                                      "whatever is queued as soon as a worker is free", metavar="MS")
    workers: int = setting(1, "batches running at once (inference threads; each runs the runtime's own threads)",
                           metavar="N")
    threads: int | None = setting(None, "runtime threads per model (default: the runtime's own)")
    decode_threads: int | None = setting(None, "threads that decode and preprocess uploads (default: the CPU count)",
                                         metavar="N")
    max_queue: int = setting(64, "images a model may hold admitted and unanswered; a request beyond gets 503 with "
                                 "Retry-After", metavar="N")
    timeout_ms: float = setting(10_000.0, "deadline of a request from its last byte to its answer; one still queued "
                                          "past it is answered 504 without running (a request may ask for less: "
                                          "?timeout_ms= or the protocol's timeout parameter)", metavar="MS")
    read_timeout: float = setting(10.0, "seconds a client has to send its headers, and then its body; a slow client "
                                        "costs the event loop a socket, never an inference worker", metavar="S")
    max_bytes: int = setting(10 * 2**20, "largest request body in bytes (413 beyond, read from Content-Length before "
                                         "the body)", metavar="BYTES")
    max_pixels: int = setting(40_000_000, "largest image, width x height, checked from its header before decoding",
                              metavar="N")
    max_images: int = setting(32, "most images in one Open Inference Protocol request", metavar="N")
    max_connections: int = setting(1000, "open connections and requests before new requests get 503", metavar="N")
    keep_alive: float = setting(5.0, "seconds an idle keep-alive connection stays open", metavar="S")
    api_key_file: str | None = setting(None, "file of bearer tokens, one a line: every endpoint but the health probes "
                                             "then needs `Authorization: Bearer TOKEN`; reread on SIGHUP",
                                       metavar="FILE")
    backend: str | None = setting(None, "force a runtime (default: by suffix)")
    device: str | None = setting(None, "cpu or cuda (default: the runtime's own)")
    topk: int = setting(5, "classes in each answer's top-k unless the request asks for fewer or more", metavar="K")
    reject: bool = setting(False, "answer 'unknown' (known: false) below the open-set threshold stored in the artifact")
    drift_window: int = setting(250, "images per drift comparison, for artifacts that carry a drift reference (edgecls "
                                     "fit-reference); events are counted in /metrics", metavar="N")
    allow_unchecked: bool = setting(False, "load artifacts that carry no self-check data (by default a model must pass "
                                           "its self-check here before it serves, at start and on every reload)")

    def __post_init__(self) -> None:
        positive = {"max_batch": self.max_batch, "workers": self.workers, "max_queue": self.max_queue,
                    "drift_window": self.drift_window,
                    "max_bytes": self.max_bytes, "max_pixels": self.max_pixels, "max_images": self.max_images,
                    "max_connections": self.max_connections, "topk": self.topk,
                    "threads": self.threads or 1, "decode_threads": self.decode_threads or 1}
        for name, value in positive.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name}={value!r} must be a whole number >= 1")
        for name, value in {"timeout_ms": self.timeout_ms, "read_timeout": self.read_timeout,
                            "keep_alive": self.keep_alive}.items():
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
                raise ConfigError(f"{name}={value!r} must be a number > 0")
        if not isinstance(self.max_wait_ms, (int, float)) or not 0 <= self.max_wait_ms <= 1000:
            raise ConfigError(f"max_wait_ms={self.max_wait_ms!r} must be in [0, 1000] ms (a batch wait beyond a second "
                              "is a deadline, not a batching window)")
        if not isinstance(self.port, int) or not 0 <= self.port <= 65535:
            raise ConfigError(f"port={self.port!r} must be in 0..65535 (0 picks a free one)")
        if self.max_queue < self.max_batch:
            raise ConfigError(f"max_queue={self.max_queue} is below max_batch={self.max_batch}: a full batch could "
                              "never be queued; raise max_queue or lower max_batch")
        if self.api_key_file is not None and not Path(self.api_key_file).is_file():
            raise ConfigError(f"api_key_file {self.api_key_file}: no such file; write one token per line")

    @property
    def loopback(self) -> bool:
        """True when only this machine can connect (127.0.0.0/8, ::1, localhost)."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


def parse_models(items: list[str]) -> dict[str, Path]:
    """`MODEL` or `NAME=MODEL` arguments -> {name: path}; a bare path is named by its file name without the suffix."""
    out: dict[str, Path] = {}
    for item in items:
        name, eq, path = item.partition("=")
        if not eq or os.path.exists(item):  # a path that itself holds '=' is a path
            name, path = Path(item).stem, item
        if not MODEL_NAME.match(name):
            raise ConfigError(f"model name {name!r} (from {item!r}) must be 1-64 letters, digits, '.', '_' or '-', "
                              "starting with a letter or digit; name it with NAME=PATH")
        if name in out:
            raise ConfigError(f"two models are named {name!r}; name them apart with NAME=PATH")
        if not Path(path).is_file():
            raise ConfigError(f"model {path}: no such file")
        out[name] = Path(path)
    if not out:
        raise ConfigError("give at least one model to serve")
    return out


def read_api_keys(path: str | os.PathLike) -> tuple[str, ...]:
    """The tokens of an API key file: one per line, blank lines and # comments ignored."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read api_key_file {path}: {exc}") from exc
    keys = tuple(k.strip() for k in lines if k.strip() and not k.strip().startswith("#"))
    if not keys:
        raise ConfigError(f"api_key_file {path} holds no token; write one per line")
    short = [k for k in keys if len(k) < 16]
    if short:
        raise ConfigError(f"api_key_file {path}: {len(short)} token(s) shorter than 16 characters; use long random "
                          "ones, e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`")
    if any(any(c.isspace() for c in k) for k in keys):
        raise ConfigError(f"api_key_file {path}: a token holds whitespace; one token per line, nothing else")
    return keys


__all__ = ["MODEL_NAME", "ServeConfig", "parse_models", "read_api_keys"]
