"""/v1/batch end to end: formats, bad records, ordering, seed compatibility, a replica killed."""

import gzip
import json
import random
import subprocess
import sys
import threading
import time
import zlib
from collections import Counter
from collections.abc import Iterator

import httpx
import orjson
import pytest

from serve_app.ops.launcher import LaunchOptions, load_config
from tests.support import Service, multipart

pytestmark = pytest.mark.serve

SEED_OPTIONS = {
    "clean": {"preset": "minimal"},
    "count": {"tokenizer": "whitespace", "lowercase": False},
}
WORDS = ["great", "value", "物流", "很快", "包装", "fast", "👍", "<b>ok</b>", "café", "不错", "a"]


def lines_of(response: httpx.Response) -> list[dict[str, object]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/x-ndjson")
    return [orjson.loads(line) for line in response.content.splitlines() if line]


def post_batch(
    client: httpx.Client, body: bytes, content_type: str, **params: object
) -> list[dict[str, object]]:
    response = client.post(
        "/v1/batch", content=body, headers={"content-type": content_type}, params=params
    )
    return lines_of(response)


def review(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)) + ("\n" if rng.random() < 0.3 else "")


def seed_script(texts: list[str]) -> tuple[list[dict[str, object]], dict[str, object]]:
    """The original single-process script, per file and in aggregate."""
    per_file, total_chars, words = [], 0, Counter[str]()
    for text in texts:
        cleaned = text.replace("\n", " ").strip()
        counts: dict[str, int] = {}
        for word in cleaned.split():
            counts[word] = counts.get(word, 0) + 1
        per_file.append({"text": cleaned, "char_count": len(cleaned), "word_counts": counts})
        total_chars += len(cleaned)
        words.update(cleaned.split())
    return per_file, {
        "total_chars": total_chars,
        "unique_words": len(words),
        "top_words": [list(pair) for pair in words.most_common(10)],
    }


def test_ndjson_with_bad_records_mixed_in(client: httpx.Client) -> None:
    body = b"\n".join(
        [
            b'{"id": "a", "text": "good one"}',
            b"{not json",
            b'{"id": "c"}',
            b'{"id": "d", "text": 5}',
            b'{"id": "e", "text": "caf\xc3"}',
            b'{"id": "f", "text": "bad \\ud800 escape"}',
            b'{"id": "g", "text": "good two"}',
        ]
    )
    lines = post_batch(client, body, "application/x-ndjson")
    assert [line["index"] for line in lines[:-1]] == list(range(7))
    assert [("error" in line) for line in lines[:-1]] == [
        False,
        True,
        True,
        True,
        True,
        True,
        False,
    ]
    for line in lines[1:-2]:
        assert isinstance(line["error"], str) and line["error"]
    assert lines[-1]["summary"]["records"] == 7
    assert lines[-1]["summary"]["ok"] == 2 and lines[-1]["summary"]["failed"] == 5


def test_json_array_and_single_object(client: httpx.Client) -> None:
    array = post_batch(client, b'[{"text": "one two"}, {"text": "three"}, 7]', "application/json")
    assert [line.get("text") for line in array[:-1]] == ["one two", "three", None]
    assert "error" in array[2]
    single = post_batch(client, b'{"id": 1, "text": "solo"}', "application/json")
    assert single[0]["id"] == 1 and single[0]["text"] == "solo"


def test_csv_with_custom_fields(client: httpx.Client) -> None:
    body = b'rid,body\n1,"quoted, with\nnewline"\n2,plain\n'
    lines = post_batch(client, body, "text/csv", text_field="body", id_field="rid")
    assert [(line["id"], line["text"]) for line in lines[:-1]] == [
        ("1", "quoted, with newline"),
        ("2", "plain"),
    ]


def test_csv_without_the_text_column_is_a_400_naming_it(client: httpx.Client) -> None:
    response = client.post("/v1/batch", content=b"a,b\n1,2\n", headers={"content-type": "text/csv"})
    assert response.status_code == 400
    assert "text" in response.json()["detail"]


