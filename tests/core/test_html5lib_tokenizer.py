"""Markup stripping against html5lib-tests' tokenizer cases (MIT, vendored in references/html5lib).

For each case in scope, the text `markup.strip_html` keeps must be html5lib's Character tokens
joined, with a space for each start or end tag of a block element (the cleaner's innerText rule),
whitespace runs compared as one space (the cleaner collapses them right after). A case is out of
scope only by one of the named rules below, each a behaviour the cleaner chose on purpose; the
counts are printed (`pytest -s`) and pinned, so a rule cannot quietly swallow more cases.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from serve_app.core import markup

FILES = ("test1.test", "test2.test", "test4.test")
REFERENCES = Path(__file__).parent / "references" / "html5lib"
Case = dict[str, Any]


def load() -> list[Case]:
    cases: list[Case] = []
    for name in FILES:
        for case in json.loads((REFERENCES / name).read_text("utf-8"))["tests"]:
            cases.append({**case, "file": name})
    return cases


def tokens(case: Case) -> list[list[Any]]:
    return [token for token in case["output"] if token != "ParseError"]  # older format inline


def unknown_element(case: Case) -> bool:
    # Only known element names are markup, so "<3", "<great>" and "a <h> b" stay text.
    return any(
        t[0] in ("StartTag", "EndTag")
        and not ("-" in t[1] or ":" in t[1] or t[1] in markup._TAG_NAMES)
        for t in tokens(case)
    )


def open_at_the_end(case: Case) -> bool:
    # Markup needs its ">": text the input ends before closing ("<a a='x", "<!--x") stays.
    text = case["input"]
    return "<" in text and ">" not in text[text.rfind("<") :]


_NO_SEMICOLON = re.compile(r"&(?:[A-Za-z][A-Za-z0-9]*|#[xX]?[0-9A-Fa-f]+)(?![A-Za-z0-9;])")


def reference_without_semicolon(case: Case) -> bool:
    # References need their ";": the legacy "&not" would make "&notit" "¬it" in plain prose.
    kept = "".join(t[1] for t in tokens(case) if t[0] == "Character")
    return any(ref[0] not in kept for ref in _NO_SEMICOLON.finditer(case["input"]))


def nameless_end_tag(case: Case) -> bool:
    # "</>" and "</1>" name no element: the cleaner keeps them as text, HTML5 drops them.
    return re.search(r"</(?![A-Za-z])", case["input"]) is not None and ">" in case["input"]


RULES: dict[str, Callable[[Case], bool]] = {
    "unknown element names": unknown_element,
    "markup still open at the end of the input": open_at_the_end,
    "references without their ';'": reference_without_semicolon,
    "end tags without an element name": nameless_end_tag,
}
# Pinned: a change in what the rules exclude is a change to review, not to pass silently.
EXCLUDED = {
    "unknown element names": 52,
    "markup still open at the end of the input": 28,
    "references without their ';'": 4,
    "end tags without an element name": 6,
}


def rule_for(case: Case) -> str | None:
    return next((name for name, applies in RULES.items() if applies(case)), None)


def expected_text(case: Case) -> str:
    pieces = []
    for token in tokens(case):
        if token[0] == "Character":
            pieces.append(token[1])
        elif token[0] in ("StartTag", "EndTag") and token[1] in markup._BLOCK_NAMES:
            pieces.append(" ")
    return " ".join("".join(pieces).split())


CASES = load()
IN_SCOPE = [case for case in CASES if rule_for(case) is None]


def test_the_rules_exclude_what_they_name() -> None:
    excluded = Counter(rule for case in CASES if (rule := rule_for(case)) is not None)
    print(f"\nhtml5lib tokenizer: {len(IN_SCOPE)} of {len(CASES)} cases in scope; excluded:")
    for name, count in excluded.items():
        print(f"  {count:3} {name}")
    assert dict(excluded) == EXCLUDED
    assert len(IN_SCOPE) > 80


@pytest.mark.parametrize(
    "case", IN_SCOPE, ids=lambda case: f"{case['file']}:{case['description'][:50]}"
)
def test_strip_html_keeps_the_character_tokens(case: Case) -> None:
    assert " ".join(markup.strip_html(case["input"]).split()) == expected_text(case)
