from __future__ import annotations

import orjson
import pytest

from serve_app.core.analysis.boilerplate import is_boilerplate
from serve_app.core.analysis.dedup import DedupOptions, DuplicateIndex, signature
from serve_app.core.pipeline import BulkOptions, analyze_records
from serve_app.core.records import ParseOptions, parser_for

LONG = "质量很好，物流很快，包装也不错，下次还会再来买的"


def first_of(texts: list[str], **kwargs: float) -> list[int | None]:
    index = DuplicateIndex(**kwargs)  # type: ignore[arg-type]
    return [index.check(i, signature(text)) for i, text in enumerate(texts)]


def test_exact_duplicates_ignore_case_punctuation_and_spaces() -> None:
    assert first_of(["Great, GREAT!", "great great", "好评", "好评！！", "", "！！"]) == [
        None,
        0,
        None,
        2,
        None,
        None,  # no letter or digit: never a duplicate
    ]


def test_near_duplicates_point_at_the_earliest_similar_record() -> None:
    texts = [
        LONG,
        "完全不同的一条评论内容，说的是别的事情",
        LONG[:-1] + "！",
        "This product is great, would buy again for sure",
        "This product is great, would buy it again for sure!",
        "This phone broke after two days, do not buy it",
    ]
    assert first_of(texts) == [None, None, 0, None, 3, None]


def test_a_higher_threshold_keeps_looser_copies_apart() -> None:
    texts = [LONG, LONG.replace("很快", "很慢").replace("不错", "一般")]
    assert first_of(texts, threshold=0.4) == [None, 0]  # Jaccard of their 3-grams: 0.46
    assert first_of(texts, threshold=0.95) == [None, None]


def test_signatures_are_the_same_in_every_process() -> None:
    # Replicas compute them apart: a per-process seed (Python's str hash) would break this.
    assert signature(LONG).minhash is not None
    assert signature(LONG) == signature(LONG)
    assert signature("good").minhash is None  # short keys: exact only
    # Computed once and written down: a value that changed per process would differ here.
    assert signature(LONG).exact.hex() == "e69e8ad7f1a131ff"
    assert signature(LONG).minhash[:8].hex() == "486e12027b2efc09"  # type: ignore[index]


def reference_minhash(text: str) -> bytes | None:
    """The MinHash as first written: a set of 3-grams, BLAKE2b each, (a * h + b) % p."""
    import hashlib

    import numpy as np

    from serve_app.core.analysis import dedup

    key = dedup._key(text)
    if len(key) < dedup.MIN_NEAR_CHARS:
        return None
    shingles = {key[i : i + 3] for i in range(len(key) - 2)}
    hashes = np.array(
        [
            int.from_bytes(hashlib.blake2b(s.encode(), digest_size=8).digest(), "little")
            & 0xFFFFFFFF
            for s in shingles
        ],
        dtype=np.uint64,
    )
    values = ((hashes[:, None] * dedup._A[None, :] + dedup._B[None, :]) % dedup._PRIME) & 0xFFFFFFFF
    return bytes(values.min(axis=0).astype(np.uint32).tobytes())


def test_signing_many_texts_at_once_gives_each_ones_signature() -> None:
    import random

    from serve_app.core.analysis import dedup

    rng = random.Random(4)
    letters = "abcdefghijklmnopqrstuvwxyz0123456789质量很好物流快包装不错一般差评"
    texts = ["", "!!", "good", LONG, "Great, GREAT!"]
    texts += ["".join(rng.choice(letters) for _ in range(rng.randint(1, 300))) for _ in range(400)]
    # longer than a window of hashes, alone and between short ones
    texts.insert(7, "".join(rng.choice(letters) for _ in range(60_000)))
    texts.append("".join(rng.choice(letters) for _ in range(40_000)))
    texts.append(
        "😀"
        + "".join(rng.choice(letters + "\U0001f600é\U00020000\U0001d49c") for _ in range(5_000))
    )
    assert sum(len(t) >= dedup.LONG_KEY for t in texts) == 3
    dedup._SHINGLE_CACHE.clear()
    together = dedup.signatures(texts)
    assert [s.minhash for s in together] == [reference_minhash(t) for t in texts]
    assert together == [dedup.signature(t) for t in texts]
    assert dedup.signatures([]) == []


def test_past_its_capacity_the_index_still_checks_but_stops_growing() -> None:
    index = DuplicateIndex(capacity=1, exact_capacity=2)
    a, b = LONG, "完全不同的一条评论内容，说的是别的事情"
    assert index.check(0, signature(a)) is None
    assert index.check(1, signature(b)) is None and index.full
    assert index.check(2, signature(a)) == 0
    assert index.check(3, signature(b)) == 1  # its exact key still fitted
    assert index.check(4, signature("another review, quite different")) is None
    assert index.check(5, signature("another review, quite different")) is None


