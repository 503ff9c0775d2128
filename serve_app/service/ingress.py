"""The HTTP ingress: translates between HTTP and deployment handles, nothing more.

Real-time requests that arrive together are grouped (`microbatch.GroupCommitter`) so that
one handle call carries many of them; `/v1/analyze` is one call to `WordCounter.clean_and_count`
(clean, then count: see `deployments`). Bulk uploads stream through `batch_stream`: the
ingress frames the bytes, and each chunk of frames is one call to `WordCounter.analyze_chunk`.
"""

# No `from __future__ import annotations`: Serve rebuilds the route signatures and FastAPI
# must see real classes, not strings, to tell a JSON body from a query parameter.
import asyncio
import copy
import logging
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import orjson
import ray.exceptions
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import Response, StreamingResponse
from pydantic import ValidationError
from ray import serve
from ray.serve.handle import DeploymentHandle
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Receive, Scope, Send

from serve_app import __version__
from serve_app.core import cleaning, counting, records
from serve_app.core.analysis import review
from serve_app.core.analysis.dedup import DuplicateIndex
from serve_app.core.pipeline import BulkOptions
from serve_app.core.records.framing import Frame
from serve_app.core.summary import Summary
from serve_app.core.summary_parts import Leaf, Split
from serve_app.core.uploads import ChunkAnswer
from serve_app.schemas import (
    AnalyzeRequest,
    AnalyzeResponse,
    BatchOptions,
    CleanRequest,
    CleanResponse,
    CountRequest,
    CountResponse,
    Health,
)
from serve_app.service import api_docs
from serve_app.service.batch_stream import (
    BatchLimits,
    ServiceStopping,
    UploadTooLarge,
    stream_batch,
)
from serve_app.service.guards import BearerAuth, BodyLimit, GuardConfig
from serve_app.service.jobs_api import registry as job_registry
from serve_app.service.jobs_api import router as jobs_router
from serve_app.service.logs import (
    RequestLog,
    error_body,
    fields_of,
    log_error,
    log_event,
    start_log_flusher,
)
from serve_app.service.metrics import IngressMetrics, RouteLatency
from serve_app.service.microbatch import GroupCommitter
from serve_app.service.stopping import watch_this_replica
from serve_app.settings import Settings

RESULT_FIELDS = frozenset(
    {"text", "char_count", "word_count", "unique_words", "word_counts", "language", "sentiment"}
)


guard_config = GuardConfig()
# The document and its page are routes of the Ingress class (below), not FastAPI's own: the
# bearer scheme depends on the replica's settings, and Serve runs a pickled copy of this app,
# so module-level state set in the replica is not what an override here would read.
api = FastAPI(
    title="cleanserve",
    version=__version__,
    summary="Clean text and count words (English, Chinese and mixed), in real time and in bulk.",
    openapi_url=None,
    docs_url=None,
    redoc_url=None,
)
route_latency = RouteLatency()
PROBES = frozenset({"/livez", "/readyz", "/healthz"})
api.add_middleware(BodyLimit, config=guard_config, exempt=frozenset({"/v1/batch"}))
api.add_middleware(BearerAuth, config=guard_config)
# Outermost, so it times and logs what the guards answer too.
api.add_middleware(RequestLog, observe=route_latency.observe, quiet_paths=PROBES)
api.include_router(jobs_router)


def openapi_document(*, secured: bool) -> dict[str, Any]:
    """The generated document; with `secured`, a bearer security scheme on every route that
    needs a key."""
    spec: dict[str, Any] = copy.deepcopy(api.openapi())
    return api_docs.with_bearer_scheme(spec) if secured else spec


def served_paths() -> frozenset[str]:
    # The class's routes sit in a router Serve includes; the document lists them all.
    return frozenset(api.openapi()["paths"]) | {"/docs", "/openapi.json"}


def _json(data: Any, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(data), status_code=status_code, media_type="application/json", headers=headers
    )


def _error(request: Request, status_code: int, detail: Any, **kwargs: Any) -> Response:
    return _json(error_body(detail, request.headers.get("x-request-id")), status_code, **kwargs)


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


