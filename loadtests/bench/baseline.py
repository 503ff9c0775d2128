"""The plain baseline: FastAPI under uvicorn, no Ray. The same request and response models and
the same pure core, called in-process, so the difference to the service is what Serve adds.

    uvicorn loadtests.bench.baseline:api --port 38100 [--workers 2]
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from fastapi import FastAPI
from fastapi.responses import Response

from serve_app.core import cleaning, counting
from serve_app.schemas import AnalyzeRequest, AnalyzeResponse, CleanRequest, CleanResponse


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    counting.warm_up()  # as the WordCounter replica does, before the first request
    yield


api = FastAPI(title="cleanserve plain baseline", lifespan=lifespan)


def _json(data: Any) -> Response:
    return Response(orjson.dumps(data), media_type="application/json")


# `async def` runs the work on the event loop, with no thread-pool hop: the fastest plain form
# for a few hundred microseconds of CPU per request.
@api.post("/v1/clean", response_model=CleanResponse)
async def clean(body: CleanRequest) -> Response:
    text = cleaning.clean(body.text, body.options.to_core())
    return _json({"text": text, "char_count": len(text)})


@api.post("/v1/analyze", response_model=AnalyzeResponse)
async def analyze(body: AnalyzeRequest) -> Response:
    text = cleaning.clean(body.text, body.clean.to_core())
    counts = counting.count(text, body.count.to_core())
    return _json(
        {
            "text": text,
            "char_count": len(text),
            "word_count": counts.word_count,
            "unique_words": counts.unique_words,
            "word_counts": counts.word_counts,
        }
    )


@api.get("/healthz")
async def healthz() -> Response:
    return _json({"status": "ok"})
