import pytest

from serve_app.core.counting import CountOptions, count, token_offsets, tokenize
from serve_app.core.userwords import Dictionary


def test_a_user_word_is_kept_whole_by_the_dictionary_segmenter() -> None:
    text = "我买了小米手机很好"
    assert "小米手机" not in tokenize(text)
    assert "小米手机" in tokenize(text, CountOptions(user_words=("小米手机",)))


@pytest.mark.parametrize("tokenizer", ["auto", "unicode", "whitespace"])
def test_user_words_apply_to_every_tokenizer_and_fold_with_the_text(tokenizer: str) -> None:
    options = CountOptions(tokenizer=tokenizer, user_words=("iPhone 15",))  # type: ignore[arg-type]
    assert count("IPHONE 15 great, iphone 15!", options).word_counts["iphone 15"] == 2


def test_a_latin_user_word_matches_only_at_word_boundaries() -> None:
    words = tokenize("apple app 好app用", CountOptions(user_words=("app",)))
    assert words == ["apple", "app", "好", "app", "用"]


def test_the_longest_user_word_wins() -> None:
    options = CountOptions(user_words=("小米", "小米手机"))
    assert tokenize("小米手机", options) == ["小米手机"]


def test_extra_stopwords_are_dropped_case_folded() -> None:
    options = CountOptions(extra_stopwords=("Great", "物流"), stopwords=("en",))
    counts = count("great GREAT value the 物流很快", options)
    assert counts.word_counts == {"value": 1, "很快": 1}
    assert counts.word_count == 2


def test_a_single_string_is_refused_rather_than_split_into_characters() -> None:
    with pytest.raises(ValueError, match="sequence of words"):
        CountOptions(user_words="小米手机")  # type: ignore[arg-type]


def test_token_offsets_point_into_the_original_text_as_elasticsearch_analyze() -> None:
    text = "The Straße 物流很快, OK"
    tokens = token_offsets(text, CountOptions(stopwords=("en",)))
    assert [(t["token"], text[t["start_offset"] : t["end_offset"]]) for t in tokens] == [
        ("strasse", "Straße"),
        ("物流", "物流"),
        ("很快", "很快"),
        ("ok", "OK"),
    ]
    # "the" is a stop word: it leaves a gap in the positions, as Elasticsearch's stop filter
    assert [t["position"] for t in tokens] == [1, 2, 3, 4]


def test_token_offsets_agree_with_the_counts() -> None:
    text = "物流很快，物流也很好 fast FAST ﬁne"
    options = CountOptions(user_words=("很好",))
    tokens = token_offsets(text, options)
    assert [t["token"] for t in tokens] == tokenize(text, options)
    for t in tokens:
        assert text[t["start_offset"] : t["end_offset"]].casefold() == t["token"]


def test_a_deployment_dictionary_is_read_from_user_config() -> None:
    dictionary = Dictionary.from_config({"user_words": ["小米手机", " "], "extra_stopwords": []})
    assert dictionary == Dictionary(user_words=("小米手机",))
    assert Dictionary.from_config({}) == Dictionary()
    with pytest.raises(ValueError, match="unknown key"):
        Dictionary.from_config({"user_word": ["x"]})
    with pytest.raises(ValueError, match="list of strings"):
        Dictionary.from_config({"user_words": "小米手机"})
