from collections import Counter
from typing import Any

from serve_app.ops.loadtest.checks import (
    BatchStreamCheck,
    check_analyze,
    check_clean,
    check_count,
    check_seed_compatible,
)


def analysis(text: str) -> dict[str, Any]:
    counts = dict(Counter(text.split()))
    return {
        "text": text,
        "char_count": len(text),
        "word_count": sum(counts.values()),
        "unique_words": len(counts),
        "word_counts": counts,
    }


def test_a_correct_clean_answer_passes() -> None:
    assert check_clean({"text": "abc xyz", "char_count": 7}, marker="xyz") is None


def test_clean_answers_are_checked() -> None:
    assert "char_count" in (check_clean({"text": "abc", "char_count": 4}) or "")
    assert "not an object" in (check_clean(["abc"]) or "")
    assert "not a string" in (check_clean({"text": None, "char_count": 0}) or "")
    assert "non-negative integer" in (check_clean({"text": "", "char_count": True}) or "")
    assert "marker" in (check_clean({"text": "abc", "char_count": 3}, marker="xyz") or "")


def test_count_invariants_without_top_k() -> None:
    good = {"word_count": 3, "unique_words": 2, "word_counts": {"a": 2, "b": 1}}
    assert check_count(good) is None
    assert "sum(word_counts)" in (check_count({**good, "word_count": 4}) or "")
    assert "len(word_counts)" in (check_count({**good, "unique_words": 3}) or "")
    assert "positive" in (check_count({**good, "word_counts": {"a": 0, "b": 3}}) or "")
    assert "marker" in (check_count(good, marker="c") or "")


def test_count_with_top_k_returns_at_most_k_words_most_frequent_first() -> None:
    body = {"word_count": 10, "unique_words": 5, "word_counts": {"a": 4, "b": 3}}
    assert check_count(body, top_k=2) is None
    assert "top_k=1" in (check_count(body, top_k=1) or "")
    unordered = {**body, "word_counts": {"b": 3, "a": 4}}
    assert "ordered" in (check_count(unordered, top_k=2) or "")
    assert "< sum" in (check_count({**body, "word_count": 6}, top_k=2) or "")


def test_analyze_checks_both_halves() -> None:
    assert check_analyze(analysis("x y x")) is None
    assert check_analyze({**analysis("x y x"), "char_count": 1}) is not None
    assert check_analyze({**analysis("x y x"), "word_count": 1}) is not None


def test_seed_compatible_answers_must_match_the_original_script_exactly() -> None:
    sent = "  Great  value\ngreat value!\n"
    expected = sent.replace("\n", " ").strip()
    assert check_seed_compatible(sent, analysis(expected)) is None
    assert "text !=" in (check_seed_compatible(sent, analysis(expected.lower())) or "")
    reordered = analysis(expected)
    reordered["word_counts"] = dict(reversed(list(reordered["word_counts"].items())))
    assert "first-occurrence" in (check_seed_compatible(sent, reordered) or "")


def stream(texts: list[str], *, errors: frozenset[int] = frozenset()) -> list[dict[str, Any]]:
    lines: list[dict[str, Any]] = []
    for index, text in enumerate(texts):
        if index in errors:
            lines.append({"index": index, "source": "body", "error": "bad record"})
        else:
            lines.append({"index": index, "source": "body", "id": index, **analysis(text)})
    ok = [line for line in lines if "error" not in line]
    lines.append(
        {
            "summary": {
                "records": len(texts),
                "ok": len(ok),
                "failed": len(errors),
                "total_chars": sum(line["char_count"] for line in ok),
                "total_words": sum(line["word_count"] for line in ok),
                "unique_words": 9,
                "top_words": [],
            }
        }
    )
    return lines


def run_check(lines: list[dict[str, Any]], **kwargs: Any) -> str | None:
    check = BatchStreamCheck(**kwargs)
    for line in lines:
        check.feed(line)
    return check.finish()


def test_a_complete_stream_in_order_passes() -> None:
    texts = ["a b", "c", "d d d"]
    assert run_check(stream(texts), records=3) is None
    assert run_check(stream(texts, errors=frozenset({1})), records=3) is None
    assert run_check(stream(texts), records=3, expected_texts=texts) is None


def test_a_stream_short_of_lines_fails() -> None:
    lines = stream(["a", "b", "c"])
    del lines[1]
    assert "index" in (run_check(lines, records=3) or "")
    assert "lines for 3 records" in (run_check(stream(["a", "b"]), records=3) or "")


def test_records_out_of_order_fail() -> None:
    lines = stream(["a", "b"])
    lines[0], lines[1] = lines[1], lines[0]
    assert "index 1, expected 0" in (run_check(lines, records=2) or "")


def test_a_summary_that_disagrees_with_the_lines_fails() -> None:
    lines = stream(["a b", "c"])
    lines[-1]["summary"]["total_words"] += 1
    assert "total_words" in (run_check(lines, records=2) or "")
    lines = stream(["a b", "c"])
    lines[-1]["summary"]["records"] = 3
    assert "summary.records" in (run_check(lines, records=2) or "")


def test_no_summary_or_lines_after_it_fail() -> None:
    lines = stream(["a"])
    assert "summary" in (run_check(lines[:-1], records=1) or "")
    assert "after the summary" in (run_check([*lines, lines[0]], records=1) or "")


def test_someone_elses_text_at_an_index_fails() -> None:
    assert "not the one sent" in (
        run_check(stream(["a", "b"]), records=2, expected_texts=["a", "c"]) or ""
    )


def test_summary_only_streams_have_just_the_summary() -> None:
    lines = stream(["a", "b"])
    assert run_check(lines[-1:], records=2, summary_only=True) is None
    assert "include=none" in (run_check(lines, records=2, summary_only=True) or "")


def test_the_first_problem_is_kept() -> None:
    check = BatchStreamCheck(records=2)
    first = check.feed({"index": 5})
    check.feed({"index": 1, **analysis("x")})
    assert check.finish() == first


def test_a_summary_only_upload_must_agree_with_the_full_one_of_the_same_body() -> None:
    full = stream(["a b", "c"])
    reference = full[-1]["summary"]
    assert run_check(full[-1:], records=2, summary_only=True, expected_summary=reference) is None
    changed = {**reference, "total_chars": reference["total_chars"] + 1}
    found = run_check(full[-1:], records=2, summary_only=True, expected_summary=changed)
    assert "earlier upload" in (found or "")