@api.exception_handler(RequestValidationError)
async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
    errors = exc.errors()
    if not _is_json(request.headers.get("content-type", "")) and any(
        tuple(error["loc"][:1]) == ("body",) for error in errors
    ):
        # FastAPI takes a body of any other type as bytes, then says "not an object".
        message = "send the request body as JSON, with Content-Type: application/json"
        return _error(request, 415, message)
    # FastAPI's default echoes each bad input back: that can be a 100 MB string, or hold a
    # lone surrogate that no UTF-8 response can carry (a 500 instead of a 422).
    detail = [
        {key: error[key] for key in ("type", "loc", "msg") if key in error} for error in errors
    ]
    return _error(request, 422, detail)


@api.exception_handler(StarletteHTTPException)
async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    # A body that json.loads cannot even decode gets a bare 400 "There was an error parsing
    # the body" from FastAPI; say what is wrong, as the 422 for other invalid JSON does.
    cause = exc.__cause__
    if isinstance(cause, UnicodeDecodeError):
        msg = f"JSON decode error: the body is not valid UTF-8 (byte {cause.start})"
    elif isinstance(cause, RecursionError):
        msg = "JSON decode error: nested too deeply"
    else:
        return _error(request, exc.status_code, exc.detail, headers=exc.headers)
    return _error(request, 422, [{"type": "json_invalid", "loc": ["body"], "msg": msg}])


def _retryable(exc: BaseException) -> bool:
    return isinstance(
        exc, ray.exceptions.RayActorError | ray.exceptions.ActorUnavailableError
    ) or isinstance(exc, ray.exceptions.ObjectLostError)


async def _call_downstream(
    call: Callable[[], Awaitable[Any]],
    *,
    timeout_s: float,
    on_retry: Callable[[], object] | None = None,
) -> Any:
    """A group's handle call: sent once more if its replica died, and given up after the
    request budget.

    A replica that dies takes the calls in flight with it. The work is a pure function of its
    input, so a lost call is sent again (to a live replica) instead of failing every request
    of its group with a 500, as bulk chunks are. Some calls in flight when a replica dies never
    return at all; past the budget nobody waits for the answer, and a call that never returns
    would hold its group-commit slot for good (two of them: the route answers only 504s).
    """

    async def at_most_twice() -> Any:
        try:
            return await call()
        except Exception as exc:
            if not _retryable(exc):
                raise
        if on_retry is not None:
            on_retry()
        return await call()

    return await asyncio.wait_for(at_most_twice(), timeout_s)


def _include_fields(include: str | None) -> frozenset[str] | None:
    if include is None or include == "all":
        return None
    if include == "none":
        return frozenset()
    fields = frozenset(f.strip() for f in include.split(",") if f.strip())
    unknown = fields - RESULT_FIELDS
    if unknown:
        raise HTTPException(
            422,
            f"include: unknown field(s) {sorted(unknown)}; choose from {sorted(RESULT_FIELDS)}, "
            '"all" or "none"',
        )
    return fields


