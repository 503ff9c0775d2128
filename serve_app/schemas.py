"""The public contract: request and response models shared by the API, the CLI and the tests.

The option models mirror the pure core's frozen dataclasses field for field (a test keeps
them in step) and convert with `to_core()`, so the core never imports pydantic.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from serve_app.core import cleaning, counting
from serve_app.core.analysis import dedup, review


def _no_lone_surrogates(text: str) -> str:
    # JSON's "\ud800" decodes to a lone surrogate, which no UTF-8 response can carry.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(
            f"text contains a lone surrogate (U+{ord(text[exc.start]):04X}) at position {exc.start}"
        ) from None
    return text


Text = Annotated[
    str,
    AfterValidator(_no_lone_surrogates),
    Field(description="The text to process (any Unicode; lone surrogates are rejected)."),
]

_STRICT = ConfigDict(extra="forbid", strict=True)


class CleanOptions(BaseModel):
    """How to clean a text. Every field is optional; the defaults are the standard preset."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [
                {"urls": "mask", "emoji": "remove", "max_repeat": 3},
                {"to_simplified": True, "pii": ["phone", "id_card", "email"]},
            ]
        },
    )

    preset: Literal["standard", "minimal"] = Field(
        "standard",
        description='"minimal" is seed-compatible: exactly text.replace("\\n", " ").strip(), '
        "whatever the other options say.",
    )
    normalize: Literal["NFC", "NFKC"] | None = Field("NFC", description="Unicode normalization.")
    fix_encoding: bool = Field(True, description="Repair mojibake (UTF-8 read as Latin-1/cp1252).")
    strip_html: bool = Field(True, description="Remove HTML tags and decode entities.")
    urls: Literal["keep", "remove", "mask"] = Field(
        "keep", description=f'URLs: keep, remove, or replace with "{cleaning.URL_MASK}".'
    )
    emails: Literal["keep", "remove", "mask"] = Field(
        "keep",
        description=f'E-mail addresses: keep, remove, or replace with "{cleaning.EMAIL_MASK}".',
    )
    emoji: Literal["keep", "remove"] = Field("keep", description="Keep or remove emoji.")
    fullwidth_alnum: bool = Field(
        True,
        description="Full-width Latin letters, digits and the ideographic space to half-width; "
        "CJK punctuation is never touched.",
    )
    lowercase: bool = Field(False, description="Lower-case the cleaned text.")
    max_repeat: int | None = Field(
        None, ge=1, description="Squash a run of one character longer than N to N (null: off)."
    )
    to_simplified: bool = Field(
        False, description="Traditional to Simplified Chinese (OpenCC t2s): 質量 counts as 质量."
    )
    pii: tuple[Literal["phone", "id_card", "email"], ...] = Field(
        (),
        strict=False,  # a JSON array, read by FastAPI as a list
        description="Mask personal data: phone numbers (Chinese mobiles and landlines, "
        'international "+" numbers) as [PHONE], Chinese resident ID numbers (checksum '
        "verified) as [ID], e-mail addresses as [EMAIL]. Order numbers, prices and dates are "
        "left alone.",
    )

    def to_core(self) -> cleaning.CleanOptions:
        return cleaning.CleanOptions(**self.model_dump())


UserWord = Annotated[str, AfterValidator(_no_lone_surrogates), Field(min_length=1, max_length=64)]


