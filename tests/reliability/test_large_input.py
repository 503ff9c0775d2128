"""Large or pathological but valid input is served, not failed with a 500 or a 504.

Replicas talk gRPC to each other (RAY_SERVE_THROUGHPUT_OPTIMIZED), and Serve's replica gRPC
channels refuse messages over 4 MiB unless RAY_SERVE_REPLICA_GRPC_MAX_MESSAGE_LENGTH says
otherwise. One handle call carries a whole group of real-time requests or a bulk chunk with a
record of up to max_record_bytes, so a call's message easily passes 4 MiB.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
import orjson
import pytest

pytestmark = pytest.mark.reliability


def test_a_text_near_the_body_limit_with_a_huge_word_is_answered(client: httpx.Client) -> None:
    # The answer repeats the 3.9 MB word twice (text and word_counts): ~7.8 MB in one message.
    text = "a" * 3_900_000
    response = client.post("/v1/analyze", json={"text": text})
    assert response.status_code == 200, response.text[:300]
    assert response.json()["word_counts"] == {text: 1}


def test_concurrent_medium_texts_grouped_into_one_call_are_answered(service_url: str) -> None:
    # 60 x 216 KB arriving together become one or two handle calls of several MB.
    text = "lorem ipsum dolor sit amet " * 8000

    async def burst() -> Counter[int]:
        limits = httpx.Limits(max_connections=60)
        async with httpx.AsyncClient(base_url=service_url, timeout=120, limits=limits) as http:
            responses = await asyncio.gather(
                *(http.post("/v1/clean", json={"text": f"{i} {text}"}) for i in range(60))
            )
        return Counter(r.status_code for r in responses)

    assert asyncio.run(burst()) == {200: 60}


def test_a_batch_record_of_5_mb_is_analyzed(client: httpx.Client) -> None:
    body = orjson.dumps({"id": "big", "text": "word " * 1_000_000}) + b"\n"
    response = client.post(
        "/v1/batch",
        content=body,
        headers={"content-type": "application/x-ndjson"},
        params={"include": "word_count"},
    )
    assert response.status_code == 200, response.text[:300]
    lines = [orjson.loads(line) for line in response.content.splitlines()]
    assert lines[0] == {"index": 0, "source": None, "id": "big", "word_count": 1_000_000}
    assert lines[-1]["summary"]["ok"] == 1


@pytest.mark.parametrize(
    ("text", "max_repeat"),
    [
        ("abc", 143_237_866),  # found by Schemathesis: a "\\1" * N template, minutes to build
        (("a" * 10_000 + "b") * 300, 10_000),  # runs just under N: N^2 per run for "(.)\\1{N,}"
    ],
    ids=["tiny text, huge max_repeat", "runs just under max_repeat"],
)
def test_max_repeat_costs_time_in_the_text_not_in_the_limit(
    client: httpx.Client, text: str, max_repeat: int
) -> None:
    response = client.post("/v1/clean", json={"text": text, "options": {"max_repeat": max_repeat}})
    assert response.status_code == 200, response.text[:300]
    assert response.json()["text"] == text
