"""Request bodies and a raw HTTP/1.1 client for the upload checks.

httpx sends the whole request body before it reads the response; `duplex_post` reads the
response while it is still uploading, which is how a batch upload fails late (after its
first result line is out).
"""

from __future__ import annotations

import asyncio
import io
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit


def gzip_bomb(total_bytes: int, *, member_bytes: int = 64 * 1024 * 1024) -> bytes:
    """Gzip of `total_bytes` zero bytes, about 1000 times smaller.

    One member is compressed, streaming, from 1 MiB blocks; the bomb is that member repeated
    (`cat a.gz a.gz` is valid gzip), so a 1 GiB bomb costs the test one 64 MiB compression.
    """
    deflate = zlib.compressobj(9, zlib.DEFLATED, 31)  # wbits 31: a gzip member
    block = bytes(1024 * 1024)
    member = io.BytesIO()
    for _ in range(member_bytes // len(block)):
        member.write(deflate.compress(block))
    member.write(deflate.flush())
    count, rest = divmod(total_bytes, member_bytes)
    assert rest == 0, "total_bytes must be a multiple of member_bytes"
    return member.getvalue() * count


@dataclass
class DuplexResult:
    status: int
    headers: dict[str, str]
    body: bytes
    upload_error: str | None  # why the upload stopped early, if it did


def _chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def _dechunk(raw: bytes) -> bytes:
    out = bytearray()
    while raw:
        size_line, _, raw = raw.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out += raw[:size]
        raw = raw[size + 2 :]
    return bytes(out)


async def _duplex(
    url: str, path: str, headers: dict[str, str], first: bytes, rest: Iterable[bytes]
) -> DuplexResult:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    reader, writer = await asyncio.open_connection(host, port)
    head = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", "Transfer-Encoding: chunked"]
    head += [f"{name}: {value}" for name, value in headers.items()]
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + _chunk(first))
    await writer.drain()

    status_line = await reader.readline()  # the response has started: the first line is out
    status = int(status_line.split()[1])
    response_headers: dict[str, str] = {}
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        response_headers[name.strip().lower()] = value.strip()

    upload_error: str | None = None

    async def upload() -> None:
        nonlocal upload_error
        try:
            for piece in rest:
                writer.write(_chunk(piece))
                await writer.drain()
            writer.write(b"0\r\n\r\n")
            await writer.drain()
        except OSError as exc:  # the server stopped reading: expected once it has refused
            upload_error = repr(exc)

    sender = asyncio.create_task(upload())
    raw = bytearray()
    try:
        while piece := await reader.read(65536):
            raw += piece
            if response_headers.get("transfer-encoding") == "chunked" and raw.endswith(
                b"0\r\n\r\n"
            ):
                break
    except OSError:
        pass
    sender.cancel()
    writer.close()
    chunked = response_headers.get("transfer-encoding") == "chunked"
    body = _dechunk(bytes(raw)) if chunked else bytes(raw)
    return DuplexResult(status, response_headers, body, upload_error)


def duplex_post(
    url: str, path: str, *, headers: dict[str, str], first: bytes, rest: Iterable[bytes]
) -> DuplexResult:
    """POST `first` as a chunk, wait for the response to start, then upload `rest`."""
    return asyncio.run(asyncio.wait_for(_duplex(url, path, headers, first, rest), 300))
