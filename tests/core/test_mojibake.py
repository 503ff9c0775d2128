"""Mojibake repair against ftfy's own cases (Apache-2.0, vendored in references/ftfy)."""

import json
import re
from pathlib import Path

import ftfy
import pytest
from ftfy import badness
from hypothesis import example, given, settings
from hypothesis import strategies as st

from serve_app.core import mojibake
from serve_app.core.cleaning import CleanOptions, clean

CASES = json.loads((Path(__file__).parent / "references/ftfy/test_cases.json").read_text("utf-8"))
FIX = CleanOptions(strip_html=False, normalize=None, fullwidth_alnum=False)
NO_FIX = CleanOptions(fix_encoding=False, strip_html=False, normalize=None, fullwidth_alnum=False)
# The cleaner repairs UTF-8 read as Latin-1 or Windows-1252 only (see cleaning.py): these
# labels name the other code pages, whose cases it mostly leaves as they are.
OTHER_CODE_PAGES = ("1250", "1251", "MacRoman", "437")


def in_scope(case: dict[str, str]) -> bool:
    return not any(page in case["label"] for page in OTHER_CODE_PAGES)


PASSING = [c for c in CASES if c["expect"] == "pass"]


def test_the_cases_are_read() -> None:
    assert len([c for c in PASSING if in_scope(c)]) > 100


@pytest.mark.parametrize("case", [c for c in PASSING if in_scope(c)], ids=lambda c: c["label"][:60])
def test_ftfy_cases_are_repaired(case: dict[str, str]) -> None:
    # ftfy's own expectation for its encoding fix alone, through the cleaner's other
    # always-on steps (controls, whitespace) too
    expected = case.get("fixed-encoding", case["fixed"])
    assert clean(case["original"], FIX) == clean(expected, NO_FIX)


@pytest.mark.parametrize(
    "case", [c for c in PASSING if not in_scope(c)], ids=lambda c: c["label"][:60]
)
def test_other_code_pages_are_repaired_or_left_alone(case: dict[str, str]) -> None:
    # Some of them share a Latin-1 shape ("Â\xa0") and get repaired; none is made worse.
    expected = case.get("fixed-encoding", case["fixed"])
    out = clean(case["original"], FIX)
    assert out in (clean(case["original"], NO_FIX), clean(expected, NO_FIX))


@pytest.mark.parametrize(
    "text",
    ["cafÃ\nSmells", "cafÃ\r\n\r\nSmells", "Five stars!!\xa0Ã©té parfait"],
)
def test_mojibake_by_a_line_break_or_nbsp_is_fixed_before_lowercasing(text: str) -> None:
    # ftfy only sees these once the whitespace is collapsed: in a second pass, after lower()
    # had made "Ã" an "ã" that is no mojibake any more ("cafã smells", "ã©té")
    assert clean(text, CleanOptions(lowercase=True)) == clean(text).lower()


def test_a_lost_nbsp_is_not_joined_with_the_line_break_after_it() -> None:
    # "â€" and a space is "†" (E2 80 A0) to ftfy; the line break after it still parts words
    assert clean("nice â€ \r\n2GB") == "nice † 2GB"


# --- the fast paths against ftfy itself ----------------------------------------------------------


def _expand(span: re.Match[str]) -> str:
    return "".join(map(chr, range(ord(span[1]), ord(span[2]) + 1)))


# Every character ftfy's badness check knows (its categories, ranges expanded) with ASCII,
# spaces, CJK and emoji: short texts of these hit its alternatives in every position.
_CATEGORY_CHARS = "".join(
    sorted(set(re.sub(r"(.)-(.)", _expand, "".join(badness.MOJIBAKE_CATEGORIES.values()))))
)
_NEAR_MOJIBAKE = st.text(
    alphabet=_CATEGORY_CHARS + "ÃÂÎÐØÙ×àâ√≈‚Äвβā€ГўВЂ°aZ.?\n 物👍\u200d", max_size=10
)
# Mojibake of any character (non-BMP included), once or twice over, among ASCII words, spaces,
# C1 controls, CJK, emoji and other scripts.
_PIECE = st.one_of(
    st.characters(codec="utf-8").map(lambda c: c.encode().decode("latin-1")),
    st.characters(codec="utf-8").map(
        lambda c: c.encode().decode("latin-1").encode().decode("latin-1")
    ),
    st.characters(codec="utf-8").map(lambda c: c.encode().decode("cp1252", errors="replace")),
    st.sampled_from(["Ã©", "â€œ", "â€\x9d", "Ã ", "Â ", "Ã\xa0", "ГўВЂВ", "√±", "β€™", "× ²"]),
    st.text(alphabet="abcXYZ .,!?'\n0123\x80\x9d", max_size=6),
    st.text(alphabet="物流很快好评👍🏽⭐\u200dμЖ한ä€", max_size=3),
    st.characters(codec="utf-8"),
)
MOJIBAKE_TEXT = st.one_of(_NEAR_MOJIBAKE, st.lists(_PIECE, max_size=12).map("".join))


@settings(max_examples=1500, deadline=None)
@given(MOJIBAKE_TEXT)
@example("Ãxxxa Â ")  # a match ("a Â ") that runs past the first key's window
@example("Â ")  # "^" is the text's start, not a window's
@example("xÂ ")
def test_is_bad_is_ftfys(text: str) -> None:
    assert mojibake._is_bad(text) == badness.is_bad(text)


@settings(max_examples=1500, deadline=None)
@given(MOJIBAKE_TEXT)
def test_fix_encoding_is_ftfys(text: str) -> None:
    assert mojibake._fix_encoding(text) == ftfy.fix_encoding(text, mojibake._FTFY_CONFIG)


def test_the_fast_paths_are_in_use() -> None:
    # else the two tests above compare ftfy with itself
    assert mojibake._PORTED and mojibake._BADNESS_KEYS is not None
