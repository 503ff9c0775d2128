"""Mojibake repair against ftfy's own cases (Apache-2.0, vendored in references/ftfy)."""

import json
from pathlib import Path

import pytest
from hypothesis import given
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


def _blank_runs(text: str) -> list[tuple[int, int]]:
    """What the collapse at the end changes, stated plainly: each maximal run of whitespace
    (NEL aside) that is longer than one character or is not a space."""
    runs, at = [], 0
    while at < len(text):
        end = at
        while end < len(text) and text[end].isspace() and text[end] != "\x85":
            end += 1
        if end - at > 1 or (end - at == 1 and text[at] != " "):
            runs.append((at, end))
        at = max(end, at + 1)
    return runs


@given(st.text(alphabet=" \t\n\r\x0b\x0c\x85\xa0\u2028\u3000ab\u00c3", max_size=12))
def test_blank_runs_are_the_whitespace_the_final_collapse_changes(text: str) -> None:
    found = [m.span() for m in mojibake._BLANK_RUN.finditer(text)]
    assert found == _blank_runs(text)
