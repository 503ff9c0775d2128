"""Emoji removal against Unicode's emoji-test.txt (Debian's unicode-data)."""

from pathlib import Path

import pytest

from serve_app.core.cleaning import CleanOptions, clean
from tests.support import ensure_debian_file

REMOVE = CleanOptions(emoji="remove")
EMOJI_TEST = "/usr/share/unicode/emoji/emoji-test.txt"


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("run 🏃\u200d↔ now", "run now"),  # a text-style arrow inside a ZWJ sequence
        ("run 🏃\u200d➡ now", "run now"),
        ("eye 👁\u200d🗨 ok", "eye ok"),
        ("flag 🏳\u200d⚧ ok", "flag ok"),
        ("↔\u200d🏃 ok", "ok"),
        ("&#x1F3C3;&#x200D;&#x2194; ok", "ok"),  # the joiner arrives late, from an entity
        ("text ↔ ↗ © stays", "text ↔ ↗ © stays"),  # text style, no sequence
        ("x\u200d↔ y", "x↔ y"),  # a letter does not make a ZWJ sequence
    ],
)
def test_zwj_sequences_go_whole(text: str, kept: str) -> None:
    assert clean(text, REMOVE) == kept
    assert clean(kept, REMOVE) == kept


def emoji_test_cases(path: Path) -> dict[str, list[str]]:
    by_status: dict[str, list[str]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        points, rest = line.split(";", 1)
        status = rest.split("#", 1)[0].strip()
        sequence = "".join(chr(int(point, 16)) for point in points.split())
        by_status.setdefault(status, []).append(sequence)
    return by_status


@pytest.fixture(scope="module")
def emoji_test() -> dict[str, list[str]]:
    return emoji_test_cases(ensure_debian_file(EMOJI_TEST, "unicode-data"))


@pytest.mark.parametrize("status", ["fully-qualified", "minimally-qualified", "component"])
def test_every_emoji_of_emoji_test_is_removed(
    emoji_test: dict[str, list[str]], status: str
) -> None:
    sequences = emoji_test[status]
    assert len(sequences) > (5 if status == "component" else 100)
    left = {seq: out for seq in sequences if (out := clean(f"a {seq} b", REMOVE)) != "a b"}
    assert left == {}
    # and all of them in one text, glued together, leave nothing either
    assert clean("".join(sequences), REMOVE) == ""


def test_unqualified_emoji_are_text_style_symbols(emoji_test: dict[str, list[str]]) -> None:
    # Unqualified: a pictograph without VS16 where emoji style needs one. Those outside the
    # pictograph blocks (© ® ™ ↔ ▶ ‼) are kept as text; their VS16 forms are removed above.
    for seq in emoji_test["unqualified"]:
        out = clean(f"a {seq} b", REMOVE)
        assert out in ("a b", f"a {seq} b")
        assert clean(f"a {seq}\ufe0f b", REMOVE) == "a b"
