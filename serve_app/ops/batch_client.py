"""Client side of /v1/batch: stream files up as multipart, read result lines as they come.

The upload and the download run at the same time on one connection (aiohttp writes the body
in its own task), so neither side ever holds the corpus: a file is read in 1 MB pieces while
the results of earlier files are already being written out.
"""

from __future__ import annotations

import glob
import json
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

import aiohttp
import orjson

SUPPORTED_SUFFIXES = (".json", ".jsonl", ".ndjson", ".csv")
READ_BYTES = 1 << 20


class BatchClientError(RuntimeError):
    pass


@dataclass(slots=True)
class Progress:
    """What the client has seen so far; the CLI draws it."""

    total_bytes: int
    sent_bytes: int = 0
    records: int = 0
    failed: int = 0
    summary: dict[str, Any] | None = None
    trailer: dict[str, Any] = field(default_factory=dict)


def expand_inputs(patterns: Sequence[str]) -> list[Path]:
    """Globs (quoted, so the shell does not expand them), files and directories."""
    paths: list[Path] = []
    for pattern in patterns:
        matches = sorted(glob.glob(pattern, recursive=True)) or [pattern]
        for match in matches:
            path = Path(match)
            if path.is_dir():
                paths += sorted(p for p in path.rglob("*") if p.is_file() and _supported(p.name))
            elif path.is_file():
                paths.append(path)
            else:
                raise BatchClientError(f"no such file or directory: {match}")
    return paths


def _supported(name: str) -> bool:
    name = name.removesuffix(".gz")
    return name.endswith(SUPPORTED_SUFFIXES)


async def multipart_body(
    files: Iterable[Path], boundary: str, on_sent: Callable[[int], None]
) -> AsyncIterator[bytes]:
    for path in files:
        filename = quote(str(path), safe="/._-~ ")
        yield (
            f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="files"; filename="{filename}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        with path.open("rb") as handle:
            while piece := handle.read(READ_BYTES):
                on_sent(len(piece))
                yield piece
        yield b"\r\n"
    yield f"--{boundary}--\r\n".encode()


async def run_batch(
    files: Sequence[Path],
    *,
    url: str,
    out: IO[bytes] | None,
    options: dict[str, Any] | None = None,
    summary_only: bool = False,
    top_words: int = 10,
    api_key: str | None = None,
    on_progress: Callable[[Progress], None] = lambda p: None,
) -> Progress:
    progress = Progress(total_bytes=sum(p.stat().st_size for p in files))
    boundary = f"cleanserve-{uuid.uuid4().hex}"
    params = {"top_words": str(top_words)}
    if options:
        params["options"] = json.dumps(options)
    if summary_only:
        params["include"] = "none"
    headers = {
        "Content-Type": f"multipart/form-data; boundary={boundary}",
        # In HAProxy (direct ingress) mode Serve otherwise reads the whole body ahead into an
        # unbounded queue to watch for a disconnect, and the ingress's memory grows with the
        # upload. With it, the batch pipeline's backpressure holds (docs/performance.md).
        "x-request-disconnect-disabled": "?1",
    }
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"

    def sent(n: int) -> None:
        progress.sent_bytes += n
        on_progress(progress)

    timeout = aiohttp.ClientTimeout(total=None, sock_connect=10)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as session:
            async with session.post(
                f"{url.rstrip('/')}/v1/batch",
                params=params,
                data=multipart_body(files, boundary, sent),
                headers=headers,
            ) as response:
                if response.status != 200:
                    raise BatchClientError(
                        f"the service answered {response.status}: {(await response.text())[:500]}"
                    )
                async for line in _lines(response.content):
                    _take_line(line, progress, out)
                    on_progress(progress)
    except aiohttp.ClientConnectorError as exc:
        raise BatchClientError(
            f"cannot reach cleanserve at {url} ({exc.os_error or exc}); is it running? "
            "Start it with `cleanserve up`."
        ) from None
    except aiohttp.ClientError as exc:
        raise BatchClientError(f"the connection to {url} failed: {exc!r}") from None
    if progress.summary is None:
        raise BatchClientError("the result stream ended without a summary line")
    return progress


async def _lines(content: aiohttp.StreamReader) -> AsyncIterator[bytes]:
    async for line in split_lines(content.iter_any()):
        yield line


async def split_lines(pieces: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """The non-empty lines of a byte stream. readline() has a 128 KB limit per line, and one
    record's result line can be far larger (a long review with its word counts): the pieces
    of a line are kept until its end comes and joined once, so a line of n pieces costs
    O(n), not the O(n^2) of growing one buffer and splitting it again per piece."""
    pending: list[bytes] = []  # a line's start, its end not yet received
    async for piece in pieces:
        if b"\n" not in piece:
            pending.append(piece)
            continue
        *lines, tail = piece.split(b"\n")
        if pending:
            lines[0] = b"".join([*pending, lines[0]])
            pending = []
        for line in lines:
            if line:
                yield line
        if tail:
            pending.append(tail)
    if pending:
        yield b"".join(pending)


def _take_line(line: bytes, progress: Progress, out: IO[bytes] | None) -> None:
    if line.startswith(b'{"summary"'):
        trailer = orjson.loads(line)
        progress.summary = trailer.pop("summary")
        progress.trailer = trailer
        return
    if line.startswith(b'{"error"'):
        # The last line of a stream the service could not finish (a bad upload found late, a
        # stage gone, the service stopping): the run failed, whatever was answered before it.
        stop = orjson.loads(line)
        where = f" (request id {stop['request_id']})" if stop.get("request_id") else ""
        kept = f"; --out has the {progress.records:,} answered before it" if out else ""
        raise BatchClientError(
            f"the service stopped the batch after {progress.records:,} record(s){where}: "
            f"{stop['error']}{kept}. Run the batch again."
        )
    progress.records += 1
    if b'"error"' in line and "error" in orjson.loads(line):
        progress.failed += 1
    if out is not None:
        out.write(line)
        out.write(b"\n")
