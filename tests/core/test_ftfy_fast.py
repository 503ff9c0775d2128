"""ftfy_fast against ftfy itself, on random text made to look like mojibake."""

import re

import ftfy
from ftfy import badness, fixes
from hypothesis import example, given, settings
from hypothesis import strategies as st

from serve_app.core import ftfy_fast


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
# The code pages ftfy reads mojibake through (Python's names for them).
_CODE_PAGES = [
    "latin-1",
    "cp1252",
    "cp1251",
    "cp1250",
    "cp1253",
    "cp1254",
    "cp1257",
    "iso-8859-2",
    "mac_roman",
    "cp437",
]


def _misread(char: str, page: str, lost_nbsp: bool) -> str:
    misread = char.encode().decode(page, errors="replace")
    return misread.replace("\xa0", " ") if lost_nbsp else misread


_PIECE = st.one_of(
    st.characters(codec="utf-8").map(lambda c: c.encode().decode("latin-1")),
    st.characters(codec="utf-8").map(
        lambda c: c.encode().decode("latin-1").encode().decode("latin-1")
    ),
    st.builds(_misread, st.characters(codec="utf-8"), st.sampled_from(_CODE_PAGES), st.booleans()),
    # CESU-8 and Java's "modified UTF-8" (surrogates and NUL as 0xED/0xC0 sequences), misread
    st.characters(min_codepoint=0x10000).map(
        lambda c: (
            c.encode("utf-16-be")
            .decode("utf-16-be", "surrogatepass")
            .encode("utf-8", "surrogatepass")
            .decode("latin-1")
        )
    ),
    st.just("\xc0\x80"),
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
    assert ftfy_fast.is_bad(text) == badness.is_bad(text)


@settings(max_examples=1500, deadline=None)
@given(MOJIBAKE_TEXT)
def test_fix_encoding_is_ftfys(text: str) -> None:
    assert ftfy_fast.fix_encoding(text) == ftfy.fix_encoding(text, ftfy_fast.CONFIG)


def test_the_fast_paths_are_in_use() -> None:
    # else the two tests above compare ftfy with itself
    assert ftfy_fast._PORTED and ftfy_fast._BADNESS_KEYS is not None


@settings(max_examples=1000, deadline=None)
@given(MOJIBAKE_TEXT)
def test_decode_inconsistent_utf8_is_ftfys(text: str) -> None:
    assert ftfy_fast._decode_inconsistent_utf8(text) == fixes.decode_inconsistent_utf8(text)


def test_every_code_page_path_is_taken() -> None:
    # latin-1 and sloppy cp1252 decodes, a lost NBSP, a lossy sequence, C1 controls in CJK text,
    # Latin-1 read as cp1252, pieces in CJK text, and text ftfy leaves alone
    for text in [
        "Ã©tÃ©",
        "â€œniceâ€\x9d",
        "voilÃ le",
        "â€œ like this â€�",
        "物\x80",
        "a\x80b",
        "物流cafÃ© ok",
        "Ã\x81",
        "plain",
    ]:
        assert ftfy_fast.fix_encoding(text) == ftfy.fix_encoding(text, ftfy_fast.CONFIG), text
