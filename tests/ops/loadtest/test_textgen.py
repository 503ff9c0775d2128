import json
import re

import pytest

from serve_app.ops.loadtest.textgen import LONG_BYTES, SHORT_CHARS, ReviewGenerator, ndjson_records

HAN = re.compile(r"[\u4e00-\u9fff]")


def test_the_same_seed_gives_the_same_texts_in_the_same_order() -> None:
    first, second = ReviewGenerator(seed=42), ReviewGenerator(seed=42)
    assert [first.short() for _ in range(50)] == [second.short() for _ in range(50)]
    assert first.long() == second.long()


def test_different_seeds_give_different_texts() -> None:
    assert ReviewGenerator(1).short() != ReviewGenerator(2).short()


def test_short_reviews_are_20_to_400_characters() -> None:
    gen = ReviewGenerator(3)
    lengths = [len(gen.short()) for _ in range(500)]
    assert min(lengths) >= SHORT_CHARS[0]
    assert max(lengths) <= SHORT_CHARS[1]
    assert max(lengths) - min(lengths) > 200  # spread over the range, not one size


def test_long_reviews_are_20_to_200_kb_of_utf8() -> None:
    gen = ReviewGenerator(4)
    sizes = [len(gen.long().encode("utf-8")) for _ in range(5)]
    # A review stops at the paragraph that reaches its drawn size, so it may pass it a little.
    assert all(LONG_BYTES[0] <= size <= LONG_BYTES[1] + 10_000 for size in sizes)


def test_reviews_carry_what_real_ones_do() -> None:
    gen = ReviewGenerator(5)
    corpus = "".join(gen.short() for _ in range(400))
    for needle in ("<br/>", "<b>", "&amp;", "https://", "👍", "\u200d", "\n"):
        assert needle in corpus, needle
    assert HAN.search(corpus)
    assert re.search("[\uff10-\uff19]", corpus), "full-width digits"


@pytest.mark.parametrize("language", ["en", "zh"])
def test_a_language_can_be_asked_for(language: str) -> None:
    gen = ReviewGenerator(6)
    texts = [gen.short(language) for _ in range(100)]  # type: ignore[arg-type]
    with_han = sum(bool(HAN.search(text)) for text in texts)
    assert with_han == (0 if language == "en" else len(texts))


def test_ndjson_records_make_a_body_of_at_least_the_size_asked() -> None:
    body = ndjson_records(300_000, seed=7)
    assert len(body) >= 300_000
    assert body.endswith(b"\n")
    lines = body.split(b"\n")[:-1]
    records = [json.loads(line) for line in lines]
    assert len(records) == body.count(b"\n")
    assert [r["id"] for r in records] == [f"r{i:07d}" for i in range(len(records))]
    assert all(isinstance(r["text"], str) and r["text"] for r in records)


def test_ndjson_records_are_deterministic() -> None:
    assert ndjson_records(50_000, seed=8) == ndjson_records(50_000, seed=8)
    assert ndjson_records(50_000, seed=8) != ndjson_records(50_000, seed=9)
