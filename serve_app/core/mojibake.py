"""Repair UTF-8 mojibake read as Latin-1/cp1252 ("cafÃ©" -> "café") with ftfy, on the damaged
spans only. Pure: no Ray, no HTTP. `fix` is the standard preset's fix_encoding step."""

from __future__ import annotations

import functools
import re
from re import _constants as sre_constants  # type: ignore[attr-defined]
from re import _parser as sre_parser  # type: ignore[attr-defined]
from typing import Any

import ftfy
from ftfy import badness, chardata, fixes

__all__ = ["fix"]

# Encoding repair only. ftfy's defaults would also fold widths and NFKC-normalize (turning
# "，！？" into ",!?"), uncurl quotes, unescape HTML and drop controls: other options own those.
_FTFY_CONFIG = ftfy.TextFixerConfig(
    unescape_html=False,
    remove_terminal_escapes=False,
    fix_encoding=True,
    restore_byte_a0=True,
    replace_lossy_sequences=True,
    decode_inconsistent_utf8=True,
    fix_c1_controls=True,
    fix_latin_ligatures=False,
    fix_character_width=False,
    uncurl_quotes=False,
    fix_line_breaks=False,
    fix_surrogates=False,
    remove_control_chars=False,
    normalization=None,
    explain=False,
)
# ftfy's own first check is slow on long texts (docs/performance.md), so look for the shape
# of the damage first. UTF-8 read as Latin-1/cp1252 puts a lead byte (0xC2-0xF4: "Â".."ô")
# right before a continuation byte (0x80-0xBF as Latin-1 or cp1252), or before a space where
# an NBSP (0xA0) was lost; stray C1 controls are cp1252 read as Latin-1. Accented text
# ("café", "naïve") has a lead byte but no continuation after it. Mojibake through other code
# pages (cp1251, MacRoman) is left alone.
_CONTINUATION = (
    "\x80-\xbf\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6\u02dc\u2013\u2014"
    "\u2018-\u201a\u201c-\u201e\u2020-\u2022\u2026\u2030\u2039\u203a\u20ac\u2122\ufffd"
)
_LEAD_OR_C1 = re.compile("[\x80-\x9f\xc2-\xf4]")
# Whitespace as the final collapse will leave it: "Ã" and a line break is "Ã" and a space then.
# One character class first, so that `re` skips to the candidates (an alternation of classes
# would be tried at every position: 3x slower).
_MOJIBAKE_HINT = re.compile(
    f"[\x80-\x9f\xc2-\xf4](?:(?<=[\x80-\x9f])|(?<=[\xc2-\xf4])(?:[{_CONTINUATION}]"
    f"|(?<=[\xc2\xc3])\\s|(?<=[\xe0-\xf4])[^\\S\x85]+[{_CONTINUATION}]))"
)


# ftfy weighs a whole text at once, so one damaged word in a 500 KB review would cost the
# whole text's ftfy time (docs/performance.md, "ftfy only on the damaged spans"). Only the
# damage and some context around it go to ftfy; spans closer than the context merge, so a run
# of mojibake is never cut, and a short text is still one span.
_CONTEXT = 64
# What the collapse at the end would change (NEL is left alone: as cp1252 it is "…").
_BLANK_RUN = re.compile(r"[^\S\x85]{2,}|[^\S \x85]")
_MOJIBAKE_CHAR = frozenset(
    chr(c) for c in [*range(0x80, 0x100), *map(ord, "ŒœŠšŸŽžƒˆ˜–—‘’‚“”„†‡•…‰‹›€™\ufffd")]
)


def _spaced_as_collapsed(run: re.Match[str]) -> str:
    # A space or NBSP right after a byte of mojibake may be that mojibake's lost NBSP ("â€ "
    # is "†"): it stays, for ftfy to take, and the rest of the run is the one space.
    blank = run[0]
    start = run.start()
    if start and blank[0] in " \xa0" and run.string[start - 1] in _MOJIBAKE_CHAR:
        return blank[0] + " " if len(blank) > 1 else blank
    return " "


def fix(text: str) -> str:
    if text.isascii() or _LEAD_OR_C1.search(text) is None:
        return text
    pieces: list[str] = []
    done = 0  # text[:done] is in pieces
    span_start = span_end = -1
    for hint in _MOJIBAKE_HINT.finditer(text):
        start, end = max(hint.start() - _CONTEXT, done), hint.end() + _CONTEXT
        if span_end >= 0 and start <= span_end:
            span_end = max(span_end, end)
            continue
        if span_end >= 0:
            pieces.append(_fix_span(text[span_start:span_end]))
            done = span_end
        pieces.append(text[done:start])
        span_start, span_end = start, end
    if span_end < 0:
        return text
    pieces.append(_fix_span(text[span_start:span_end]))
    pieces.append(text[span_end:])
    return "".join(pieces)


def _fix_span(span: str) -> str:
    # ftfy sees whitespace as the collapse at the end leaves it, as a second pass would: "Ã" then
    # a line break is left alone, "Ã" then a space is a lost NBSP ("Ã\xa0" = "à"). Fixing the
    # text with its final spacing settles it in one pass, with no second pass to find that.
    return _fix_encoding(_BLANK_RUN.sub(_spaced_as_collapsed, span))


