"""Clean review text: text + CleanOptions -> text. Pure: no Ray, no HTTP, no pydantic.

Option           Default     Effect (standard preset)
preset           "standard"  "minimal": text.replace("\\n", " ").strip() and nothing else
normalize        "NFC"       "NFC", "NFKC" (also folds ，！？ to ,!?) or None; cuts mark runs to 30
fix_encoding     True        repair UTF-8 mojibake read as Latin-1/cp1252 ("cafÃ©" -> "café")
strip_html       True        drop tags, comments and <script>/<style> blocks, decode entities; block
                             tags and <br> leave a space (innerText), inline tags nothing
urls             "keep"      http(s)/ftp/www. links: "keep", "remove" or "mask" (-> URL_MASK)
emails           "keep"      addresses: "keep", "remove" or "mask" (-> EMAIL_MASK)
emoji            "keep"      "remove" drops emoji with skin tones, flags, keycaps, VS15/VS16, tags,
                             and ZWJ sequences whole
fullwidth_alnum  True        Ａ-Ｚ ａ-ｚ ０-９ and U+3000 -> ASCII; CJK punctuation is never touched
lowercase        False       str.lower() (not casefold: "ß" stays "ß"); mask tokens are kept as is
max_repeat       None        squash a run of one code point longer than N to N (N >= 1)
to_simplified    False       Traditional -> Simplified Chinese (OpenCC t2s): 質量 -> 质量
pii              ()          mask "phone", "id_card", "email" as [PHONE], [ID], [EMAIL]
                             (core/analysis/pii.py says what is and is not masked)
Always (standard): C0/C1 controls, zero-width characters (U+200B-U+200D, U+2060, U+FEFF) and lone
surrogates are dropped, surrogate pairs are joined, whitespace runs become one space, ends stripped.

The standard preset is idempotent: clean(clean(x, o), o) == clean(x, o). Steps can re-enable each
other (dropping an emoji can join "&am" and "p;"), so a pass ends with a check of the steps a later
step can undo, and the pass repeats (bounded) until the text is settled. Every pattern is linear.
"""

from __future__ import annotations

import array
import functools
import re
import sys
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

import regex

from serve_app.core import markup, mojibake
from serve_app.core.analysis import pii as pii_masks
from serve_app.core.analysis import simplify

__all__ = ["EMAIL_MASK", "URL_MASK", "CleanOptions", "clean", "clean_many"]

# Brackets, not angle brackets: strip_html would eat "<URL>" on a second pass.
URL_MASK = "[URL]"
EMAIL_MASK = "[EMAIL]"

LinkAction = Literal["keep", "remove", "mask"]


@dataclass(frozen=True, slots=True)
class CleanOptions:
    preset: Literal["standard", "minimal"] = "standard"
    normalize: Literal["NFC", "NFKC"] | None = "NFC"
    fix_encoding: bool = True
    strip_html: bool = True
    urls: LinkAction = "keep"
    emails: LinkAction = "keep"
    emoji: Literal["keep", "remove"] = "keep"
    fullwidth_alnum: bool = True
    lowercase: bool = False
    max_repeat: int | None = None
    to_simplified: bool = False
    pii: tuple[pii_masks.PiiKind, ...] = ()

    def __post_init__(self) -> None:
        # Literal is only checked statically; the CLI and tests build options by hand.
        allowed: dict[str, tuple[object, ...]] = {
            "preset": ("standard", "minimal"),
            "normalize": ("NFC", "NFKC", None),
            "urls": ("keep", "remove", "mask"),
            "emails": ("keep", "remove", "mask"),
            "emoji": ("keep", "remove"),
        }
        for name, values in allowed.items():
            if getattr(self, name) not in values:
                raise ValueError(f"{name} must be one of {values!r}, not {getattr(self, name)!r}")
        if self.max_repeat is not None and (
            isinstance(self.max_repeat, bool) or self.max_repeat < 1
        ):
            raise ValueError(f"max_repeat must be None or >= 1, not {self.max_repeat!r}")
        kinds = (self.pii,) if isinstance(self.pii, str) else tuple(self.pii)
        pii_masks.masker(kinds)  # raises on an unknown kind
        # canonical: equal choices share one cached pipeline (and a list becomes hashable)
        object.__setattr__(self, "pii", tuple(k for k in pii_masks.KINDS if k in kinds))


def clean(text: str, options: CleanOptions = CleanOptions()) -> str:
    """Clean one text. With the minimal preset lone surrogates pass through untouched: the HTTP
    layer rejects them before they get here; the standard preset drops them."""
    return _pipeline(options)(text)