class DuplexStreamingResponse(StreamingResponse):
    """Streams results while the request body is still being read.

    Starlette's StreamingResponse watches for a disconnect by calling receive() itself, which
    would take the upload's remaining body chunks away from the batch reader and hang it.
    A client that goes away is noticed anyway: sending to it fails and ends the stream.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.stream_response(send)


def _parse_batch_options(raw: str | None) -> BatchOptions:
    if raw is None:
        return BatchOptions()
    try:
        return BatchOptions.model_validate_json(raw)
    except ValidationError as exc:
        raise HTTPException(
            422,
            [
                {"loc": ["query", "options", *err["loc"]], "msg": err["msg"], "type": err["type"]}
                for err in exc.errors(include_url=False, include_context=False)
            ],
        ) from None


# Everything the routes use is defined above: @serve.deployment pickles the class as soon as
# it is decorated, and names defined later in this module would be missing on the replicas.
@serve.deployment
@serve.ingress(api)
class Ingress:
    def __init__(
        self,
        cleaner: DeploymentHandle[Any],
        counter: DeploymentHandle[Any],
        settings: dict[str, Any],
    ) -> None:
        self._cleaner = cleaner
        self._counter = counter
        self._settings = Settings(**settings)
        self._metrics = IngressMetrics()
        guard_config.configure(self._settings)
        route_latency.start(served_paths())
        start_log_flusher()
        job_registry.configure(settings)
        # Open batch streams end with an error line when Serve stops this replica.
        self._shutdown = watch_this_replica()
        batching = {
            "max_batch": self._settings.realtime_max_batch,
            "max_in_flight": self._settings.realtime_max_in_flight,
        }
        self._clean_batch = GroupCommitter(self._clean_many, **batching)
        self._count_batch = GroupCommitter(self._count_many, **batching)
        self._analyze_batch = GroupCommitter(self._analyze_many, **batching)

    # -- real time ---------------------------------------------------------------------------

    async def _clean_many(self, items: list[tuple[str, cleaning.CleanOptions]]) -> list[str]:
        texts, options = zip(*items, strict=True)
        return await _call_downstream(  # type: ignore[no-any-return]
            lambda: self._cleaner.clean.remote(list(texts), list(options)),
            timeout_s=self._settings.request_budget_s,
            on_retry=self._metrics.realtime_retries.inc,
        )

    async def _count_many(
        self, items: list[tuple[str, counting.CountOptions]]
    ) -> list[dict[str, Any]]:
        texts, options = zip(*items, strict=True)
        return await _call_downstream(  # type: ignore[no-any-return]
            lambda: self._counter.count.remote(list(texts), list(options)),
            timeout_s=self._settings.request_budget_s,
            on_retry=self._metrics.realtime_retries.inc,
        )

    async def _analyze_many(
        self,
        items: list[
            tuple[str, cleaning.CleanOptions, counting.CountOptions, review.AnalysisOptions | None]
        ],
    ) -> list[dict[str, Any]]:
        texts, clean_options, count_options, analysis = zip(*items, strict=True)
        # Without analytics, the call is what it was: replicas of an older version still answer.
        extra = (list(analysis),) if any(a is not None for a in analysis) else ()
        # One hop, not TextCleaner then WordCounter: see serve_app.service.deployments.
        return await _call_downstream(  # type: ignore[no-any-return]
            lambda: self._counter.clean_and_count.remote(
                list(texts), list(clean_options), list(count_options), *extra
            ),
            timeout_s=self._settings.request_budget_s,
            on_retry=self._metrics.realtime_retries.inc,
        )

    async def _within_budget(self, call: Any) -> Any:
        try:
            return await asyncio.wait_for(call, self._settings.request_budget_s)
        except TimeoutError as exc:
            # Serve's context filter adds this request's id to the line.
            log_error("request_timeout", exc, budget_s=self._settings.request_budget_s)
            raise HTTPException(
                504, f"request took longer than its budget of {self._settings.request_budget_s} s"
            ) from None

    @api.post("/v1/clean", response_model=CleanResponse, responses=api_docs.ERRORS)
    async def clean(self, body: CleanRequest) -> Response:
        text = await self._within_budget(
            self._clean_batch.submit((body.text, body.options.to_core()))
        )
        return _json({"text": text, "char_count": len(text)})

    @api.post("/v1/count", response_model=CountResponse, responses=api_docs.ERRORS)
    async def count(self, body: CountRequest) -> Response:
        result = await self._within_budget(
            self._count_batch.submit((body.text, body.options.to_core()))
        )
        return _json(result)

    @api.post("/v1/analyze", response_model=AnalyzeResponse, responses=api_docs.ERRORS)
    async def analyze(self, body: AnalyzeRequest) -> Response:
        analysis = body.analysis.to_core()
        item = (
            body.text,
            body.clean.to_core(),
            body.count.to_core(),
            analysis if analysis.any else None,
        )
        return _json(await self._within_budget(self._analyze_batch.submit(item)))

    # -- the manual ----------------------------------------------------------------------------

    @api.get("/openapi.json", include_in_schema=False)
    async def openapi_json(self) -> Response:
        return _json(openapi_document(secured=bool(guard_config.keys)))

    @api.get("/docs", include_in_schema=False)
    async def docs(self) -> Response:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="cleanserve API")

    # -- probes ------------------------------------------------------------------------------

    @api.get("/livez", response_model=Health, tags=["probes"])
    async def livez(self) -> Response:
        """The ingress answers. Calls nothing downstream: a slow stage is not a reason to
        restart this process (that is what /readyz is for)."""
        return _json({"status": "ok", "deployments": {}})

    @api.get("/readyz", response_model=Health, responses=api_docs.NOT_READY, tags=["probes"])
    async def readyz(self, request: Request) -> Response:
        """TextCleaner and WordCounter each answer a tiny request within 5 s: the service
        accepts work."""
        return await self._readiness(request)

    @api.get("/healthz", response_model=Health, responses=api_docs.NOT_READY, tags=["probes"])
    async def healthz(self, request: Request) -> Response:
        """The same check as /readyz (kept for existing clients)."""
        return await self._readiness(request)

    async def _readiness(self, request: Request) -> Response:
        try:
            await asyncio.wait_for(
                asyncio.gather(
                    self._cleaner.clean.remote([" ok "], cleaning.CleanOptions()),
                    self._counter.count.remote(["ok"], counting.CountOptions()),
                ),
                timeout=5,
            )
        except Exception as exc:  # any failure to answer is "not ready", said plainly
            log_error("not_ready", exc, request_id=request.headers.get("x-request-id"))
            return _error(request, 503, f"a deployment did not answer: {exc!r}")
        return _json({"status": "ok", "deployments": {"TextCleaner": "ok", "WordCounter": "ok"}})

    # -- bulk --------------------------------------------------------------------------------

    @api.post(
        "/v1/batch",
        responses=api_docs.BATCH_RESPONSES,
        openapi_extra=api_docs.BATCH_OPENAPI_EXTRA,
    )
    async def batch(
        self,
        request: Request,
        text_field: str = "text",
        id_field: str = "id",
        options: Annotated[
            str | None, Query(description='URL-encoded JSON {"clean": {...}, "count": {...}}')
        ] = None,
        include: Annotated[
            str | None,
            Query(description='Per-record fields, comma-separated; "all" (default) or "none".'),
        ] = None,
        top_words: Annotated[int, Query(ge=0, le=10_000)] = 10,
    ) -> StreamingResponse:
        batch_options = _parse_batch_options(options)
        fields = _include_fields(include)
        settings = self._settings
        parse = records.ParseOptions(
            text_field=text_field,
            id_field=id_field,
            max_record_bytes=settings.max_record_bytes,
            max_decompressed_bytes=settings.max_decompressed_bytes,
        )
        try:
            framer = records.framer_for(
                request.headers.get("content-type", ""),
                parse,
                content_encoding=request.headers.get("content-encoding"),
                piece_bytes=settings.batch_chunk_bytes,
            )
        except records.UnsupportedMediaType as exc:
            raise HTTPException(415, str(exc)) from None
        except records.UploadError as exc:
            raise HTTPException(400, str(exc)) from None
        flags = batch_options.dedup.to_core()
        bulk = BulkOptions(
            clean=batch_options.clean.to_core(),
            count=batch_options.count.to_core(),
            include=fields,
            analysis=batch_options.analysis.to_core(),
            # Chunks go to any replica: they send signatures, and one index here, where the
            # records meet in input order, finds duplicates across the whole upload.
            dedup=flags,
            defer_duplicates=True,
        )
        duplicates = DuplicateIndex(threshold=flags.threshold) if flags.duplicates else None

        async def submit(frames: list[Frame]) -> ChunkAnswer:
            # One hop: the replica parses, cleans, counts and encodes (README, "How it works").
            return await self._counter.analyze_chunk.remote(frames, parse, bulk)  # type: ignore[no-any-return]

        async def merge(items: list[Leaf | Split], parts: int) -> Split:
            # The chunks' summaries are merged by the replicas: the ingress only passes bytes.
            return await self._counter.merge_summaries.remote(items, parts)  # type: ignore[no-any-return]

        async def head(
            items: list[Leaf | bytes], part: int, parts: int, top_n: int
        ) -> dict[str, Any]:
            # The last merge, one part per call, all at once (Serve picks the replicas).
            return await self._counter.summary_head.remote(items, part, parts, top_n)  # type: ignore[no-any-return]

        tally = fields_of(request.scope)
        tally.update(records=0, ok=0, failed=0, total_chars=0, total_words=0)

        def on_chunk(answer: ChunkAnswer, summary: Summary) -> None:
            self._metrics.chunk_records.observe(summary.records)
            for key in ("records", "ok", "failed", "total_chars", "total_words"):
                tally[key] += getattr(summary, key)
            # Ray's counters refuse an increment of 0.
            if summary.ok:
                self._metrics.records.inc(summary.ok, tags={"outcome": "ok"})
            if summary.failed:
                self._metrics.records.inc(summary.failed, tags={"outcome": "failed"})

        lines = stream_batch(
            request.stream(),
            framer,
            submit=submit,
            is_retryable=_retryable,
            limits=BatchLimits(
                chunk_bytes=settings.batch_chunk_bytes,
                max_in_flight=settings.batch_max_in_flight,
                max_buffered=settings.batch_max_buffered,
                max_attempts=settings.batch_max_attempts,
                attempt_timeout_s=settings.batch_attempt_timeout_s,
                final_parts=settings.batch_final_parts,
                max_upload_bytes=settings.max_upload_bytes,
            ),
            top_words=top_words,
            on_retry=self._metrics.retries.inc,
            on_chunk=on_chunk,
            duplicates=duplicates,
            stop=self._shutdown.wait,
            merge=merge,
            head=head,
        )
        # Run the pipeline up to its first line before answering, so an upload that is unusable
        # from the start (no text column, bad gzip, too large) gets a 4xx, not a broken stream.
        try:
            first = await anext(lines)
        except (records.UploadError, UploadTooLarge) as exc:
            raise HTTPException(413 if isinstance(exc, UploadTooLarge) else 400, str(exc)) from None
        except ServiceStopping as exc:
            raise HTTPException(503, str(exc), headers={"Retry-After": "1"}) from None

        request_id = request.headers.get("x-request-id")

        async def body() -> Any:
            outcome, level, cause = "finished", logging.INFO, {}
            failure: Exception | None = None
            try:
                yield first
                async for line in lines:
                    yield line
            except (records.UploadError, UploadTooLarge) as exc:
                outcome, level, cause = "stopped", logging.WARNING, {"error": str(exc)}
                # Too late for a status code: say it in the stream, as a last line.
                yield orjson.dumps({"error": str(exc)}) + b"\n"
            except ServiceStopping as exc:
                # Serve is stopping this replica: end the stream while it can still get out
                # (the client retries from the first record without a line).
                outcome, level, cause = "stopped", logging.WARNING, {"error": str(exc)}
                yield orjson.dumps({"error": str(exc), "request_id": request_id}) + b"\n"
            except Exception as exc:
                # A chunk failed for good (its stage is gone: a shutdown, every replica lost).
                # The client gets a last line that says so, not a stream cut mid-way that
                # looks like a network fault; the records before it are answered.
                outcome, failure = "failed", exc
                message = f"the batch stopped: {exc!r}; the records above are answered"
                yield orjson.dumps({"error": message, "request_id": request_id}) + b"\n"
            except BaseException as exc:
                # The client went away (GeneratorExit) or the replica is ending the request.
                outcome, level, cause = "broken", logging.WARNING, {"error": repr(exc)}
                raise
            finally:
                if failure is not None:
                    log_error("batch_failed", failure, request_id=request_id, **tally)
                else:
                    log_event(
                        f"batch_{outcome}", level=level, request_id=request_id, **tally, **cause
                    )

        return DuplexStreamingResponse(body(), media_type="application/x-ndjson")
