"""The deployment classes called directly, without Ray: each method is the core over a list.

The service tests (test_ingress, test_batch_api) cover the same methods through Serve."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import orjson
import pytest

from serve_app.core import cleaning, counting, packed_summary, summary_parts, uploads
from serve_app.core.pipeline import BulkOptions
from serve_app.core.records import ParseOptions, framer_for
from serve_app.core.summary import Summary
from serve_app.service.deployments import TextCleaner, WordCounter, check_user_config

TEXTS = ["<b>Great</b>  value!! 物流很快", "  caf\u00c3\u00a9 ok  ", ""]


@pytest.fixture(scope="module")
def cleaner() -> Any:
    return TextCleaner.func_or_class()  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def counter() -> Any:
    return WordCounter.func_or_class()  # type: ignore[attr-defined]


def test_clean_is_the_core_per_text(cleaner: Any) -> None:
    options = cleaning.CleanOptions()
    expected = [cleaning.clean(text, options) for text in TEXTS]
    assert asyncio.run(cleaner.clean(TEXTS, options)) == expected


def test_options_per_text_apply_to_their_own_text(cleaner: Any) -> None:
    keep_html = cleaning.CleanOptions(strip_html=False)
    options = [keep_html, cleaning.CleanOptions(), keep_html]
    assert asyncio.run(cleaner.clean(TEXTS, options)) == [
        cleaning.clean(text, opts) for text, opts in zip(TEXTS, options, strict=True)
    ]


def test_a_wrong_number_of_option_sets_is_refused(cleaner: Any) -> None:
    with pytest.raises(ValueError, match="2 option sets for 3 texts"):
        asyncio.run(cleaner.clean(TEXTS, [cleaning.CleanOptions()] * 2))


def test_analyze_cleans_then_counts_in_one_call(counter: Any) -> None:
    clean_options, count_options = cleaning.CleanOptions(), counting.CountOptions()
    results = asyncio.run(counter.clean_and_count(TEXTS, clean_options, count_options))
    for text, result in zip(TEXTS, results, strict=True):
        cleaned = cleaning.clean(text, clean_options)
        counts = counting.count(cleaned, count_options)
        assert result == {
            "text": cleaned,
            "char_count": len(cleaned),
            "word_count": counts.word_count,
            "unique_words": counts.unique_words,
            "word_counts": counts.word_counts,
        }


def test_count_matches_analyze_on_cleaned_text(counter: Any) -> None:
    cleaned = [cleaning.clean(text) for text in TEXTS]
    counts = asyncio.run(counter.count(cleaned, counting.CountOptions()))
    analyzed = asyncio.run(
        counter.clean_and_count(TEXTS, cleaning.CleanOptions(), counting.CountOptions())
    )
    assert counts == [
        {k: row[k] for k in ("word_count", "unique_words", "word_counts")} for row in analyzed
    ]


def test_analyze_chunk_parses_cleans_counts_and_encodes_raw_frames(counter: Any) -> None:
    body = b'{"text": "good good phone"}\n{"text": "\xe5\xbe\x88\xe5\xa5\xbd"}\n{"id": 3}\n'
    parse = ParseOptions()
    framer = framer_for("application/x-ndjson", parse, piece_bytes=16)
    frames = framer.feed(body) + framer.close()
    assert len(frames) == 3
    answer = counter.analyze_chunk(frames, parse, BulkOptions())
    assert answer == dataclasses.replace(
        uploads.analyze_chunk(frames, parse, BulkOptions()), node_id=answer.node_id
    )
    rows = [orjson.loads(line) for line in answer.lines.splitlines()]
    assert [row.get("text") for row in rows] == ["good good phone", "很好", None]
    assert rows[2]["error"] == 'line 3: missing field "text"'
    summary = packed_summary.unpack(answer.summary)
    assert (summary.ok, summary.failed) == (2, 1)
    assert isinstance(answer.node_id, str) and answer.node_id

    only = counter.analyze_chunk(frames, parse, BulkOptions(include=frozenset({"word_count"})))
    assert [orjson.loads(line) for line in only.lines.splitlines()][0] == {
        "index": 0,
        "source": None,
        "id": None,
        "word_count": 3,
    }
    assert counter.analyze_chunk(frames, parse, BulkOptions(include=frozenset())).lines == b""


def test_merge_summaries_and_summary_head_merge_packs_in_their_order(counter: Any) -> None:
    first, second, third = Summary(), Summary(), Summary()
    first.add_words(char_count=5, words=["b", "a"])
    second.add_words(char_count=7, words=["a", "c", "b"])
    third.add_words(char_count=3, words=["c", "d"])
    leaves = [
        summary_parts.Leaf(i, packed_summary.pack(s)) for i, s in enumerate([first, second, third])
    ]
    merged = counter.merge_summaries(leaves[:2], 2)
    assert len(merged.packs) == 2
    heads = [counter.summary_head([merged.packs[part], leaves[2]], part, 2, 3) for part in range(2)]
    expected = Summary().merge(first).merge(second).merge(third)
    assert summary_parts.combine(heads, 3) == expected.to_dict(3)
    assert expected.to_dict(3)["top_words"] == [["b", 2], ["a", 2], ["c", 2]]  # ties kept


def test_user_config_with_a_key_fails_instead_of_being_ignored() -> None:
    check_user_config("TextCleaner", {})
    with pytest.raises(ValueError, match="max_repeat"):
        check_user_config("TextCleaner", {"max_repeat": 3})


def test_reconfigure_adds_the_deployments_words_to_every_request() -> None:
    counter = WordCounter.func_or_class()  # type: ignore[attr-defined]
    text = "我买了小米手机，东西不错"
    plain = asyncio.run(counter.count([text], counting.CountOptions()))[0]
    assert "小米手机" not in plain["word_counts"] and "东西" in plain["word_counts"]

    counter.reconfigure({"user_words": ["小米手机"], "extra_stopwords": ["东西"]})
    assert counter.dictionary() == {"user_words": ["小米手机"], "extra_stopwords": ["东西"]}
    own = counting.CountOptions(extra_stopwords=("不错",))
    counted = asyncio.run(counter.count([text], own))[0]["word_counts"]
    assert "小米手机" in counted and "东西" not in counted and "不错" not in counted
    body = orjson.dumps({"text": text}) + b"\n"
    framer = framer_for("application/x-ndjson", ParseOptions())
    answer = counter.analyze_chunk(
        framer.feed(body) + framer.close(), ParseOptions(), BulkOptions()
    )
    assert "小米手机" in orjson.loads(answer.lines.splitlines()[0])["word_counts"]

    counter.reconfigure({})  # words taken out again, without a new replica
    assert asyncio.run(counter.count([text], counting.CountOptions()))[0] == plain
    with pytest.raises(ValueError, match="unknown key"):
        counter.reconfigure({"userwords": []})


def test_offsets_and_analysis_only_when_asked(counter: Any) -> None:
    from serve_app.core.analysis.review import AnalysisOptions

    text = "物流很快 great value"
    options = counting.CountOptions(offsets=True)
    [counted] = asyncio.run(counter.count([text], options))
    assert counted["tokens"] == counting.token_offsets(text, options)
    [analyzed] = asyncio.run(
        counter.clean_and_count(
            [text],
            cleaning.CleanOptions(),
            counting.CountOptions(),
            [AnalysisOptions(language=True, sentiment=True)],
        )
    )
    assert analyzed["language"] == "mixed" and analyzed["sentiment"]["label"] == "positive"
    assert "tokens" not in analyzed
    [plain] = asyncio.run(
        counter.clean_and_count([text], cleaning.CleanOptions(), counting.CountOptions())
    )
    assert "language" not in plain and "sentiment" not in plain