def warm_up() -> None:
    """Build now, once per process, what the first non-ASCII text would (ftfy's tables, the
    combining-mark check: ~45 ms), so the first request does not pay for it."""
    clean("warm up: café, Ã©, 物流很快 e\u0301 <b>x</b>", CleanOptions())


def clean_many(texts: Iterable[str], options: CleanOptions = CleanOptions()) -> list[str]:
    run = _pipeline(options)
    return [run(text) for text in texts]


Step = Callable[[str], str]

# Settling takes one extra pass for texts a later step re-enables an earlier one on, a second one
# for constructed inputs; past this, nested constructions are left as they are.
_MAX_PASSES = 4


@functools.lru_cache(maxsize=128)
def _pipeline(options: CleanOptions) -> Step:
    if options.preset == "minimal":
        return _minimal
    # With emoji removal, U+200D stays until the emoji step: it tells which pictographs form one
    # ZWJ sequence ("🏃\u200d↔" is one emoji; "↔" alone is a text-style arrow and stays).
    keep_zwj = options.emoji == "remove"
    # C1 bytes are part of mojibake: keep them for ftfy
    steps: list[Step] = [_drop_invisible_keep_zwj_c1 if keep_zwj else _drop_invisible_keep_c1]
    # Checks for the steps a later one can re-enable. The others stay settled because nothing after
    # them produces what they remove: no later step (NFC/NFKC and lower() checked code point by
    # code point) makes controls, zero-width or full-width alnum characters, emoji, capitals,
    # whitespace runs or long repeats.
    unsettled: list[Callable[[str], bool]] = []
    if options.strip_html:
        steps.append(markup.strip_html)
        unsettled.append(markup.html_unsettled)
    if options.fix_encoding:
        steps.append(mojibake.fix)
        unsettled.append(_changes(mojibake.fix))
    steps.append(_drop_invisible_keep_zwj if keep_zwj else _drop_invisible)
    if options.fullwidth_alnum:  # before normalizing: "Ａ" + U+0301 only composes once it is "A"
        steps.append(_halfwidth)
    if options.emoji == "remove":  # before normalizing: dropping one can expose a combining mark
        steps.append(_remove_emoji)
    if (form := options.normalize) is not None:
        steps.append(functools.partial(_normalize, form))
    normalized_at = len(steps)
    if options.to_simplified:  # after NFC/NFKC, which fold CJK compatibility ideographs
        steps.append(simplify.to_simplified)
    if options.lowercase:  # after NFKC, which can make capitals ("ᴬ" -> "A")
        steps.append(_lowercase_step(options.pii))
    if options.urls != "keep" or options.emails != "keep":  # after lowercase: masks stay upper
        links = _link_step(options.urls, options.emails)
        steps.append(links)
        if options.max_repeat is not None:  # squashing "wwww." makes a new link
            unsettled.append(_changes(links))
    if options.pii:  # after the links: a URL mask takes the address or number inside the URL
        masks = pii_masks.masker(options.pii)
        steps.append(masks)
        if options.max_repeat is not None:  # squashing "1111" can make a number of the shape
            unsettled.append(_changes(masks))
    if form is not None:
        # Only the whitespace collapse after normalizing: it keeps every other pair of neighbours,
        # so the text stays normalized and no mark run grows (the step cut them to 30): the quick
        # check alone then says what the whole check would.
        only_collapse = normalized_at == len(steps) and options.max_repeat is None
        unsettled.append(
            functools.partial(_not_normalized if only_collapse else _unnormalized, form)
        )
    steps.append(_collapse_whitespace)
    if options.max_repeat is not None:
        steps.append(_squash_step(options.max_repeat))

    def run(text: str) -> str:
        for _ in range(_MAX_PASSES):
            for step in steps:
                text = step(text)
            for check in unsettled:
                if check(text):
                    break
            else:
                return text
        return text

    return run


def _changes(step: Step) -> Callable[[str], bool]:
    return lambda text: step(text) != text


def _minimal(text: str) -> str:
    return text.replace("\n", " ").strip()


# --- invisible characters ----------------------------------------------------------------------

