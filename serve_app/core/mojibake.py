"""Repair UTF-8 mojibake read as Latin-1/cp1252 ("cafÃ©" -> "café") with ftfy, on the damaged
spans only. Pure: no Ray, no HTTP. `fix` is the standard preset's fix_encoding step."""

from __future__ import annotations

import re

from serve_app.core import ftfy_fast

__all__ = ["fix"]

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
# What the collapse at the end would change (NEL is left alone: as cp1252 it is "…"): a run of
# two or more blanks, or one that is not a space. One class first, as above: 4.6 -> 2.6 us per
# span against the alternation `[^\S\x85]{2,}|[^\S \x85]`, which `re` tries at every position.
_BLANK_RUN = re.compile(r"[^\S\x85](?:[^\S\x85]+|(?<! ))")
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
    return ftfy_fast.fix_encoding(_BLANK_RUN.sub(_spaced_as_collapsed, span))