class CountOptions(BaseModel):
    """How to split a text into words and count them."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [
                {"tokenizer": "auto", "stopwords": ["en", "zh"], "top_k": 5},
                {"user_words": ["小米手机"], "extra_stopwords": ["东西"], "offsets": True},
            ]
        },
    )

    tokenizer: Literal["auto", "unicode", "whitespace"] = Field(
        "auto",
        description="unicode: UAX #29 word boundaries; auto: unicode plus dictionary segmentation "
        "of Chinese; whitespace: str.split(), seed-compatible.",
    )
    lowercase: bool = Field(True, description="Case-fold words before counting.")
    stopwords: list[Literal["en", "zh"]] | None = Field(
        None, description="Drop the stop words of these languages."
    )
    min_length: int = Field(1, ge=1, description="Ignore words shorter than this (characters).")
    top_k: int | None = Field(
        None, ge=1, description="Return only the K most frequent words (null: all)."
    )
    user_words: tuple[UserWord, ...] = Field(
        (),
        strict=False,
        max_length=1000,
        description='Words to keep whole (brands, models: 小米手机, "iPhone 15"), on top of '
        "the deployment's user_config words. Han words match anywhere; a word that starts or "
        "ends with a Latin letter or digit only at a word boundary there.",
    )
    extra_stopwords: tuple[UserWord, ...] = Field(
        (),
        strict=False,
        max_length=10_000,
        description="More words to drop (case-folded when lowercase), on top of `stopwords` "
        "and the deployment's user_config stop words.",
    )
    offsets: bool = Field(
        False,
        description="Also return `tokens`: each counted word with its start_offset and "
        "end_offset (code points) in the text and its position, as Elasticsearch's _analyze. "
        "Real-time endpoints only.",
    )

    def to_core(self) -> counting.CountOptions:
        data = self.model_dump()
        if data["stopwords"] is not None:
            data["stopwords"] = tuple(data["stopwords"])
        return counting.CountOptions(**data)


class AnalysisOptions(BaseModel):
    """Review analytics added to each result (off by default: each costs CPU, see README)."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={"examples": [{"language": True, "sentiment": True}]},
    )

    language: bool = Field(
        False,
        description='Add "language": an ISO 639-1 code (py3langid), "mixed" for a review in '
        "both Chinese and English, null for a text without letters.",
    )
    sentiment: bool = Field(
        False,
        description='Add "sentiment": {"label": positive|neutral|negative, "score": -1..1} '
        "(Chinese: SnowNLP's model; English: VADER; mixed: both, weighed by share).",
    )

    def to_core(self) -> review.AnalysisOptions:
        return review.AnalysisOptions(**self.model_dump())