_C0 = "".join(chr(c) for c in [*range(0x20), 0x7F] if not chr(c).isspace())
_C1 = "".join(chr(c) for c in range(0x80, 0xA0) if not chr(c).isspace())  # keeps NEL U+0085
_ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff"
_SURROGATES = "\ud800-\udfff"
_INVISIBLE_EARLY = re.compile(f"[{_C0}{_ZERO_WIDTH}{_SURROGATES}]")
_INVISIBLE = re.compile(f"[{_C0}{_C1}{_ZERO_WIDTH}{_SURROGATES}]")
_ZERO_WIDTH_NOT_ZWJ = _ZERO_WIDTH.replace("\u200d", "")
_INVISIBLE_EARLY_NOT_ZWJ = re.compile(f"[{_C0}{_ZERO_WIDTH_NOT_ZWJ}{_SURROGATES}]")
_INVISIBLE_NOT_ZWJ = re.compile(f"[{_C0}{_C1}{_ZERO_WIDTH_NOT_ZWJ}{_SURROGATES}]")
_SURROGATE_PAIR = re.compile("[\ud800-\udbff][\udc00-\udfff]")


def _drop_early(invisible: re.Pattern[str], text: str) -> str:
    if invisible.search(text) is None:
        return text
    if _has_surrogate(text):
        # A pair spelled as two code points is one character; only lone halves are garbage.
        text = _SURROGATE_PAIR.sub(_join_pair, text)
    return invisible.sub("", text)


def _drop_invisible_keep_c1(text: str) -> str:
    return _drop_early(_INVISIBLE_EARLY, text)


def _drop_invisible_keep_zwj_c1(text: str) -> str:
    return _drop_early(_INVISIBLE_EARLY_NOT_ZWJ, text)


