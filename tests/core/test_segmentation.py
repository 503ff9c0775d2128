from pathlib import Path

import pytest
import regex
import rjieba
from hypothesis import given
from hypothesis import strategies as st

from serve_app.core import segmentation
from tests.support import ensure_debian_file

WORD_BREAK_TEST = Path("/usr/share/unicode/auxiliary/WordBreakTest.txt")
_ALPHANUMERIC = regex.compile(r"[\p{Alphabetic}\p{N}]")


def _conformance_cases(path: Path) -> list[tuple[str, list[str]]]:
    """(text, expected segments) per line: hex code points between ÷ (break) and × (no break)."""
    cases = []
    for line in path.read_text(encoding="utf-8").splitlines():
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        pieces, piece = [], ""
        for field in fields:
            if field == "÷":
                if piece:
                    pieces.append(piece)
                piece = ""
            elif field != "×":
                piece += chr(int(field, 16))
        cases.append(("".join(pieces), pieces))
    return cases


@pytest.fixture(scope="module")
def conformance_cases() -> list[tuple[str, list[str]]]:
    return _conformance_cases(ensure_debian_file(str(WORD_BREAK_TEST), "unicode-data"))


def test_segments_agree_with_unicode_word_break_test(
    conformance_cases: list[tuple[str, list[str]]],
) -> None:
    # The file is Unicode 15.0 (Debian 12); the segmenter's tables are newer, and Unicode 17
    # dropped Extended_Pictographic from non-emoji symbols such as U+2701, which the file's
    # ZWJ lines still join: those are the expected disagreements.
    agree = sum(segmentation.segments(text) == pieces for text, pieces in conformance_cases)
    assert agree / len(conformance_cases) >= 0.99, f"{agree}/{len(conformance_cases)} lines"


def test_words_agree_with_unicode_word_break_test(
    conformance_cases: list[tuple[str, list[str]]],
) -> None:
    agree = sum(
        segmentation.words(text) == [p for p in pieces if _ALPHANUMERIC.search(p)]
        for text, pieces in conformance_cases
    )
    assert agree / len(conformance_cases) >= 0.99, f"{agree}/{len(conformance_cases)} lines"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("don't stop", ["don't", "stop"]),
        ("don’t", ["don’t"]),
        ("pi is 3.14, or 3,14", ["pi", "is", "3.14", "or", "3,14"]),
        ("e-mail", ["e", "mail"]),
        ("U.S.A. and U.S.A", ["U.S.A", "and", "U.S.A"]),
        ("snake_case x2", ["snake_case", "x2"]),
        ("Hello, world!!! 👍 ...", ["Hello", "world"]),
        ("カタカナ ひらがな", ["カタカナ", "ひ", "ら", "が", "な"]),
        ("物流很快", ["物", "流", "很", "快"]),
        ("", []),
    ],
)
def test_words(text: str, expected: list[str]) -> None:
    assert segmentation.words(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("物流很快", ["物流", "很快"]),
        ("物流很快，包装很好！", ["物流", "很快", "包装", "很", "好"]),
        ("iPhone15的屏幕很清晰👍", ["iPhone15", "的", "屏幕", "很", "清晰"]),
        ("Great物流, don't 3.14", ["Great", "物流", "don't", "3.14"]),
        ("「」。，！？、～", []),
        ("plain ascii only", ["plain", "ascii", "only"]),
    ],
)
def test_han_words_use_the_dictionary(text: str, expected: list[str]) -> None:
    assert segmentation.han_words(text) == expected


def test_han_words_keep_every_han_character() -> None:
    text = "𠀀𠀁物流很快㐀㐁々〇"
    assert "".join(segmentation.han_words(text)) == text


def test_lone_surrogates_separate_words_and_never_appear() -> None:
    text = "a\ud800b \udfff 物流\udc00很快 c\ud83d"
    assert segmentation.words(text) == ["a", "b", "物", "流", "很", "快", "c"]
    assert segmentation.han_words(text) == ["a", "b", "物流", "很快", "c"]
    assert segmentation.whitespace_words(text) == ["a", "b", "物流", "很快", "c"]
    assert "".join(segmentation.segments(text)) == text


def test_whitespace_words_are_str_split() -> None:
    text = " a\tb\n\nc\u3000d\x1ce  物流很快 "
    assert segmentation.whitespace_words(text) == text.split()


def test_warm_up_loads_the_dictionary_once() -> None:
    segmentation.warm_up()
    segmentation.warm_up()
    assert segmentation._jieba_cut.cache_info().currsize == 1
    assert segmentation._jieba_cut() is segmentation._jieba_cut()


def _han_words_uncached(text: str) -> list[str]:
    """han_words as it was before its pieces were remembered: every piece cut afresh."""
    parts = segmentation._HAN_RUN.split(text)
    if len(parts) == 1:
        return segmentation.words(text)
    found = segmentation.words(parts[0])
    for index, part in enumerate(parts[1:]):
        found += rjieba.cut(part) if index % 2 == 0 else segmentation.words(part)
    return found


_HAN_TEXT = st.lists(
    st.one_of(
        st.sampled_from(["物流很快", "好评", "质量好", "很", "，", "！", "。", " ", "iPhone15"]),
        st.text(alphabet="物流很快好评的我买了一个𠀀㐀〇々", max_size=6),
        # Han symbols (radicals, marks: split first by script, then again without them)
        st.text(alphabet="物流⺀⼀\U00016fe2\U00016ff0\U00016fe3", max_size=4),
        st.text(alphabet="ab1 ,.'!？\u0301\u093e\u093f\u200d👍🏽", max_size=4),
        st.characters(codec="utf-8"),
    ),
    max_size=12,
).map("".join)


@given(_HAN_TEXT)
def test_remembered_pieces_give_the_words_cutting_afresh_gives(text: str) -> None:
    expected = _han_words_uncached(text)
    assert segmentation.han_words(text) == expected  # remembers its pieces
    assert segmentation.han_words(text) == expected  # from what it remembered


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("物流⺀很快", ["物流", "很快"]),  # a radical is no word and cuts the run
        ("⼀物流", ["物流"]),
        # a radical and an alphabetic mark: one UAX #29 segment, a word
        ("很快\u2e80\u093e好评", ["很快", "\u2e80\u093e", "好评"]),
    ],
)
def test_a_han_symbol_splits_as_non_han(text: str, expected: list[str]) -> None:
    segmentation.forget()
    assert segmentation.han_words(text) == expected == _han_words_uncached(text)
    assert not any("\u2e80" in run or "\u2f00" in run for run in segmentation._HAN_CUTS)


def test_remembered_pieces_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(segmentation, "_REMEMBERED", 3)
    segmentation.forget()
    for clause in ["物流", "很快", "好评", "质量", "不错"]:
        segmentation.han_words(f"{clause}!")
    assert 0 < len(segmentation._HAN_CUTS) <= 3
    segmentation.han_words("物" * (segmentation._SHORT + 1))
    assert "物" * (segmentation._SHORT + 1) not in segmentation._HAN_CUTS


def test_forget_drops_the_remembered_pieces() -> None:
    segmentation.han_words("物流很快!")
    segmentation.forget()
    assert not segmentation._HAN_CUTS and not segmentation._OTHER_WORDS
    assert segmentation.han_words("物流很快!") == ["物流", "很快"]