def test_multipart_files_of_every_format_with_gzip(client: httpx.Client) -> None:
    body, content_type = multipart(
        [
            ("one.json", b'{"text": "from json"}'),
            ("many.json", b'[{"text": "a1"}, {"text": "a2"}]'),
            ("lines.jsonl", b'{"text": "l1"}\n{"text": "l2"}\n'),
            ("table.csv", b"text\nc1\n"),
            ("zipped.ndjson.gz", gzip.compress(b'{"text": "g1"}\n')),
            ("notes.txt", b"what is this"),
        ]
    )
    lines = post_batch(client, body, content_type)
    got = [(line["source"], line.get("text")) for line in lines[:-1]]
    assert got == [
        ("one.json", "from json"),
        ("many.json", "a1"),
        ("many.json", "a2"),
        ("lines.jsonl", "l1"),
        ("lines.jsonl", "l2"),
        ("table.csv", "c1"),
        ("zipped.ndjson.gz", "g1"),
        ("notes.txt", None),
    ]
    assert "error" in lines[-2]
    assert [line["index"] for line in lines[:-1]] == list(range(8))


def test_a_gzip_encoded_body(client: httpx.Client) -> None:
    body = gzip.compress(b'{"text": "zipped body"}\n')
    response = client.post(
        "/v1/batch",
        content=body,
        headers={"content-type": "application/x-ndjson", "content-encoding": "gzip"},
    )
    assert lines_of(response)[0]["text"] == "zipped body"


def test_an_empty_upload_returns_an_empty_summary(client: httpx.Client) -> None:
    lines = post_batch(client, b"", "application/x-ndjson")
    assert lines == [
        {
            "summary": {
                "records": 0,
                "ok": 0,
                "failed": 0,
                "total_chars": 0,
                "total_words": 0,
                "unique_words": 0,
                "top_words": [],
            },
            "nodes": {},
        }
    ]


def test_include_selects_fields_and_none_returns_only_the_summary(client: httpx.Client) -> None:
    body = b'{"text": "x y"}\n{"text": "z"}\n'
    some = post_batch(client, body, "application/x-ndjson", include="char_count,word_count")
    assert set(some[0]) == {"index", "source", "id", "char_count", "word_count"}
    none = post_batch(client, body, "application/x-ndjson", include="none", top_words=1)
    assert len(none) == 1 and none[0]["summary"]["records"] == 2
    assert len(none[0]["summary"]["top_words"]) == 1


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"options": '{"clean": {"colour": 1}}'}, 422),
        ({"options": "not json"}, 422),
        ({"include": "text,secrets"}, 422),
        ({"top_words": "-1"}, 422),
    ],
)
def test_bad_query_parameters(client: httpx.Client, params: dict[str, str], status: int) -> None:
    response = client.post(
        "/v1/batch",
        content=b'{"text": "x"}',
        headers={"content-type": "application/x-ndjson"},
        params=params,
    )
    assert response.status_code == status
    assert "detail" in response.json()


def test_an_unsupported_content_type_is_a_415(client: httpx.Client) -> None:
    response = client.post("/v1/batch", content=b"x", headers={"content-type": "image/png"})
    assert response.status_code == 415


def test_seed_mode_equals_the_original_script_on_generated_files(client: httpx.Client) -> None:
    rng = random.Random(7)
    texts = [review(rng, rng.randint(0, 400)) for _ in range(60)]
    body, content_type = multipart(
        [(f"r{i}.json", json.dumps({"text": t}).encode()) for i, t in enumerate(texts)]
    )
    lines = post_batch(client, body, content_type, options=json.dumps(SEED_OPTIONS))
    per_file, aggregate = seed_script(texts)
    for line, expected in zip(lines[:-1], per_file, strict=True):
        assert line["text"] == expected["text"]
        assert line["char_count"] == expected["char_count"]
        assert list(line["word_counts"].items()) == list(expected["word_counts"].items())
    summary = lines[-1]["summary"]
    assert {key: summary[key] for key in aggregate} == aggregate


# The chunk size of the service under test, read as `cleanserve up` reads its config: the
# uploads below are a few chunks long, so that several are in flight at once.
CHUNK_BYTES = int(load_config(LaunchOptions())["applications"][0]["args"]["batch_chunk_bytes"])