def _has_surrogate(text: str) -> bool:
    """Whether `text` holds a surrogate code point: only those make UTF-8 encoding fail. The
    encoder stops at the first one and runs at ~1 GB/s: 0.7 against 1.5 ms per MB for a regex
    scan of review text that holds none (the usual case)."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return True
    return False


def _join_pair(match: re.Match[str]) -> str:
    high, low = match[0][0], match[0][1]
    return chr(0x10000 + ((ord(high) - 0xD800) << 10) + (ord(low) - 0xDC00))


def _drop_invisible(text: str) -> str:
    return _INVISIBLE.sub("", text)


def _drop_invisible_keep_zwj(text: str) -> str:
    return _INVISIBLE_NOT_ZWJ.sub("", text)


# --- normalization -----------------------------------------------------------------------------
# CPython's normalizer is quadratic in the length of a run of combining marks (32K marks: 12 s). No
# script needs more than 30 in a row (the UAX #15 stream-safe limit), so longer runs are cut to 30:
# before normalizing, for speed, and after, as decomposing can lengthen a run ("\u0f73" is two).
_MAX_MARKS = 30
# Plus the starters that decompose into non-starters only.
_NON_STARTER = r"[\p{^ccc=0}\u0f73\u0f75\u0f81\uff9e\uff9f]"
_ANY_MARK: Any = regex.compile(_NON_STARTER)


@functools.cache
def _mark_filter() -> re.Pattern[str]:
    """A `re` class that finds every non-starter and few other characters, 3x faster than the
    `regex` property: the BMP non-starters as `regex` lists them (a bitmap for `re`), and one
    range up to the last non-starter past the BMP (emoji lie beyond it). Built on first use
    (~50 ms), from every code point."""
    every = array.array("I", range(0xD800)) + array.array("I", range(0xE000, 0x110000))
    found = _ANY_MARK.findall(every.tobytes().decode(f"utf-32-{sys.byteorder[0]}e"))
    bmp = "".join(re.escape(mark) for mark in found if mark < "\U00010000")
    last = max(found)
    beyond = f"\U00010000-{re.escape(last)}" if last >= "\U00010000" else ""
    return re.compile(f"[{bmp}{beyond}]")


def _has_marks(text: str) -> bool:
    """Whether `text` holds a non-starter (`_ANY_MARK`)."""
    maybe = _mark_filter().search(text)
    return maybe is not None and _ANY_MARK.search(text, maybe.start()) is not None


# Starting only where a run starts keeps the scan linear when runs are just under the limit.
_MARK_RUN: Any = regex.compile(rf"(?<!{_NON_STARTER}){_NON_STARTER}{{{_MAX_MARKS + 1},}}")


def _cap_marks(text: str) -> str:
    capped: str = _MARK_RUN.sub(lambda run: run[0][:_MAX_MARKS], text)
    return capped


def _normalize(form: Literal["NFC", "NFKC"], text: str) -> str:
    if text.isascii():
        return text
    if not _has_marks(text):  # then no run after normalizing is longer than 2
        return unicodedata.normalize(form, text)
    return _cap_marks(unicodedata.normalize(form, _cap_marks(text)))


def _not_normalized(form: Literal["NFC", "NFKC"], text: str) -> bool:
    return not text.isascii() and not unicodedata.is_normalized(form, text)


def _unnormalized(form: Literal["NFC", "NFKC"], text: str) -> bool:
    if text.isascii():
        return False
    if _has_marks(text) and _MARK_RUN.search(text) is not None:
        return True
    return not unicodedata.is_normalized(form, text)


# --- width, emoji, case ------------------------------------------------------------------------

_FULLWIDTH_ALNUM = re.compile("[\uff10-\uff19\uff21-\uff3a\uff41-\uff5a\u3000]")


def _halfwidth(text: str) -> str:
    if text.isascii():
        return text
    return _FULLWIDTH_ALNUM.sub(_to_halfwidth, text)


def _to_halfwidth(match: re.Match[str]) -> str:
    char = match[0]
    return " " if char == "\u3000" else chr(ord(char) - 0xFEE0)


# Removed: emoji-presentation characters; pictographs in the symbol/pictograph blocks whatever
# their default presentation (☺ ❤ ✔); any pictograph asking for emoji style with VS16 (©️ ™️);
# keycaps with their base (1️⃣); skin tones, regional indicators (flags), tag characters, VS15,
# VS16 and U+20E3 themselves. Kept: text-style symbols without VS16 (© ® ™ ↔ ▶) and non-emoji
# stars and checks (★ ☆ ✓) used in ratings. Every context is keyed on a character that is
# removed too, so a second pass finds nothing.
_EMOJI: Any = regex.compile(
    r"(?V1)[#*0-9]\uFE0F?\u20E3"
    r"|\p{Extended_Pictographic}\uFE0F"
    r"|[\p{Extended_Pictographic}&&[\u2300-\u23FF\u2600-\u27BF\u2B00-\u2BFF\U0001F000-\U0001FFFF]]"
    r"|[\p{Emoji_Presentation}\p{Emoji_Modifier}\p{Regional_Indicator}"
    r"\uFE0E\uFE0F\u20E3\U000E0020-\U000E007F]"
)


# A ZWJ sequence (UTS #51) goes whole, whatever the style of its parts: "🏃\u200d↔", "👁\u200d🗨".
_ZWJ_ELEMENT = r"\p{Extended_Pictographic}[\uFE0E\uFE0F\p{Emoji_Modifier}]*+"
_ZWJ_SEQUENCE: Any = regex.compile(rf"{_ZWJ_ELEMENT}(?:\u200d{_ZWJ_ELEMENT})++")


def _remove_emoji(text: str) -> str:
    if text.isascii():
        return text
    if "\u200d" in text:
        text = _ZWJ_SEQUENCE.sub("", text).replace("\u200d", "")
    cleaned: str = _EMOJI.sub("", text)
    return cleaned


# Lowercasing skips the mask tokens so that a second pass leaves them alone.
_MASK_TOKEN = re.compile(f"({re.escape(URL_MASK)}|{re.escape(EMAIL_MASK)})")


def _lowercase(text: str, masks: re.Pattern[str] = _MASK_TOKEN) -> str:
    if "[" not in text:
        return text.lower()
    parts = masks.split(text)
    parts[::2] = [part.lower() for part in parts[::2]]
    return "".join(parts)


def _lowercase_step(pii: tuple[pii_masks.PiiKind, ...]) -> Step:
    if not pii:  # [PHONE] in a text is only a mask when masking is on
        return _lowercase
    tokens = [URL_MASK, EMAIL_MASK, *(pii_masks.MASKS[kind] for kind in pii)]
    masks = re.compile("(" + "|".join(map(re.escape, dict.fromkeys(tokens))) + ")")
    return functools.partial(_lowercase, masks=masks)


# --- links -------------------------------------------------------------------------------------
# After linkify-it (its fixtures are in the tests): a link is http(s)://, ftp:// or www., then a
# host of letters and digits in any script (bücher.de, президент.рф), then a path that may hold
# balanced (), [], {}, quotes and an apostrophe before a letter ("Foo_(bar)", "I'm_king"), and
# that ends before trailing punctuation. Chinese, Japanese and Korean text, full-width forms and
# emoji end a link: "见https://x.cn/a很好" and "https://x.com/a👍" do not join it.
# An email is a whole run: it starts where a local part can start (which also keeps "a"*N
# linear) and is not followed by more local part and "@" (else "a@b.co+c@d.co" leaves
# "+c@d.co" for the next pass). An address inside a URL is the URL's.
_INTL = (
    r"[^\x00-\x7f\p{Z}\p{P}\p{Cc}\p{Cs}\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}\p{Bopomofo}"
    r"\u3000-\u303f\uff00-\uffef\p{Extended_Pictographic}\p{Emoji_Modifier}"
    r"\p{Regional_Indicator}\ufe0e\ufe0f]"
)
_LABEL = rf"(?:[A-Za-z0-9]|{_INTL})(?:[-A-Za-z0-9]|{_INTL})*+"
_PATH_END = rf"(?:[-A-Za-z0-9_~/#@$&*+=%:]|{_INTL})"  # may end a link
_OPEN = r"(?:[-A-Za-z0-9_~/#@$&*+=%:(\[{'\"]|" + _INTL + ")"
_GROUP = (
    r"\((?:[^()\s<>]|\([^()\s<>]*+\))*+\)|\[[^\[\]\s<>]*+\]|\{[^{}\s<>]*+\}"
    r"|\"[^\"\s<>]++\"|'[^'\s<>]++'"
)
_URL = (
    r"(?P<url>(?<![A-Za-z0-9_])(?:(?:https?|ftp)://|www\.)"
    r"(?:[-A-Za-z0-9._~%!$&'*+,;=:]+@)?"  # user:password@
    rf"{_LABEL}(?:\.{_LABEL})*+(?::[0-9]{{1,5}})?+(?![_@])"
    rf"(?:(?:/|(?=[?#]))(?:{_PATH_END}++|{_GROUP}|'(?=[A-Za-z0-9-]|{_INTL})|[.,;!?]++(?={_OPEN}))*+)?+)"
)
_EMAIL = (
    r"(?P<email>(?<![-A-Za-z0-9._%+])[A-Za-z0-9._%+-]++@"
    r"[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![A-Za-z0-9-])(?![A-Za-z0-9._%+-]*+@))"
)
# Two scans merged as one alternation would match (leftmost first, a URL before an address at the
# same place): the `regex` module, needed for the URL's script classes, backtracks quadratically
# on "a@b.b.b.b..." where `re` does not.
_URL_LINK: Any = regex.compile(_URL, regex.IGNORECASE)
_EMAIL_LINK = re.compile(_EMAIL, re.ASCII)
_WWW = re.compile(r"[wW][wW][wW]\.")


def _link_step(urls: LinkAction, emails: LinkAction) -> Step:
    url_new = {"keep": None, "remove": "", "mask": URL_MASK}[urls]
    email_new = {"keep": None, "remove": "", "mask": EMAIL_MASK}[emails]

    def links(text: str) -> str:
        has_url = "://" in text or _WWW.search(text) is not None
        if not has_url and "@" not in text:
            return text
        found: list[tuple[int, int, int, str | None]] = []  # start, URL first, end, replacement
        if has_url:
            found += [(m.start(), 0, m.end(), url_new) for m in _URL_LINK.finditer(text)]
        if "@" in text:
            found += [(m.start(), 1, m.end(), email_new) for m in _EMAIL_LINK.finditer(text)]
        pieces: list[str] = []
        done = 0
        for start, _, end, new in sorted(found):
            if start < done:  # inside the link before it ("http://user@host.com")
                continue
            if new is not None:
                pieces += (text[done:start], new)
                done = end
            else:
                pieces.append(text[done:end])
                done = end
        if not pieces:
            return text
        pieces.append(text[done:])
        return "".join(pieces)

    return links


# --- whitespace and repeats --------------------------------------------------------------------


def _collapse_whitespace(text: str) -> str:
    # str.split() splits on exactly the characters str.isspace() accepts, NEL and U+3000 included.
    return " ".join(text.split())


# Every run is matched whole, so the work is linear whatever the limit: "(.)\1{N,}" would rescan
# a run shorter than N from each of its positions (N^2 per run), and a "\1" * N template
# costs time and memory in N before any text is read (max_repeat=10**8: minutes, gigabytes).
_RUN = re.compile(r"(.)\1+", re.DOTALL)


def _squash_step(limit: int) -> Step:
    def squash(match: re.Match[str]) -> str:
        run = match.group(0)
        return run if len(run) <= limit else match.group(1) * limit

    return lambda text: _RUN.sub(squash, text)
