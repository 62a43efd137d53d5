"""The outermost layer of the app (plain ASGI, before routing and before any body is read): bearer-token auth and the
count of every answer by route and status."""

from __future__ import annotations

import hmac
import json
from pathlib import Path

from .config import read_api_keys
from .metrics import Metrics

OPEN_PATHS = frozenset({"/v2/health/live", "/v2/health/ready"})  # probes (Kubernetes, systemd) carry no token


class KeyRing:
    """The accepted bearer tokens (none: no auth), reread from their file on reload()."""

    def __init__(self, path: str | None):
        self.path = path
        self.tokens: tuple[bytes, ...] = ()
        self.reload()

    def reload(self) -> None:
        if self.path is not None:
            self.tokens = tuple(k.encode() for k in read_api_keys(Path(self.path)))

    def allows(self, header: bytes | None) -> bool:
        if header is None or not header[:7].lower() == b"bearer ":
            return False
        given = header[7:].strip()
        ok = False
        for token in self.tokens:  # every token compared, in constant time each: no early exit to time
            ok |= hmac.compare_digest(given, token)
        return ok


class Gate:
    def __init__(self, app, metrics: Metrics, keys: KeyRing):
        self.app, self.metrics, self.keys = app, metrics, keys

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        status = 500

        async def counted(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            if self.keys.tokens and scope["path"] not in OPEN_PATHS and not self.keys.allows(_header(scope, b"authorization")):
                await _unauthorized(counted)
            else:
                await self.app(scope, receive, counted)
        finally:
            route = scope.get("route")
            self.metrics.requests.labels(getattr(route, "path", "unmatched"), str(status)).inc()


def _header(scope, name: bytes) -> bytes | None:
    for k, v in scope["headers"]:
        if k == name:
            return v
    return None


async def _unauthorized(send) -> None:
    body = json.dumps({"error": "this server needs `Authorization: Bearer TOKEN` with a token from its "
                                "--api-key-file"}).encode()
    await send({"type": "http.response.start", "status": 401,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"www-authenticate", b'Bearer realm="edgecls"'), (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


__all__ = ["OPEN_PATHS", "Gate", "KeyRing"]
