"""Request bodies, read on the event loop under the server's limits: size (from Content-Length before anything is
read, and while reading), time (a client that stops sending loses its request with 408, having cost a socket and a
coroutine, never a thread), compression, and multipart forms (parsed in memory: no temporary file is written)."""

from __future__ import annotations

import asyncio
import zlib
from typing import Any

from ..errors import RequestError

CLOSE = {"Connection": "close"}  # the rest of an unread body must not be parsed as the next request


async def read_body(request: Any, max_bytes: int, timeout_s: float, *, allow_empty: bool = False) -> bytes:
    """The whole body of a Starlette request, or RequestError 400/408/413."""
    from starlette.requests import ClientDisconnect

    length = request.headers.get("content-length")
    if length is not None:
        if not length.strip().isdigit():
            raise RequestError(400, f"Content-Length {length[:40]!r} is not a number of bytes", CLOSE)
        if int(length) > max_bytes:
            raise RequestError(413, f"{int(length)} bytes is over the {max_bytes}-byte limit; send a smaller image",
                               CLOSE)

    async def collect() -> bytes:
        parts, n = [], 0
        async for chunk in request.stream():
            n += len(chunk)
            if n > max_bytes:
                raise RequestError(413, f"the body is over the {max_bytes}-byte limit; send a smaller image", CLOSE)
            parts.append(chunk)
        return b"".join(parts)

    try:
        body = await asyncio.wait_for(collect(), timeout_s)
    except asyncio.TimeoutError:
        raise RequestError(408, f"the body did not arrive within {timeout_s:g} s", CLOSE) from None
    except ClientDisconnect:
        raise RequestError(400, "the client closed the connection before its body arrived", CLOSE) from None
    if not body and not allow_empty:
        raise RequestError(400, "the request has no body; POST the image")
    return body


def inflate(body: bytes, encoding: str | None, limit: int) -> bytes:
    """A body sent with Content-Encoding gzip or deflate, decompressed to at most `limit` bytes (a 10 KB gzip of
    zeros must not become 10 GB)."""
    encoding = (encoding or "identity").strip().lower()
    if encoding == "identity":
        return body
    if encoding not in ("gzip", "deflate"):
        raise RequestError(415, f"Content-Encoding {encoding!r} is not accepted; send gzip, deflate or none")
    d = zlib.decompressobj(16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS)
    try:
        out = d.decompress(body, limit + 1)
    except zlib.error as exc:
        raise RequestError(400, f"the {encoding} body could not be decompressed ({exc})") from None
    if len(out) > limit or d.unconsumed_tail:
        raise RequestError(413, f"the {encoding} body inflates past the {limit}-byte limit")
    if not d.eof:
        raise RequestError(400, f"the {encoding} body is truncated")
    return out


def multipart_image(body: bytes, content_type: str) -> bytes:
    """The image of a multipart/form-data body: the part named `image` or `file`, else the one file part."""
    from python_multipart.exceptions import FormParserError
    from python_multipart.multipart import MultipartParser, parse_options_header

    _, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if not boundary:
        raise RequestError(400, "multipart/form-data without a boundary; let the client library build the form")
    parts: list[dict] = []
    field: list[bytes] = []

    def begin() -> None:
        if len(parts) >= 16:
            raise RequestError(400, "more than 16 form fields; send the image alone (field 'image')")
        parts.append({"headers": {}, "data": []})

    callbacks = {
        "on_part_begin": begin,
        "on_header_field": lambda d, s, e: field.append(d[s:e]),
        "on_header_value": lambda d, s, e: parts[-1]["headers"].setdefault(b"".join(field).lower(), []).append(d[s:e]),
        "on_header_end": field.clear,
        "on_part_data": lambda d, s, e: parts[-1]["data"].append(d[s:e]),
    }
    try:
        parser = MultipartParser(boundary, callbacks)
        parser.write(body)
        parser.finalize()
    except FormParserError as exc:
        raise RequestError(400, f"the multipart form could not be parsed ({exc})") from None
    named = {}
    for p in parts:
        _, disp = parse_options_header(b"".join(p["headers"].get(b"content-disposition", [])))
        named.setdefault(disp.get(b"name", b"").decode("latin-1"), (disp, b"".join(p["data"])))
    for key in ("image", "file"):
        if key in named:
            return named[key][1]
    files = [data for disp, data in named.values() if b"filename" in disp]
    if len(files) == 1:
        return files[0]
    raise RequestError(400, f"the form has no field 'image' (fields: {', '.join(named) or 'none'}); send the image as "
                            "field 'image' (curl -F image=@photo.jpg)")


__all__ = ["CLOSE", "inflate", "multipart_image", "read_body"]
