"""Seeded e-commerce review text for load tests: no network, no data set.

English, Chinese and mixed reviews with what real ones carry: emoji (with skin tones, flags and
ZWJ sequences), HTML fragments, URLs, e-mail addresses, full-width digits, shouting and mojibake.
The same seed gives the same texts, in the same order, on every machine.

    >>> gen = ReviewGenerator(seed=7)
    >>> 20 <= len(gen.short()) <= 400
    True
    >>> ReviewGenerator(seed=7).short() == ReviewGenerator(seed=7).short()
    True
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from typing import Literal

Language = Literal["en", "zh", "mixed"]

SHORT_CHARS = (20, 400)
LONG_BYTES = (20_000, 200_000)

_EN = (
    "Great value for the money",
    "Arrived two days late but the seller was helpful",
    "The battery lasts about ten hours",
    "Would not buy again",
    "Fits perfectly, true to size",
    "The box was damaged when it arrived",
    "Customer service answered within an hour",
    "The colour is a bit different from the photos",
    "Works exactly as described",
    "Cheap plastic, it broke after a week",
    "My kids love it",
    "Delivery was super fast",
    "Not worth the price",
    "Smells a little strange at first",
    "Good quality stitching and soft fabric",
    "Instructions were only in Chinese",
    "I returned it and got a full refund",
    "Better than the one I bought in the store",
    "The size chart is wrong, order one size up",
    "Five stars",
)
_ZH = (
    "物流很快",
    "包装很好",
    "质量不错",
    "性价比很高",
    "客服态度很好",
    "颜色和图片有点色差",
    "用了一个星期就坏了",
    "非常满意，会回购",
    "尺码偏小，建议买大一号",
    "味道有点怪",
    "发货速度快",
    "宝贝收到了，和描述的一样",
    "电池续航大概十个小时",
    "不推荐购买",
    "五星好评",
    "做工精细，手感很好",
    "说明书看不懂",
    "已经是第三次购买了",
)
_EN_END = (".", "!", "!!!", "?", "...", " :)", "")
_ZH_END = ("。", "！", "！！", "？", "～", "")
_EMOJI = (
    "👍",
    "😂",
    "❤️",
    "🔥",
    "😡",
    "👎🏽",
    "🇨🇳",
    "🇺🇸",
    "👨‍👩‍👧",
    "⭐⭐⭐⭐⭐",
    "🙏",
    "💯",
    "1️⃣",
)
_URLS = (
    "https://shop.example.com/item/12345?ref=review&lang=en",
    "http://t.example.cn/A6x9Zk",
    "www.example.org/returns",
    "https://img.example.com/p/IMG_0042.jpg",
)
_EMAILS = ("buyer123@example.com", "service@shop.example.cn")
_MOJIBAKE = ("cafÃ©", "naÃ¯ve", "Ã©tÃ© parfait", "â€œniceâ€\x9d")
_UNITS = {"en": (" days", " stars", "GB", "$", " pcs"), "zh": ("天", "个", "元", "星", "GB")}


def _fullwidth_number(value: int) -> str:
    return "".join(chr(0xFF10 + int(digit)) for digit in str(value))


class ReviewGenerator:
    """Reviews from one seeded random stream: `short()` (20-400 characters) and `long()`
    (20-200 KB of UTF-8), each English, Chinese or mixed."""

    def __init__(self, seed: int = 0) -> None:
        self.rng = random.Random(seed)
        self._pieces: tuple[tuple[Callable[[Language], str], float], ...] = (
            (self._sentence, 10.0),
            (self._emoji, 2.0),
            (self._html, 1.5),
            (self._number, 1.0),
            (self._url, 0.6),
            (self._shout, 0.4),
            (self._mojibake, 0.3),
            (self._email, 0.2),
            (self._newline, 0.8),
        )
        self._piece_weights = [weight for _, weight in self._pieces]

    def language(self) -> Language:
        languages: tuple[Language, ...] = ("en", "zh", "mixed")
        return self.rng.choices(languages, weights=(40, 35, 25))[0]

    def short(self, language: Language | None = None) -> str:
        lang = language or self.language()
        size = self.rng.randint(*SHORT_CHARS)
        parts: list[str] = []
        length = 0
        while length < size:
            part = self._piece(lang)
            parts.append(part)
            length += len(part)
        return "".join(parts)[:size]

    def long(self, language: Language | None = None) -> str:
        lang = language or self.language()
        size = self.rng.randint(*LONG_BYTES)
        parts: list[str] = []
        nbytes = 0
        while nbytes < size:
            paragraph = "".join(self._piece(lang) for _ in range(self.rng.randint(5, 30)))
            parts.append(paragraph + self.rng.choice(("\n\n", "<br/><br/>", "</p><p>")))
            nbytes += len(parts[-1].encode("utf-8"))
        return "".join(parts)

    def _piece(self, lang: Language) -> str:
        make = self.rng.choices(self._pieces, weights=self._piece_weights)[0][0]
        return make(lang)

    def _pick_language(self, lang: Language) -> Literal["en", "zh"]:
        if lang == "mixed":
            return "en" if self.rng.random() < 0.5 else "zh"
        return lang

    def _sentence(self, lang: Language) -> str:
        if self._pick_language(lang) == "zh":
            return self.rng.choice(_ZH) + self.rng.choice(_ZH_END)
        sentence = self.rng.choice(_EN)
        if self.rng.random() < 0.2:
            sentence = sentence.lower()
        return sentence + self.rng.choice(_EN_END) + " "

    def _emoji(self, lang: Language) -> str:
        return self.rng.choice(_EMOJI) * self.rng.choice((1, 1, 1, 2, 3)) + " "

    def _html(self, lang: Language) -> str:
        words = self._sentence(lang).strip()
        return self.rng.choice(
            (
                f"<b>{words}</b> ",
                f"{words}<br/>",
                f"<p>{words}</p>",
                f"<i>{words}</i> &amp; more ",
                f"&quot;{words}&quot; ",
                f"{words}&nbsp;",
            )
        )

    def _number(self, lang: Language) -> str:
        value = self.rng.choice((1, 2, 3, 5, 7, 10, 30, 99, 128, 2024))
        digits = _fullwidth_number(value) if self.rng.random() < 0.5 else str(value)
        return f"{digits}{self.rng.choice(_UNITS[self._pick_language(lang)])} "

    def _url(self, lang: Language) -> str:
        return f" {self.rng.choice(_URLS)} "

    def _email(self, lang: Language) -> str:
        return f" {self.rng.choice(_EMAILS)} "

    def _shout(self, lang: Language) -> str:
        if self._pick_language(lang) == "zh":
            return self.rng.choice(("哈哈哈哈哈哈", "好好好好好", "！！！！！")) + " "
        return self.rng.choice(("soooooo good", "WOW!!!!!!", "nooooo")) + " "

    def _mojibake(self, lang: Language) -> str:
        return self.rng.choice(_MOJIBAKE) + " "

    def _newline(self, lang: Language) -> str:
        return self.rng.choice(("\n", "\r\n", "\n\n", "\t"))


def records(seed: int = 0, *, long_ratio: float = 0.001) -> Iterator[dict[str, str]]:
    """An endless stream of {"id", "text"} records, mostly short reviews."""
    gen = ReviewGenerator(seed)
    index = 0
    while True:
        long = gen.rng.random() < long_ratio
        yield {"id": f"r{index:07d}", "text": gen.long() if long else gen.short()}
        index += 1


def ndjson_records(n_bytes: int, seed: int = 0, *, long_ratio: float = 0.001) -> bytes:
    """An NDJSON body of at least `n_bytes` (the last record may go past it): one
    {"id", "text"} object a line, every line ending in a newline, so the number of records is
    `body.count(b"\\n")` (JSON escapes the newlines inside a text)."""
    lines: list[bytes] = []
    size = 0
    for record in records(seed, long_ratio=long_ratio):
        if size >= n_bytes:
            break
        line = json.dumps(record, ensure_ascii=False).encode("utf-8") + b"\n"
        lines.append(line)
        size += len(line)
    return b"".join(lines)
