"""Memory flatness of /v1/batch: NDJSON uploads of 100 MB and 1 GB, generated while they are
sent (a pool of seeded reviews, cycled with fresh ids: never the whole body in memory), with
`include=none` so the answer is one summary line. The service's RSS (every process of its
session) is sampled during each upload.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from itertools import islice
from typing import Any

import aiohttp
import orjson

from loadtests.bench import procs
from serve_app.ops.loadtest import textgen

POOL_RECORDS = 20_000
PIECE_BYTES = 1 << 18


_SIZE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*(B|KB|MB|GB)?\s*$", re.IGNORECASE)
_UNIT = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9}


def parse_headers(items: list[str]) -> dict[str, str]:
    """["Name: value", ...] -> {"Name": "value"}"""
    headers = {}
    for item in items:
        name, sep, value = item.partition(":")
        if not sep or not name.strip():
            raise ValueError(f"not a header: {item!r} (e.g. 'x-request-disconnect-disabled: ?1')")
        headers[name.strip()] = value.strip()
    return headers


def parse_sizes(text: str) -> list[int]:
    """ "100MB,1GB" -> [100_000_000, 1_000_000_000] (decimal units, as MB/s are)."""
    sizes = []
    for part in text.split(","):
        match = _SIZE.match(part)
        if match is None:
            raise ValueError(f"not a size: {part!r} (e.g. 100MB, 1GB)")
        sizes.append(int(float(match[1]) * _UNIT[(match[2] or "B").upper()]))
    return sizes


@dataclass(slots=True)
class Sent:
    bytes: int = 0
    records: int = 0


def record_pool(seed: int, size: int = POOL_RECORDS) -> list[bytes]:
    """JSON-encoded texts, ready to be put in a line."""
    return [orjson.dumps(r["text"]) for r in islice(textgen.records(seed), size)]


async def ndjson_body(total_bytes: int, pool: list[bytes], sent: Sent) -> AsyncIterator[bytes]:
    """At least `total_bytes` of {"id", "text"} lines, in pieces of about PIECE_BYTES."""
    piece: list[bytes] = []
    piece_bytes = 0
    while sent.bytes < total_bytes:
        line = b'{"id":"m%d","text":%s}\n' % (sent.records, pool[sent.records % len(pool)])
        piece.append(line)
        piece_bytes += len(line)
        sent.bytes += len(line)
        sent.records += 1
        if piece_bytes >= PIECE_BYTES:
            yield b"".join(piece)
            piece, piece_bytes = [], 0
    if piece:
        yield b"".join(piece)


async def post_ndjson(
    url: str,
    total_bytes: int,
    pool: list[bytes],
    options: dict[str, Any] | None,
    headers: dict[str, str] | None = None,
) -> tuple[Sent, dict[str, Any]]:
    sent = Sent()
    params = {"include": "none"}
    if options:
        params["options"] = json.dumps(options)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=10)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        async with session.post(
            f"{url}/v1/batch",
            params=params,
            data=ndjson_body(total_bytes, pool, sent),
            headers={"Content-Type": "application/x-ndjson", **(headers or {})},
        ) as response:
            text = await response.text()
            if response.status != 200:
                raise RuntimeError(f"/v1/batch answered {response.status}: {text[:500]}")
    last = orjson.loads(text.strip().splitlines()[-1])
    if "summary" not in last:
        raise RuntimeError(f"no summary line at the end of the answer: {text[-500:]}")
    return sent, last["summary"]


def upload(
    url: str,
    *,
    total_bytes: int,
    service_sid: int,
    pool: list[bytes],
    options: dict[str, Any] | None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    with procs.RssSampler(service_sid) as rss:
        started = time.perf_counter()
        sent, summary = asyncio.run(post_ndjson(url, total_bytes, pool, options, headers))
        seconds = time.perf_counter() - started
    return {
        "bytes": sent.bytes,
        "records": sent.records,
        "seconds": seconds,
        "mb_per_s": sent.bytes / 1e6 / seconds,
        "idle_bytes": rss.idle_bytes,
        "peak_bytes": rss.peak_bytes,
        "peak_increase_bytes": rss.peak_bytes - rss.idle_bytes,
        "peak_split_bytes": rss.peak_split,
        "samples": rss.samples,
        "replicas_after": procs.replica_counts(service_sid),
        "summary_records": summary.get("records"),
        "summary_failed": summary.get("failed"),
    }