@pytest.mark.parametrize(
    "text",
    [
        "此用户未填写评价内容",
        "默认好评！",
        "默认好评 默认好评",
        "该用户未做出评价，系统默认好评",
        "买家未及时做出评价，系统默认好评",
        "This user didn't fill in a review.",
    ],
)
def test_default_reviews_are_boilerplate(text: str) -> None:
    assert is_boilerplate(text)


@pytest.mark.parametrize(
    "text", ["好评", "很好，默认好评也给了", "默认好评，但是物流太慢", "", "ok"]
)
def test_real_reviews_are_not(text: str) -> None:
    assert not is_boilerplate(text)


def parse(texts: list[str]) -> list:  # type: ignore[type-arg]
    parser = parser_for("application/x-ndjson", ParseOptions())
    body = b"".join(orjson.dumps({"text": t}) + b"\n" for t in texts)
    return [*parser.feed(body), *parser.close()]


TEXTS = ["物流很快 good", "此用户未填写评价内容", "物流很快 GOOD!", "质量一般"]


def test_the_pipeline_flags_counts_and_can_leave_them_out() -> None:
    flags = DedupOptions(duplicates=True, boilerplate=True)
    analysis = analyze_records(parse(TEXTS), BulkOptions(dedup=flags))
    assert [(r.get("duplicate_of"), r.get("boilerplate")) for r in analysis.rows] == [
        (None, None),
        (None, True),
        (0, None),
        (None, None),
    ]
    summary = analysis.summary.to_dict()
    assert summary["duplicates"] == 1 and summary["boilerplate"] == 1
    kept = analyze_records(
        parse(TEXTS), BulkOptions(dedup=DedupOptions(True, True, exclude_from_counts=True))
    ).summary.to_dict()
    only_first_and_last = analyze_records(parse([TEXTS[0], TEXTS[3]]), BulkOptions()).summary
    assert kept["total_words"] == only_first_and_last.total_words
    assert kept["top_words"] == only_first_and_last.to_dict()["top_words"]
    assert kept["records"] == 4


def test_one_index_finds_duplicates_across_calls() -> None:
    index = DuplicateIndex()
    options = BulkOptions(dedup=DedupOptions(duplicates=True))
    records = parse(TEXTS)
    analyze_records(records[:2], options, duplicates=index)
    later = analyze_records(records[2:], options, duplicates=index)
    assert later.rows[0]["duplicate_of"] == 0


def test_without_the_options_nothing_is_added() -> None:
    analysis = analyze_records(parse(TEXTS), BulkOptions())
    assert not any("duplicate_of" in r or "boilerplate" in r for r in analysis.rows)
    assert "duplicates" not in analysis.summary.to_dict()


def test_a_summary_only_upload_finds_the_duplicates_of_one_with_lines() -> None:
    """/v1/batch with include=none: chunks have no lines, so the stream's numbering stays at 0
    for every chunk; the index numbers the records itself (near duplicates were missed when a
    later chunk's record took an earlier one's index)."""
    from serve_app.core.analysis.dedup import mark_duplicates
    from serve_app.core.records import Record
    from serve_app.core.summary import Summary

    a = "the delivery was fast and the packaging was intact, great value for money overall"
    b = "completely different review about a phone whose battery died after only two days"
    chunks = [[a, "x1", "x2"], [b, "y1", "y2"], [a.replace("intact", "intakt"), b + "!"]]

    def duplicates(include: frozenset[str] | None) -> tuple[int | None, list[bytes]]:
        flags = DedupOptions(duplicates=True)
        options = BulkOptions(include=include, dedup=flags, defer_duplicates=True)
        index = DuplicateIndex()
        total, out, number = Summary(), [], 0
        for texts in chunks:
            records = [Record(0, None, None, t, None, len(t)) for t in texts]
            analysis = analyze_records(records, options)
            lines = b"\n".join(orjson.dumps(row) for row in analysis.rows)
            assert analysis.signatures is not None
            first = number if lines else 0  # the stream numbers lines; there are none here
            lines = mark_duplicates(
                lines, first, analysis.signatures, None, index, analysis.summary
            )
            number += len(texts)
            total.merge(analysis.summary)
            out.append(lines)
        return total.duplicates, out

    with_lines, lines = duplicates(None)
    assert with_lines == 2
    assert b'"duplicate_of":0' in lines[2] and b'"duplicate_of":3' in lines[2]
    assert duplicates(frozenset()) == (2, [b"", b"", b""])
