"""Traditional to Simplified Chinese with OpenCC's `t2s` configuration (phrases, then characters),
so that 質量 and 质量 count as one word."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import regex

__all__ = ["to_simplified", "warm_up"]

# Most review text is Simplified or has no Han at all: only texts with a Han character go to
# OpenCC, whose call costs more than the scan.
_HAN = regex.compile(r"\p{Han}")


@cache
def _converter() -> Callable[[str], str]:
    import opencc

    convert: Callable[[str], str] = opencc.OpenCC("t2s").convert
    return convert


def to_simplified(text: str) -> str:
    if text.isascii() or _HAN.search(text) is None:
        return text
    return _converter()(text)


def warm_up() -> None:
    to_simplified("質量")