def test_many_chunks_come_back_in_input_order(client: httpx.Client) -> None:
    # ~3 chunks in flight at once, on more than one replica if scaled.
    rng = random.Random(3)
    records: list[dict[str, object]] = []
    size = 0
    while size < 3 * CHUNK_BYTES:
        records.append({"id": len(records), "text": review(rng, rng.randint(1, 3000))})
        size += len(orjson.dumps(records[-1])) + 1
    body = b"\n".join(orjson.dumps(r) for r in records)
    lines = post_batch(client, body, "application/x-ndjson", include="char_count")
    assert [line["id"] for line in lines[:-1]] == list(range(len(records)))


def kill_one_replica(service: Service, deployment: str) -> subprocess.CompletedProcess[str]:
    script = f"""
import ray
ray.init(address={service.ray_address!r}, namespace="serve", log_to_driver=False)
# The GCS of this cluster, not the state API, which looks for "the" local cluster and refuses
# when several run on one machine.
names = [
    actor["name"]
    for actor in ray.util.list_named_actors(all_namespaces=True)
    if "cleanserve#{deployment}#" in actor["name"]
]
ray.kill(ray.get_actor(names[0], namespace="serve"), no_restart=True)
print("killed", names[0])
"""
    return subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        env={**__import__("os").environ, "RAY_AUTH_MODE": "token"},
    )


def test_a_chunk_is_retried_when_its_replica_is_killed(service: Service) -> None:
    if service.ray_address is None:
        pytest.skip("the Ray address of the service under test is unknown")
    rng = random.Random(11)
    n = 6000 * CHUNK_BYTES // (1 << 20)  # ~3.6 chunks: the kill finds some in flight

    def body() -> Iterator[bytes]:
        for i in range(n):
            yield orjson.dumps({"id": i, "text": review(rng, 300)}) + b"\n"

    killed: list[subprocess.CompletedProcess[str]] = []
    seen: list[int] = []
    summary: dict[str, object] = {}
    with httpx.Client(base_url=service.url, timeout=300) as client:
        with client.stream(
            "POST",
            "/v1/batch",
            content=body(),
            headers={"content-type": "application/x-ndjson"},
            params={"include": "char_count"},
        ) as response:
            assert response.status_code == 200
            killer: threading.Thread | None = None
            for line in response.iter_lines():
                record = orjson.loads(line)
                if "summary" in record:
                    summary = record["summary"]
                    continue
                seen.append(record["index"])
                if killer is None and len(seen) >= 200:
                    killer = threading.Thread(
                        target=lambda: killed.append(kill_one_replica(service, "WordCounter"))
                    )
                    killer.start()
            assert killer is not None
            killer.join()
    assert killed and killed[0].returncode == 0, killed[0].stderr[-2000:] if killed else "no kill"
    assert seen == list(range(n))
    assert summary["records"] == n and summary["failed"] == 0
    # The service recovers: Serve starts a new replica in place of the killed one.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if httpx.get(f"{service.url}/healthz", timeout=10).status_code == 200:
            break
        time.sleep(1)
    else:
        pytest.fail("the service did not report healthy again within 60 s")


def test_a_small_gzip_of_many_blank_lines_is_answered(client: httpx.Client) -> None:
    """200 KB that inflate to 200 MB of blank lines: once a dropped connection after minutes
    of one busy core, now framed in C and skipped."""
    deflate = zlib.compressobj(9, zlib.DEFLATED, 31)
    blank = b"".join(deflate.compress(b"\n" * (1 << 20)) for _ in range(200))
    body = blank + deflate.compress(b'{"text": "last"}\n') + deflate.flush()
    response = client.post(
        "/v1/batch",
        content=body,
        headers={"content-type": "application/x-ndjson", "content-encoding": "gzip"},
    )
    lines = lines_of(response)
    assert lines[0]["text"] == "last" and lines[0]["index"] == 0
    assert lines[-1]["summary"]["records"] == 1  # type: ignore[index]