class DedupOptions(BaseModel):
    """Bulk only: duplicates and default reviews, flagged per record and counted."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"duplicates": True, "boilerplate": True, "exclude_from_counts": True}]
        },
    )

    duplicates: bool = Field(
        False,
        description='Add "duplicate_of": the index of the earlier record whose cleaned text '
        "this one repeats, exactly or nearly (MinHash of character 3-grams, estimated Jaccard "
        '>= threshold); in a job, {"source", "index"} of that record. The summary counts them.',
    )
    boilerplate: bool = Field(
        False,
        description='Add "boilerplate": true to default reviews (此用户未填写评价内容, 默认好评, '
        '"This user didn\'t fill in a review", ...). The summary counts them.',
    )
    threshold: float = Field(0.8, gt=0, le=1, description="Near-duplicate Jaccard threshold.")
    exclude_from_counts: bool = Field(
        False, description="Leave flagged records out of total_words and top_words."
    )

    def to_core(self) -> dedup.DedupOptions:
        return dedup.DedupOptions(**self.model_dump())


class Sentiment(BaseModel):
    label: Literal["positive", "neutral", "negative"]
    score: float = Field(ge=-1, le=1)


_REVIEW = "物流很快，包装很好！<b>Great</b> value, would buy again 👍"


class CleanRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"text": _REVIEW, "options": {"urls": "mask"}}]},
    )

    text: Text
    options: CleanOptions = Field(default_factory=lambda: CleanOptions())


class CleanResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"text": "物流很快，包装很好！Great value, would buy again 👍", "char_count": 40}
            ]
        }
    )

    text: str = Field(description="The cleaned text.")
    char_count: int = Field(description="len() of the cleaned text, in code points.")


class CountRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"text": "物流很快，物流也很好 fast fast", "options": {}}]},
    )

    text: Text
    options: CountOptions = Field(default_factory=lambda: CountOptions())


class TokenOffset(BaseModel):
    token: str
    start_offset: int
    end_offset: int
    position: int


class CountResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "word_count": 6,
                    "unique_words": 4,
                    "word_counts": {"物流": 2, "fast": 2, "很快": 1, "很好": 1},
                }
            ]
        }
    )

    word_count: int = Field(description="Words counted (after stop words and min_length).")
    unique_words: int = Field(description="Distinct words.")
    word_counts: dict[str, int] = Field(
        description="Word -> count, most frequent first, ties in order of first occurrence "
        "(whitespace tokenizer without top_k: first-occurrence order, as the seed script)."
    )
    tokens: list[TokenOffset] | None = Field(
        None, description='Only with "offsets": true: the counted words in text order.'
    )


class AnalyzeRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"text": _REVIEW, "clean": {}, "count": {"stopwords": ["en", "zh"]}},
                {"text": _REVIEW, "analysis": {"language": True, "sentiment": True}},
                {
                    "text": "seed  compatible\ntext",
                    "clean": {"preset": "minimal"},
                    "count": {"tokenizer": "whitespace", "lowercase": False},
                },
            ]
        },
    )

    text: Text
    clean: CleanOptions = Field(default_factory=lambda: CleanOptions())
    count: CountOptions = Field(default_factory=lambda: CountOptions())
    analysis: AnalysisOptions = Field(default_factory=lambda: AnalysisOptions())


class AnalyzeResponse(CleanResponse, CountResponse):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "text": "物流很快，包装很好！Great value",
                    "char_count": 21,
                    "word_count": 5,
                    "unique_words": 5,
                    "word_counts": {"物流": 1, "很快": 1, "包装": 1, "很好": 1, "great": 1},
                    "language": "mixed",
                    "sentiment": {"label": "positive", "score": 0.8},
                }
            ]
        }
    )

    language: str | None = Field(None, description='Only with "analysis": {"language": true}.')
    sentiment: Sentiment | None = Field(
        None, description='Only with "analysis": {"sentiment": true}.'
    )


class BatchOptions(BaseModel):
    """The `options` query parameter of /v1/batch, as URL-encoded JSON."""

    model_config = ConfigDict(extra="forbid")

    clean: CleanOptions = Field(default_factory=lambda: CleanOptions())
    count: CountOptions = Field(default_factory=lambda: CountOptions())
    analysis: AnalysisOptions = Field(default_factory=lambda: AnalysisOptions())
    dedup: DedupOptions = Field(default_factory=lambda: DedupOptions())


class SentimentSummary(BaseModel):
    labels: dict[str, int]
    mean_score: float


class BatchSummary(BaseModel):
    records: int
    ok: int
    failed: int
    total_chars: int
    total_words: int
    unique_words: int
    top_words: list[tuple[str, int]]
    languages: dict[str, int] | None = Field(None, description="With analysis.language.")
    sentiment: SentimentSummary | None = Field(None, description="With analysis.sentiment.")
    duplicates: int | None = Field(None, description="With dedup.duplicates.")
    boilerplate: int | None = Field(None, description="With dedup.boilerplate.")


class Health(BaseModel):
    status: Literal["ok"] = "ok"
    deployments: dict[str, str] = Field(default_factory=dict)


class ErrorBody(BaseModel):
    """Every error the application answers: what is wrong, and the request id to quote.

    Errors that never reach the application (Serve's backpressure 503, HAProxy's own
    answers) are plain text or HTML: README, "Operating it".
    """

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "detail": "request body is larger than the limit of 4194304 bytes",
                    "request_id": "3f9a0c1e-5b7d-4e2a-9c61-0d8e4b2a7f10",
                },
                {
                    "detail": [
                        {"type": "missing", "loc": ["body", "text"], "msg": "Field required"}
                    ],
                    "request_id": "b41c7f0e-2d3a-4c8b-a1e9-6f5d0c2b9e47",
                },
            ]
        }
    )

    detail: Any = Field(description="What is wrong with the request (a message or a list).")
    request_id: str | None = Field(
        None,
        description="The X-Request-ID of the request (also in the response header): the key to "
        "its log lines.",
    )


# -- bulk jobs (POST /v1/jobs) -----------------------------------------------------------------

JobState = Literal["PENDING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"]
ResultField = Literal["text", "char_count", "word_count", "unique_words", "word_counts"]


class JobRequest(BaseModel):
    """Files on storage (local paths under the allowed roots, or s3:// URIs) in, shards out."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "inputs": ["/data/reviews/2024-*/*.json"],
                    "output": "/data/out/reviews-2024",
                    "options": {"clean": {"urls": "mask"}, "count": {"stopwords": ["en", "zh"]}},
                },
                {
                    "inputs": ["s3://reviews/raw/"],
                    "output": "s3://reviews/cleaned/run-7",
                    "output_format": "parquet",
                    "include": ["text", "word_count"],
                    "overwrite": True,
                },
            ]
        },
    )

    inputs: list[str] = Field(
        min_length=1,
        description="Absolute paths, directories (their supported files, recursively) or globs "
        "(`*`, `?`, `[...]` within a name, `**` across directories); local or s3://.",
    )
    output: str = Field(description="A directory or s3:// prefix for the shards; empty or new.")
    format: Literal["auto", "json", "ndjson", "csv", "parquet"] = Field(
        "auto",
        description="auto: by extension (.json, .jsonl/.ndjson, .csv, .parquet, each "
        "optionally .gz).",
    )
    text_field: str = "text"
    id_field: str = "id"
    options: BatchOptions = Field(default_factory=lambda: BatchOptions())
    output_format: Literal["ndjson", "parquet"] = "ndjson"
    include: list[ResultField] | None = Field(
        None,
        description="Per-record result fields; null: all, []: none (summary and error rows only).",
    )
    top_words: int = Field(10, ge=0, le=10_000)
    overwrite: bool = Field(
        False, description="Replace an earlier run's shards, summary.json and _SUCCESS."
    )


