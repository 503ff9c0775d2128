from collections import Counter
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from serve_app.core import counting
from serve_app.core.counting import CountOptions, count, count_full, count_with_full, tokenize

SEED = CountOptions(tokenizer="whitespace", lowercase=False)
REVIEW = "物流很快，包装很好！Great value, would buy again 👍 GREAT the The don’t"


@pytest.fixture(autouse=True, scope="module")
def _warm() -> Iterator[None]:
    counting.warm_up()  # the dictionary loads once, outside any Hypothesis deadline
    yield


def seed_counts(text: str) -> dict[str, int]:
    """Exactly what the original script built."""
    d: dict[str, int] = {}
    for w in text.split():
        d[w] = d.get(w, 0) + 1
    return d


def assert_same_dict(got: dict[str, int], expected: dict[str, int]) -> None:
    assert got == expected
    assert list(got.items()) == list(expected.items())


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   \n\t ",
        "b a a c c b",
        "Hello, hello HELLO hello.",
        "tabs\tand\nnewlines\r\nand\x0bvertical\x0cfeeds\x1c\x1d\x1e\x1f\x85",
        "no\u00a0break\u2003em\u3000ideographic\u2028line\u2029para",
        "zero\u200bwidth\ufeffbom",
        "物流很快 物流很快，包装很好！ 物流很快",
        "emoji 👍👍 👍 👨‍👩‍👧 🇨🇳",
        "don't don’t e-mail 3.14 U.S.A.",
        "x " * 1000,
    ],
)
def test_whitespace_without_lowercase_is_the_seed(text: str) -> None:
    counts = count(text, SEED)
    assert_same_dict(counts.word_counts, seed_counts(text))
    assert counts.word_count == len(text.split())
    assert counts.unique_words == len(set(text.split()))


@given(st.text())
def test_whitespace_without_lowercase_is_the_seed_for_any_text(text: str) -> None:
    assert_same_dict(count(text, SEED).word_counts, seed_counts(text))


def test_whitespace_lowercase_folds_case() -> None:
    counts = count("Straße STRASSE strasse The the", CountOptions(tokenizer="whitespace"))
    assert_same_dict(counts.word_counts, {"strasse": 3, "the": 2})


def test_default_is_auto_and_case_folded() -> None:
    assert counting._DEFAULT == CountOptions(tokenizer="auto", lowercase=True)
    counts = count(REVIEW)
    assert_same_dict(
        counts.word_counts,
        {
            "great": 2,
            "the": 2,
            "物流": 1,
            "很快": 1,
            "包装": 1,
            "很": 1,
            "好": 1,
            "value": 1,
            "would": 1,
            "buy": 1,
            "again": 1,
            "don’t": 1,
        },
    )
    assert counts.word_count == 14
    assert counts.unique_words == 12


def test_auto_cuts_chinese_with_the_dictionary() -> None:
    assert tokenize("物流很快") == ["物流", "很快"]
    assert tokenize("物流很快", CountOptions(tokenizer="unicode")) == ["物", "流", "很", "快"]


@pytest.mark.parametrize(
    ("tokenizer", "expected"),
    [
        ("whitespace", ["物流很快，great", "value!", "👍", "e-mail", "3.14"]),
        ("unicode", ["物", "流", "很", "快", "great", "value", "e", "mail", "3.14"]),
        ("auto", ["物流", "很快", "great", "value", "e", "mail", "3.14"]),
    ],
)
def test_mixed_english_chinese_emoji(tokenizer: counting.Tokenizer, expected: list[str]) -> None:
    text = "物流很快，Great value! 👍 e-mail 3.14"
    assert tokenize(text, CountOptions(tokenizer=tokenizer)) == expected


def test_order_is_count_descending_then_first_occurrence() -> None:
    text = "b a a c c d"
    unicode = count(text, CountOptions(tokenizer="unicode"))
    assert list(unicode.word_counts.items()) == [("a", 2), ("c", 2), ("b", 1), ("d", 1)]
    # the seed's dict: first occurrence, unless top_k asks for the most frequent
    whitespace = count(text, CountOptions(tokenizer="whitespace"))
    assert list(whitespace.word_counts.items()) == [("b", 1), ("a", 2), ("c", 2), ("d", 1)]
    top = count(text, CountOptions(tokenizer="whitespace", top_k=3))
    assert list(top.word_counts.items()) == [("a", 2), ("c", 2), ("b", 1)]


@pytest.mark.parametrize("tokenizer", counting.TOKENIZERS)
def test_top_k_truncates_only_word_counts(tokenizer: counting.Tokenizer) -> None:
    text = "one two two three three three four four four four"
    counts = count(text, CountOptions(tokenizer=tokenizer, top_k=2))
    assert list(counts.word_counts.items()) == [("four", 4), ("three", 3)]
    assert counts.word_count == 10
    assert counts.unique_words == 4
    assert count(text, CountOptions(tokenizer=tokenizer, top_k=0)).word_counts == {}
    assert len(count(text, CountOptions(tokenizer=tokenizer, top_k=99)).word_counts) == 4


