"""User dictionaries: words the segmenter must keep whole (品牌名, 型号, "iPhone 15").

A user word found in the text is one token, whatever the tokenizer or the jieba dictionary
would have made of it; the text around it is split as usual. The longest user word wins where
two start at the same place. A word that starts (ends) with a letter or digit of a script that
separates words with spaces only matches at a word boundary there, so "app" is not found in
"apple"; Han (and other unspaced scripts) match anywhere, which is the point: 小米手机 in
我买了小米手机很好.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import regex

__all__ = ["Dictionary", "folded", "with_user_words"]

Split = Callable[[str], list[str]]
# Scripts written without spaces between words, where a word may start or end anywhere.
_UNSPACED = r"\p{Han}\p{Hiragana}\p{Katakana}\p{Thai}\p{Lao}\p{Khmer}\p{Myanmar}"
_SPACED_WORD_CHAR: Any = regex.compile(rf"[\w--[{_UNSPACED}]]", flags=regex.V1)


def _pattern(words: tuple[str, ...]) -> Any:
    alternatives = []
    for word in sorted(words, key=len, reverse=True):
        before = (
            rf"(?<![\w--[{_UNSPACED}]])" if _SPACED_WORD_CHAR.fullmatch(word[0]) is not None else ""
        )
        after = (
            rf"(?![\w--[{_UNSPACED}]])" if _SPACED_WORD_CHAR.fullmatch(word[-1]) is not None else ""
        )
        alternatives.append(before + regex.escape(word) + after)
    return regex.compile("|".join(alternatives), flags=regex.V1)


@lru_cache(maxsize=64)
def with_user_words(split: Split, words: tuple[str, ...]) -> Split:
    """`split`, except that the user `words` found in the text are kept whole."""
    words = tuple(w for w in dict.fromkeys(words) if w.strip())
    if not words:
        return split
    pattern = _pattern(words)

    def split_keeping(text: str) -> list[str]:
        found: list[str] = []
        start = 0
        for match in pattern.finditer(text):
            if match.start() > start:
                found += split(text[start : match.start()])
            found.append(match[0])
            start = match.end()
        if start == 0:
            return split(text)
        if start < len(text):
            found += split(text[start:])
        return found

    return split_keeping


def folded(words: Iterable[str], casefold: bool) -> tuple[str, ...]:
    return tuple(w.casefold() for w in words) if casefold else tuple(words)


@dataclass(frozen=True, slots=True)
class Dictionary:
    """A deployment's own user words and stop words (serve_config.yaml `user_config`), added to
    every request's."""

    user_words: tuple[str, ...] = ()
    extra_stopwords: tuple[str, ...] = ()

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Dictionary:
        """Refuses a wrong config, so that `serve deploy` reports it instead of half-applying."""
        unknown = set(config) - {"user_words", "extra_stopwords"}
        if unknown:
            raise ValueError(
                f"user_config: unknown key(s) {sorted(unknown)}; use user_words, extra_stopwords"
            )
        lists: dict[str, tuple[str, ...]] = {}
        for name in ("user_words", "extra_stopwords"):
            words = config.get(name) or []
            if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
                raise ValueError(f"user_config: {name} must be a list of strings")
            lists[name] = tuple(dict.fromkeys(w for w in words if w.strip()))
        return cls(**lists)