class JobProgress(BaseModel):
    files_total: int
    files_done: int
    records: int
    failed: int
    bytes: int
    bytes_total: int
    elapsed_s: float
    mb_per_s: float
    eta_s: float | None


class Job(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "3f2a9c1e7b4d4e0a",
                    "state": "SUCCEEDED",
                    "created": 1796201234.5,
                    "progress": {
                        "files_total": 2000,
                        "files_done": 2000,
                        "records": 2000,
                        "failed": 0,
                        "bytes": 551000000,
                        "bytes_total": 551000000,
                        "elapsed_s": 41.2,
                        "mb_per_s": 13.4,
                        "eta_s": 0.0,
                    },
                    "summary": {
                        "records": 2000,
                        "ok": 2000,
                        "failed": 0,
                        "total_chars": 160000000,
                        "total_words": 30000000,
                        "unique_words": 81234,
                        "top_words": [["the", 812345], ["物流", 40211]],
                    },
                    "output": "/data/out/reviews-2024",
                    "error": None,
                    "request": {"inputs": ["/data/reviews/2024-*/*.json"], "output": "..."},
                }
            ]
        }
    )

    id: str
    state: JobState
    created: float = Field(description="Unix time of the submission.")
    progress: JobProgress
    summary: BatchSummary | None = Field(
        None, description="When SUCCEEDED: the same object as /v1/batch's summary line."
    )
    output: str = Field(description="Where the shards, summary.json and _SUCCESS go.")
    error: str | None = None
    request: dict[str, Any] = Field(description="The request as accepted, defaults filled in.")


class JobList(BaseModel):
    jobs: list[Job]