# ftfy.fix_encoding, faster on spans that no single-byte code page can encode (a CJK character
# or an emoji among the context: most spans of real reviews). ftfy would try every code page,
# then repair each UTF-8-looking piece alone, calling itself on it with a fresh config each
# time; here the pieces' repairs are cached (they are few: "Ã©", "â€œ", ...), and a span that
# one code page can encode goes to ftfy itself. A copy of ftfy 6.3's
# `_fix_encoding_one_step_and_explain`: used only with that version (the tests compare both).
_PORTED = ftfy.__version__.startswith("6.3.")
_CODE_PAGES = tuple(chardata.CHARMAP_ENCODINGS)
# A character that no code page can encode (most CJK and emoji): one scan says ftfy's code
# pages are all out, where trying each would scan up to it ten times. The characters are read
# from ftfy's own checks.
_ANY_CODE_PAGE = {
    char
    for char in {
        *map(chr, range(0x80)),
        *"".join(chardata.ENCODING_REGEXES[p].pattern for p in _CODE_PAGES),
    }
    if any(chardata.possible_encoding(char, page) for page in _CODE_PAGES)
}
_NO_CODE_PAGE = re.compile(f"[^{''.join(map(re.escape, sorted(_ANY_CODE_PAGE)))}]")


def _fix_encoding(text: str) -> str:
    if not _PORTED:
        return ftfy.fix_encoding(text, _FTFY_CONFIG)
    while True:  # ftfy's loop: steps until one changes nothing
        fixed = _fix_one_step(text)
        if fixed is None:  # from here on, as ftfy goes (its loop keeps no state but the text)
            return ftfy.fix_encoding(text, _FTFY_CONFIG)
        if fixed == text:
            return text
        text = fixed


def _fix_one_step(text: str) -> str | None:
    """One step of ftfy's encoding repair, or None where a code page can encode the text."""
    if not text or text.isascii() or not _is_bad(text):
        return text
    if _NO_CODE_PAGE.search(text) is None and any(
        chardata.possible_encoding(text, page) for page in _CODE_PAGES
    ):
        return None
    if chardata.UTF8_DETECTOR_RE.search(text):
        size = len(text)
        fixed = chardata.UTF8_DETECTOR_RE.sub(
            lambda piece: _fixed_piece(piece[0]) if len(piece[0]) < size else piece[0], text
        )
        if fixed != text:
            return fixed
    # No code page can encode the text, so ftfy's Latin-1 step does not apply.
    if chardata.C1_CONTROL_RE.search(text):
        return fixes.fix_c1_controls(text)
    return text


@functools.lru_cache(maxsize=4096)
def _fixed_piece(piece: str) -> str:
    # As ftfy.fixes.decode_inconsistent_utf8 repairs a piece, default config included.
    return ftfy.fix_encoding(piece) if badness.is_bad(piece) else piece


# ftfy's `is_bad` (its BADNESS_RE: some 40 alternatives tried at every position) was most of
# the repair's time. Each alternative is a few characters long and one of them must be from a
# small set of non-ASCII characters (Ã, Â, €, ...): a match can only be near one, so the search
# runs on short windows around them. The set and the longest match come from the pattern
# itself, read at import; with a pattern of another shape, ftfy's own check is used.
def _badness_keys(pattern: re.Pattern[str]) -> tuple[re.Pattern[str], int] | None:
    if pattern.flags & re.IGNORECASE:
        return None
    tree = sre_parser.parse(pattern.pattern, pattern.flags)
    width: int = tree.getwidth()[1]
    if len(tree) != 1 or tree[0][0] is not sre_constants.BRANCH or width > 16:
        return None
    keys: set[int] = set()
    for alternative in tree[0][1][1]:
        choices = [found for item in alternative if (found := _item_chars(*item)) is not None]
        choices = [chars for chars in choices if min(chars) >= 0x80]
        if not choices:
            return None
        keys |= min(choices, key=len)
    listed = "".join(re.escape(chr(c)) for c in sorted(keys))
    return re.compile(f"[{listed}]"), width


def _item_chars(op: object, value: Any) -> set[int] | None:
    """The characters one item of a parsed pattern matches, if it is one of a listed set."""
    if op is sre_constants.LITERAL:
        return {value}
    if op is not sre_constants.IN:
        return None
    chars: set[int] = set()
    for kind, arg in value:
        if kind is sre_constants.LITERAL:
            chars.add(arg)
        elif kind is sre_constants.RANGE:
            chars.update(range(arg[0], arg[1] + 1))
        else:  # a category or a negation: not a small set
            return None
    return chars


_BADNESS_KEYS = _badness_keys(badness.BADNESS_RE)


def _is_bad(text: str) -> bool:
    """`ftfy.badness.is_bad(text)`."""
    if _BADNESS_KEYS is None:
        return badness.is_bad(text)
    keys, width = _BADNESS_KEYS
    search = badness.BADNESS_RE.search
    # Every match holding a key at `at` lies in text[at - width + 1 : at + width]; keys whose
    # windows overlap share one. Searched with pos/endpos, so "^" still means the text's start.
    start = end = -1
    for key in keys.finditer(text):
        at = key.start()
        if at - width + 1 < end:
            end = at + width
            continue
        if end >= 0 and search(text, start, end) is not None:
            return True
        start, end = max(0, at - width + 1), at + width
    return end >= 0 and search(text, start, end) is not None
