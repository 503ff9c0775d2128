"""One hop or two for /v1/batch chunks: the same frames through the running service's replicas,
as `WordCounter.analyze_chunk` (parse, clean, count, encode) or as `TextCleaner.clean_chunk`
then `WordCounter.count_chunk` (the answer of the first awaited here, as the ingress would).

    python -m loadtests.bench.hops [--files 30] [--rounds 3] [--mode standard|seed]

Starts its own service (`cleanserve up` on free ports), writes a seed-shaped corpus, frames it
as the ingress does, and drives each path with 4 chunks in flight; rounds alternate the two
paths. Prints MB/s per round and the ratio two hops / one hop of the medians, from this run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from loadtests.bench import bulk, corpus
from serve_app.core.pipeline import BulkOptions
from serve_app.core.records import ParseOptions
from serve_app.core.records.formframing import file_framer
from serve_app.core.records.framing import Frame
from serve_app.core.uploads import ChunkAnswer
from serve_app.ops.loadtest.service import Ports, free_port, running, tail, up_command
from serve_app.schemas import BatchOptions

APP = "cleanserve"
CHUNK_BYTES = 1 << 20
IN_FLIGHT = 4


def chunks_of(paths: Sequence[Path], parse: ParseOptions) -> list[list[Frame]]:
    """The corpus framed and grouped into chunks as the ingress does."""
    chunks: list[list[Frame]] = [[]]
    size = 0
    for doc, path in enumerate(paths):
        framer = file_framer(path.name, doc, parse, CHUNK_BYTES)
        assert framer is not None
        for frame in framer.feed(path.read_bytes()) + framer.close():
            chunks[-1].append(frame)
            size += frame.nbytes
            if size >= CHUNK_BYTES:
                chunks.append([])
                size = 0
    return [chunk for chunk in chunks if chunk]


Call = Callable[[list[Frame]], Awaitable[ChunkAnswer]]


async def drive(chunks: list[list[Frame]], call: Call) -> float:
    """Seconds to answer every chunk, at most IN_FLIGHT at a time."""
    slots = asyncio.Semaphore(IN_FLIGHT)

    async def one(chunk: list[Frame]) -> ChunkAnswer:
        async with slots:
            return await call(chunk)

    started = time.perf_counter()
    answers = await asyncio.gather(*(one(chunk) for chunk in chunks))
    assert all(answer.upload_error is None for answer in answers)
    return time.perf_counter() - started


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.bench.hops", description=__doc__)
    parser.add_argument("--files", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--mode", choices=("standard", "seed"), default="standard")
    args = parser.parse_args(argv)

    options = BatchOptions.model_validate(bulk.MODE_OPTIONS[args.mode] or {})
    bulk_options = BulkOptions(clean=options.clean.to_core(), count=options.count.to_core())
    parse = ParseOptions()
    with tempfile.TemporaryDirectory() as tmp:
        data = corpus.write(corpus.CorpusSpec(files=args.files), Path(tmp) / "corpus")
        chunks = chunks_of(data.paths, parse)
        megabytes = data.total_bytes / 1e6
        ports = Ports(free_port(), free_port(), free_port(), free_port())
        log = Path(tmp) / "service.log"
        url = f"http://127.0.0.1:{ports.port}"
        with running(up_command(ports), url, log=log):
            deadline = time.monotonic() + 30
            while not (found := re.search(r"Ray cluster: (\S+)", log.read_text())):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"no Ray address in the service's log:\n{tail(log)}")
                time.sleep(0.2)
            os.environ["RAY_AUTH_MODE"] = "token"
            import ray
            from ray import serve

            ray.init(address=found[1], namespace="serve", log_to_driver=False)
            cleaner = serve.get_deployment_handle("TextCleaner", app_name=APP)
            counter = serve.get_deployment_handle("WordCounter", app_name=APP)

            async def one_hop(frames: list[Frame]) -> ChunkAnswer:
                return await counter.analyze_chunk.remote(frames, parse, bulk_options)  # type: ignore[no-any-return]

            async def two_hops(frames: list[Frame]) -> ChunkAnswer:
                cleaned = await cleaner.clean_chunk.remote(frames, parse, bulk_options.clean)
                return await counter.count_chunk.remote(cleaned, bulk_options)  # type: ignore[no-any-return]

            paths = {"one hop": one_hop, "two hops": two_hops}
            seconds: dict[str, list[float]] = {name: [] for name in paths}

            async def rounds() -> None:
                for call in paths.values():  # warm up both paths
                    await drive(chunks[:2], call)
                for round_no in range(1, args.rounds + 1):
                    for name, call in paths.items():
                        took = await drive(chunks, call)
                        seconds[name].append(took)
                        print(f"round {round_no} {name:>8}: {megabytes / took:6.2f} MB/s")

            asyncio.run(rounds())
            ray.shutdown()
    medians = {name: statistics.median(values) for name, values in seconds.items()}
    print(
        f"{args.mode} mode, {args.files} files, {megabytes:.1f} MB, {len(chunks)} chunks: "
        + ", ".join(f"{name} {megabytes / s:.2f} MB/s" for name, s in medians.items())
        + f"; two hops / one hop = {medians['one hop'] / medians['two hops']:.2f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
