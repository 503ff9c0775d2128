"""Uploads whose exact /v1/batch answers are pinned in tests/service/golden/.

Texts hold no HTML, URLs or emoji: their cleaning is being changed elsewhere, and these files
pin how uploads are framed, parsed, numbered and summarized, not how text is cleaned.
Regenerate (only when an intended change of output lands):

    PYTHONPATH=$PWD python -m tests.service.batch_golden            # starts its own service
    PYTHONPATH=$PWD python -m tests.service.batch_golden --url URL  # or uses a running one
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import orjson

from tests.support import multipart, start_service

GOLDEN = Path(__file__).parent / "golden"
SEED_OPTIONS = {
    "clean": {"preset": "minimal"},
    "count": {"tokenizer": "whitespace", "lowercase": False},
}
_WORDS = [
    "great", "value", "Great", "物流", "很快", "包装", "fast", "café", "不错", "a",
    "delivery,", "质量", "很好", "Works", "well.", "推荐", "购买", "the", "box", "!",
]  # fmt: skip


@dataclass(frozen=True)
class Upload:
    name: str
    body: bytes
    content_type: str
    params: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)


def _text(rng: random.Random) -> str:
    words = [rng.choice(_WORDS) for _ in range(rng.randint(1, 30))]
    return " ".join(words) + ("\n 第二行 second line" if rng.random() < 0.2 else "")


def _records(seed: int, n: int) -> list[dict[str, object]]:
    rng = random.Random(seed)
    return [{"id": i if i % 3 else f"r{i}", "text": _text(rng)} for i in range(n)]


def _ndjson(records: list[dict[str, object]]) -> bytes:
    return b"".join(orjson.dumps(r) + b"\n" for r in records)


def _csv(records: list[dict[str, object]]) -> bytes:
    def quote(value: object) -> str:
        text = str(value)
        return '"' + text.replace('"', '""') + '"' if any(c in text for c in ',"\n') else text

    rows = ["id,text,stars"] + [f"{quote(r['id'])},{quote(r['text'])},{i % 5}" for i, r in
                                enumerate(records)]  # fmt: skip
    return ("\n".join(rows) + "\n").encode()


_BAD_NDJSON = b"\n".join(
    [
        b'{"id": "a", "text": "good one"}',
        b"{not json",
        b"",
        b'{"id": "c"}',
        b"   ",
        b'{"id": "d", "text": 5}',
        b'{"id": "e", "text": "caf\xc3"}',
        b'{"id": "f", "text": "bad \\ud800 escape"}',
        b"[1, 2]",
        b'{"id": {"x": 1}, "text": "object id"}',
        b'{"id": "g", "text": "good two"}',
    ]
)


def uploads() -> list[Upload]:
    many = _records(1, 400)
    ndjson = "application/x-ndjson"
    seed = {"options": json.dumps(SEED_OPTIONS)}
    form, form_type = multipart(
        [
            ("one.json", orjson.dumps(_records(2, 1)[0])),
            ("many.json", orjson.dumps(_records(3, 40))),
            ("lines.jsonl", _ndjson(_records(4, 30))),
            ("table.csv", _csv(_records(5, 20))),
            ("zipped.ndjson.gz", gzip.compress(_ndjson(_records(6, 25)))),
            ("array.json.gz", gzip.compress(orjson.dumps(_records(7, 15)))),
            ("notes.txt", b"what is this"),
            ("broken.json", b'[{"text": "before"}, {"text": "bad" "x"}, {"text": "after"}]'),
            ("bad.jsonl", _BAD_NDJSON),
            ("nocolumn.csv", b"a,b\n1,2\n"),
        ]
    )
    return [
        Upload("ndjson", _ndjson(many), ndjson),
        Upload("ndjson_seed", _ndjson(many), ndjson, seed),
        Upload("ndjson_bad_records", _BAD_NDJSON, ndjson),
        Upload("ndjson_include_some", _ndjson(many[:50]), ndjson, {"include": "text,word_count"}),
        Upload("ndjson_include_none", _ndjson(many), ndjson, {"include": "none", "top_words": "3"}),
        Upload("ndjson_top_words", _ndjson(many), ndjson, {"top_words": "25"}),
        Upload(
            "ndjson_gzip_encoded",
            gzip.compress(_ndjson(many)),
            ndjson,
            headers={"content-encoding": "gzip"},
        ),
        Upload("json_array", orjson.dumps(many), "application/json"),
        Upload(
            "json_array_bad_records",
            b'[{"text": "one two"}, 7, {"id": 2}, {"text": 3}, "s", {"text": "three"}]',
            "application/json",
        ),
        Upload("json_object", orjson.dumps(many[0]), "application/json", seed),
        Upload("csv", _csv(many), "text/csv"),
        Upload(
            "csv_custom_fields",
            b'rid,body\n1,"quoted, with\nnewline"\n2,plain\n3,"too",many\n\n4,last\n',
            "text/csv",
            {"text_field": "body", "id_field": "rid"},
        ),
        Upload("multipart", form, form_type),
        Upload("multipart_seed_summary_only", form, form_type, {**seed, "include": "none"}),
    ]


def normalize(answer: bytes) -> bytes:
    """The answer without what depends on the machine: the node ids in the last line."""
    lines = answer.split(b"\n")
    assert lines[-1] == b"", "an answer ends with a newline"
    last = orjson.loads(lines[-2])
    if "nodes" in last:
        last["nodes"] = {}
        lines[-2] = orjson.dumps(last)
    return b"\n".join(lines)


def post(client: httpx.Client, upload: Upload) -> httpx.Response:
    headers = {"content-type": upload.content_type, **upload.headers}
    return client.post("/v1/batch", content=upload.body, headers=headers, params=upload.params)


def capture(url: str) -> None:
    GOLDEN.mkdir(exist_ok=True)
    with httpx.Client(base_url=url, timeout=120) as client:
        for upload in uploads():
            response = post(client, upload)
            response.raise_for_status()
            (GOLDEN / f"{upload.name}.ndjson").write_bytes(normalize(response.content))
            print(f"{upload.name}: {len(response.content)} bytes", file=sys.stderr)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", help="a running service; default: start one")
    args = parser.parse_args(argv)
    if args.url:
        capture(args.url)
        return 0
    with tempfile.TemporaryDirectory() as tmp, start_service(Path(tmp)) as service:
        capture(service.url)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