def test_english_stopwords() -> None:
    text = "The battery doesn't last and it's not what I wanted"
    words = tokenize(text, CountOptions(tokenizer="unicode", stopwords=("en",)))
    assert words == ["battery", "last", "wanted"]
    # typographic apostrophes and unfolded case are stop words too
    unfolded = CountOptions(tokenizer="unicode", lowercase=False, stopwords=("en",))
    assert tokenize("The battery DOESN’T last", unfolded) == ["battery", "last"]


def test_chinese_stopwords() -> None:
    text = "我们觉得这个手机的屏幕很清晰，也没有问题"
    expected = ["觉得", "手机", "屏幕", "清晰", "问题"]
    assert tokenize(text, CountOptions(stopwords=("zh",))) == expected


def test_both_stopword_languages() -> None:
    counts = count("the 的 phone 手机 the 的", CountOptions(stopwords=("en", "zh")))
    assert_same_dict(counts.word_counts, {"phone": 1, "手机": 1})
    assert counts.word_count == 2


def test_stopword_lists_are_reasonable() -> None:
    english, chinese = counting.stopwords_for("en"), counting.stopwords_for("zh")
    assert 150 <= len({w for w in english if "\u2019" not in w}) <= 250
    assert 200 <= len(chinese) <= 700
    assert {"the", "and", "is", "don't", "don’t"} <= english
    assert {"的", "了", "是", "在", "和", "也", "就", "都", "一个", "没有", "我们"} <= chinese


@pytest.mark.parametrize("languages", [("fr",), ("en", "xx"), "de"])
def test_unknown_stopword_language_is_named(languages: tuple[str, ...]) -> None:
    with pytest.raises(ValueError, match="fr|xx|de"):
        CountOptions(stopwords=languages)
    with pytest.raises(ValueError, match="'fr'"):
        counting.stopwords_for("fr")


def test_options_are_canonical_and_hashable() -> None:
    listed = CountOptions(stopwords=["zh", "en", "zh"])  # type: ignore[arg-type]
    assert listed.stopwords == ("zh", "en")
    assert hash(listed) == hash(CountOptions(stopwords=("zh", "en")))
    assert CountOptions(stopwords="en").stopwords == ("en",)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "bad",
    [
        {"tokenizer": "spaces"},
        {"min_length": -1},
        {"top_k": -1},
    ],
)
def test_bad_options(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        CountOptions(**bad)  # type: ignore[arg-type]


def test_min_length_counts_characters() -> None:
    options = CountOptions(tokenizer="auto", min_length=2)
    assert tokenize("a an ant 物流很快 很 好", options) == ["an", "ant", "物流", "很快"]
    assert count("a an ant", CountOptions(min_length=3)).word_counts == {"ant": 1}


@pytest.mark.parametrize("tokenizer", counting.TOKENIZERS)
def test_lone_surrogates_are_never_words(tokenizer: counting.Tokenizer) -> None:
    text = "good\ud800phone \udfff 物流\udc00很快 \ud83d"
    for lowercase in (True, False):
        words = tokenize(text, CountOptions(tokenizer=tokenizer, lowercase=lowercase))
        assert words[:2] == ["good", "phone"]
        assert not any("\ud800" <= ch <= "\udfff" for w in words for ch in w)


def test_count_full_gives_all_counts_in_first_occurrence_order() -> None:
    counts, full = count_full("b a a c c d", CountOptions(tokenizer="unicode", top_k=1))
    assert counts.word_counts == {"a": 2}
    assert list(full.items()) == [("b", 1), ("a", 2), ("c", 2), ("d", 1)]


def test_count_with_full_is_count_full_per_text() -> None:
    texts = ["物流很快", "", "b a a", REVIEW]
    options = CountOptions(stopwords=("en",), top_k=3)
    assert count_with_full(texts, options) == [count_full(t, options) for t in texts]


_PIECES = st.sampled_from(
    ["the", "The", "物流", "很快", "好", "的", "don't", "3.14", "e-mail", "ß", "İ", "a", "👍"]
    + [" ", "  ", "，", "！", ".", "\n", "\t", "\ud800"]
)
_TEXTS = st.one_of(st.text(), st.lists(_PIECES).map("".join))
_OPTIONS = st.builds(
    CountOptions,
    tokenizer=st.sampled_from(counting.TOKENIZERS),
    lowercase=st.booleans(),
    stopwords=st.sampled_from([None, (), ("en",), ("zh",), ("en", "zh")]),
    min_length=st.integers(0, 3),
    top_k=st.one_of(st.none(), st.integers(0, 5)),
)


@given(_TEXTS, _OPTIONS)
def test_count_invariants(text: str, options: CountOptions) -> None:
    counts, full = count_full(text, options)
    tokens = tokenize(text, options)
    assert full == Counter(tokens)
    assert list(full) == list(dict.fromkeys(tokens))  # first-occurrence order
    assert counts.word_count == len(tokens) == full.total()
    assert counts.unique_words == len(full)
    assert all(n > 0 for n in counts.word_counts.values())
    if options.top_k is None:
        assert counts.word_count == sum(counts.word_counts.values())
        assert counts.unique_words == len(counts.word_counts)
        assert counts.word_counts == full
    else:
        assert list(counts.word_counts.items()) == full.most_common(options.top_k)
    if options.top_k is not None or options.tokenizer != "whitespace":
        values = list(counts.word_counts.values())
        assert values == sorted(values, reverse=True)
    assert count(text, options) == counts
