"""The language of a review: an ISO 639-1 code from py3langid (langid.py's model, 97
languages), or "mixed" for a review written in both Chinese and English.

Review text is short and often mixes scripts ("物流很快 great value"), where a single-label
identifier picks whichever script has more bytes. Chinese and English are weighed by what they
carry: a Han character against a Latin word. Both above a fifth of the weight (and at least two
Latin words and two Han characters: "iPhone 很好用" is Chinese) is "mixed"; otherwise py3langid
decides. No letter at all (emoji, numbers, "!!!"): None.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import regex

__all__ = ["Script", "detect", "script_shares", "warm_up"]

_HAN: Any = regex.compile(r"\p{Han}")
_LATIN_WORD: Any = regex.compile(r"\p{Latin}{2,}")
_LETTER: Any = regex.compile(r"\p{L}")
MIXED_SHARE = 0.2
# Han characters per word of Chinese, roughly, so that counts weigh alike.
_HAN_PER_WORD = 1.5


@dataclass(frozen=True, slots=True)
class Script:
    zh: float  # the Chinese share of the review's words, 0..1
    en: float  # the Latin-script share
    letters: int
    han_chars: int = 0
    latin_words: int = 0

    @property
    def mixed(self) -> bool:
        return (
            self.zh >= MIXED_SHARE
            and self.en >= MIXED_SHARE
            and self.han_chars >= 2
            and self.latin_words >= 2
        )


def script_shares(text: str) -> Script:
    han = len(_HAN.findall(text))
    latin = len(_LATIN_WORD.findall(text))
    letters = len(_LETTER.findall(text)) if han or latin else 0
    weight = han / _HAN_PER_WORD + latin
    if not weight:
        return Script(0.0, 0.0, letters)
    return Script(han / _HAN_PER_WORD / weight, latin / weight, letters, han, latin)


@cache
def _classify() -> Callable[[str], tuple[str, float]]:
    # Loads its model (~0.7 s) on first use: once per process.
    import py3langid

    classify: Callable[[str], tuple[str, float]] = py3langid.classify
    return classify


def detect(text: str) -> str | None:
    shares = script_shares(text)
    if shares.mixed:
        return "mixed"
    if not shares.letters and _LETTER.search(text) is None:
        return None
    return _classify()(text)[0]


def warm_up() -> None:
    detect("warm up")
