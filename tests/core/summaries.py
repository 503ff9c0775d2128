"""Random partial summaries for the tests of what merges them (`packed_summary`,
`summary_parts`), the one sequential merge they must equal, and an upload's end (its chunks
and ranges reduced part by part)."""

from collections import Counter
from collections.abc import Sequence
from typing import Any

from hypothesis import strategies as st

from serve_app.core import summary_parts
from serve_app.core.arrow_arrays import int64_array, utf8_array
from serve_app.core.summary import Summary
from serve_app.core.summary_parts import Leaf, Split

# Few distinct words, so that counts tie often and first occurrence decides top_words.
WORDS = st.sampled_from(["a", "b", "c", "好", "质量", "👍", "", "A", "a b", "\u00e9", "e\u0301"])


@st.composite
def summaries(draw: st.DrawFn) -> Summary:
    summary = Summary()
    for words in draw(st.lists(st.lists(WORDS, max_size=6), max_size=5)):
        if draw(st.booleans()):
            summary.add_words(char_count=sum(map(len, words)), words=words)
        else:  # counted by Arrow, as a seed-mode chunk is: kept as columns
            counts = Counter(words)
            summary.add_columns(
                results=1,
                char_count=sum(map(len, words)),
                word_count=len(words),
                words=utf8_array(list(counts)),
                counts=int64_array(counts.values(), len(counts)),
            )
    for _ in range(draw(st.integers(0, 2))):
        summary.add_failure()
    if draw(st.booleans()):
        summary.add_analysis({"language": "zh", "sentiment": {"label": "positive", "score": 0.5}})
    if draw(st.booleans()):
        summary.add_flags(duplicate=draw(st.booleans()), boilerplate=draw(st.booleans()))
    return summary


def sequential(parts: list[Summary]) -> Summary:
    whole = Summary()
    for part in parts:
        whole.merge(Summary.from_state(part.to_state()))
    return whole


def reduced_by_part(items: Sequence[Leaf | Split], parts: int, top_n: int) -> dict[str, Any]:
    """The summary of an upload's chunks and ranges, reduced part by part as its end does
    (`batch_stream`)."""
    heads = [
        summary_parts.reduce(summary_parts.of_part(items, part), top_n, part=part, parts=parts)
        for part in range(parts)
    ]
    return summary_parts.combine(heads, top_n)
