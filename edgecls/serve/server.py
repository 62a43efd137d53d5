"""Running `edgecls serve`: the models loaded and checked, then uvicorn on one socket, with the header deadline
uvicorn does not have (it times out idle keep-alive connections only: a client that opens a connection and sends
nothing, or half a header, would otherwise hold its socket for ever)."""

from __future__ import annotations

import logging
import signal
import socket
import sys
from pathlib import Path
from typing import Callable

from ..errors import require
from .config import ServeConfig

log = logging.getLogger("edgecls.serve")


def protocol_with_header_deadline(seconds: float) -> type:
    """uvicorn's httptools protocol, closing a connection whose request line and headers take over `seconds` (408)."""
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class Protocol(HttpToolsProtocol):
        _header_timer = None

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self._arm()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._arm()

        def on_headers_complete(self) -> None:
            self._disarm()
            super().on_headers_complete()

        def connection_lost(self, exc) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            self._disarm()
            self._header_timer = self.loop.call_later(seconds, self._too_slow)

        def _disarm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _too_slow(self) -> None:
            self._header_timer = None
            if self.transport.is_closing():
                return
            if self.cycle is None or self.cycle.response_complete:  # no answer of an earlier request is under way
                self.transport.write(b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            self.transport.close()

    return Protocol


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket (IPv4 or IPv6 by the address), so the port is known before the server starts (port 0)."""
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        from ..errors import ConfigError

        raise ConfigError(f"cannot listen on {host}:{port} ({exc.strerror}); pick another --port (0: any free one)") from None
    sock.set_inheritable(True)
    return sock


def enough_files(connections: int) -> None:
    """Raise the soft open-file limit to cover `connections` sockets (often 1024 by default), up to the hard limit."""
    try:
        import resource
    except ImportError:  # not on Windows
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = connections + 256  # model files, pipes, the runtime's own
    if soft != resource.RLIM_INFINITY and soft < want:
        new = want if hard == resource.RLIM_INFINITY else min(want, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
        if new < want:
            log.warning("open files are limited to %d (ulimit -n): fewer than --max-connections %d; connections past "
                        "it are refused by the kernel", new, connections)


def url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _print(line: str) -> None:
    print(line, flush=True)


def serve(models: dict[str, Path], cfg: ServeConfig, *, announce: Callable[[str], None] = _print) -> None:
    """Load and self-check every model, then serve until SIGINT/SIGTERM (requests in flight are finished first).
    `announce` gets one line once the server accepts connections: "serving NAMES on http://HOST:PORT ..."."""
    for module in ("fastapi", "uvicorn", "prometheus_client", "httptools", "python_multipart"):
        require(module, "serve")
    import uvicorn
    from prometheus_client import disable_created_metrics

    from .app import create_app
    from .gate import KeyRing
    from .models import Repository

    if not logging.getLogger().handlers and not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s edgecls serve: %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
    disable_created_metrics()  # a *_created series per counter: noise for a scrape of one process
    enough_files(cfg.max_connections)
    keys = KeyRing(cfg.api_key_file)
    if not cfg.loopback and not keys.tokens:
        log.warning("listening on %s without --api-key-file: anyone who can reach this address can use and reload "
                    "the models", cfg.host)
    repo = Repository(models, cfg)
    repo.load_all()
    for slot in repo.slots.values():
        log.info("%s: %s on %s/%s, sha256 %s, self-check %s, batches of up to %d", slot.name, slot.path.name,
                 slot.predictor.backend_name, slot.predictor.device, slot.sha256[:12],
                 slot.predictor.self_check_result.status, slot.batch)
    app = create_app(repo, cfg, keys, handle_sighup=hasattr(signal, "SIGHUP"))
    sock = bind(cfg.host, cfg.port)
    port = sock.getsockname()[1]
    try:
        import uvloop  # noqa: F401

        loop = "uvloop"
    except ImportError:
        loop = "asyncio"
    config = uvicorn.Config(app, loop=loop, http=protocol_with_header_deadline(cfg.read_timeout), lifespan="on",
                            limit_concurrency=cfg.max_connections, timeout_keep_alive=cfg.keep_alive, backlog=2048,
                            timeout_graceful_shutdown=cfg.timeout_ms / 1e3 + 1, access_log=False, log_level="warning",
                            server_header=False)
    line = (f"serving {', '.join(repo.slots)} on {url(cfg.host, port)} (POST /v1/predict, /v2 Open Inference "
            "Protocol, /metrics, /docs)")

    class Server(uvicorn.Server):
        async def startup(self, sockets=None) -> None:
            await super().startup(sockets)
            if self.started:
                announce(line)

    try:
        Server(config).run(sockets=[sock])
    finally:
        sock.close()


__all__ = ["bind", "enough_files", "protocol_with_header_deadline", "serve", "url"]
