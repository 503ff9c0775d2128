"""Golden outputs over a fixed mixed corpus: speed work must not change a result unnoticed.

The corpus (300 generated reviews, English, Chinese and mixed, with HTML, URLs, mojibake and
emoji, plus the issue's hand-written cases) and every output are in golden/reviews.json. After a
deliberate change of behaviour, rewrite it and review the diff:

    PYTHONPATH=$PWD python -m tests.core.test_golden
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from serve_app.core import cleaning, counting
from serve_app.core.pipeline import BulkOptions, analyze_records
from serve_app.core.records import Record

GOLDEN = Path(__file__).parent / "golden" / "reviews.json"
SEED = 15
REVIEWS = 300

CLEAN = {
    "standard": cleaning.CleanOptions(),
    "everything": cleaning.CleanOptions(
        normalize="NFKC",
        urls="mask",
        emails="mask",
        emoji="remove",
        lowercase=True,
        max_repeat=2,
    ),
    "links-removed": cleaning.CleanOptions(urls="remove", emails="remove", fix_encoding=False),
}
MINIMAL = cleaning.CleanOptions(preset="minimal")  # replace + strip: checked, not stored
# (clean option set, count options): what the API and the bulk paths combine
COUNT = {
    "auto": ("standard", counting.CountOptions()),
    "unicode-filtered": (
        "everything",
        counting.CountOptions(tokenizer="unicode", stopwords=("en", "zh"), min_length=2, top_k=5),
    ),
    "auto-cased-top3": ("standard", counting.CountOptions(lowercase=False, top_k=3)),
    "seed": ("minimal", counting.CountOptions(tokenizer="whitespace", lowercase=False)),
}
# Seed-mode counts are str.split() of the text: stored as a digest of the ordered counts.
DIGESTED = {"seed"}
HAND_WRITTEN = [
    "<p>Great product.</p><p>Works well</p>",
    "fast<br>cheap <li>red</li><li>blue</li> <b>gr</b>eat",
    "<a href=\"/x?a>b\">link</a> <img alt='5 > 3' src=x>after",
    "<p class=MsoNormal>Word<o:p></o:p></p><w:sdt>doc</w:sdt>",
    "see https://en.wikipedia.org/wiki/Foo_(bar) and http://www.bürgerentscheid.de/x?q='a'",
    "run 🏃\u200d↔ now ❤️ 👨\u200d👩\u200d👧 © ↔",
    "详情见https://item.taobao.com/item.htm?id=1很好 mail a.b+c@mail.co.uk!",
    "cafÃ© naÃ¯ve â€œniceâ€\x9d ç‰©æµ\x81å¾ˆå¿«",
    "ＡＢＣ１２３\u3000全角 soooooo good!!!!!!",
]


def corpus() -> list[str]:
    from serve_app.ops.loadtest.textgen import ReviewGenerator

    gen = ReviewGenerator(SEED)
    return [gen.short() for _ in range(REVIEWS)] + HAND_WRITTEN


def digest(word_counts: dict[str, int]) -> str:
    ordered = json.dumps(list(word_counts.items()), ensure_ascii=False).encode()
    return hashlib.sha256(ordered).hexdigest()[:16]


def outputs(texts: list[str]) -> dict[str, Any]:
    cleaned = {name: cleaning.clean_many(texts, options) for name, options in CLEAN.items()}
    minimal = cleaning.clean_many(texts, MINIMAL)
    assert minimal == [text.replace("\n", " ").strip() for text in texts]
    counted: dict[str, Any] = {}
    for name, (clean_name, options) in COUNT.items():
        inputs = minimal if clean_name == "minimal" else cleaned[clean_name]
        results = [counting.count(text, options) for text in inputs]
        counted[name] = [
            [
                r.word_count,
                r.unique_words,
                digest(r.word_counts) if name in DIGESTED else r.word_counts,
            ]
            for r in results
        ]
    records = [Record(i, None, i, text, None, len(text)) for i, text in enumerate(texts)]
    summaries = {}
    for name in ("auto", "seed"):
        clean_name, count_options = COUNT[name]
        clean_options = MINIMAL if clean_name == "minimal" else CLEAN[clean_name]
        bulk = BulkOptions(clean=clean_options, count=count_options, include=frozenset())
        summaries[name] = analyze_records(records, bulk).summary.to_dict(top_n=25)
    return {"clean": cleaned, "count": counted, "summary": summaries}


@pytest.fixture(scope="module")
def golden() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(GOLDEN.read_text(encoding="utf-8"))
    return loaded


@pytest.fixture(scope="module")
def actual(golden: dict[str, Any]) -> dict[str, Any]:
    return outputs(golden["texts"])


def test_the_corpus_is_the_generated_one(golden: dict[str, Any]) -> None:
    # The inputs are stored, so the outputs stay pinned even if the generator changes; this
    # says when it did.
    assert golden["texts"] == corpus()


@pytest.mark.parametrize("name", CLEAN)
def test_clean_matches_golden(golden: dict[str, Any], actual: dict[str, Any], name: str) -> None:
    for index, (want, got) in enumerate(zip(golden["clean"][name], actual["clean"][name])):
        assert got == want, f"record {index}: {golden['texts'][index]!r}"


@pytest.mark.parametrize("name", COUNT)
def test_count_matches_golden(golden: dict[str, Any], actual: dict[str, Any], name: str) -> None:
    for index, (want, got) in enumerate(zip(golden["count"][name], actual["count"][name])):
        assert got == want, f"record {index}"
        if name not in DIGESTED:
            assert list(got[2]) == list(want[2]), f"record {index}: order of word_counts"


@pytest.mark.parametrize("name", ["auto", "seed"])
def test_summary_matches_golden(golden: dict[str, Any], actual: dict[str, Any], name: str) -> None:
    assert actual["summary"][name] == golden["summary"][name]


def main() -> None:
    texts = corpus()
    data = {"texts": texts, **outputs(texts)}
    # one line per record and output: reviewable diffs
    lines = ["{", f'"texts": {_rows(data["texts"])},']
    for part in ("clean", "count"):
        body = ",\n".join(f"{json.dumps(k)}: {_rows(v)}" for k, v in data[part].items())
        lines.append(f'"{part}": {{\n{body}\n}},')
    lines.append(f'"summary": {json.dumps(data["summary"], ensure_ascii=False)}')
    lines.append("}")
    GOLDEN.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {GOLDEN} ({GOLDEN.stat().st_size:,} bytes)", file=sys.stderr)


def _rows(items: list[Any]) -> str:
    return "[\n" + ",\n".join(json.dumps(item, ensure_ascii=False) for item in items) + "\n]"


if __name__ == "__main__":
    main()
