"""`ftfy.fix_encoding` and `ftfy.badness.is_bad` (ftfy 6.3), with the same results at a fraction
of the cost on review text. Pure: no Ray, no HTTP. The tests compare both with ftfy's.

ftfy weighs a text with regular expressions tried at every position (its badness check: some 40
alternatives), tries ten code pages one after the other, and repairs each UTF-8-looking piece by
calling itself with a fresh config. Here each check skips to the characters it needs, pieces'
repairs are cached (they are few: "Ã©", "â€œ", ...), and one scan rules out all code pages
where a character no code page encodes (CJK, emoji) is present. The steps are a copy of
`ftfy._fix_encoding_one_step_and_explain`, used only with ftfy 6.3 (else ftfy itself runs).

The copied steps are adapted from ftfy 6.3 (https://github.com/rspeer/python-ftfy), Copyright
Robyn Speer, licensed under the Apache License 2.0, as this project is.
"""

from __future__ import annotations

import functools
import re
from re import _constants as sre_constants  # type: ignore[attr-defined]
from re import _parser as sre_parser  # type: ignore[attr-defined]
from typing import Any

import ftfy
from ftfy import badness, chardata, fixes

__all__ = ["fix_encoding", "is_bad"]

# The encoding steps only: the flags fix_encoding reads are all on, as in ftfy's default config,
# which its own repair of a piece uses.
CONFIG = ftfy.TextFixerConfig(
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
_PORTED = ftfy.__version__.startswith("6.3.")
_CODE_PAGES = tuple(chardata.CHARMAP_ENCODINGS)


def fix_encoding(text: str) -> str:
    """`ftfy.fix_encoding(text, CONFIG)`."""
    if not _PORTED:
        return ftfy.fix_encoding(text, CONFIG)
    while True:  # ftfy's loop: steps until one changes nothing
        fixed = _fix_one_step(text)
        if fixed == text:
            return text
        text = fixed


def _fix_one_step(text: str) -> str:
    if not text or text.isascii() or not is_bad(text):
        return text
    # Text that may have been decoded from a single-byte code page: UTF-8 read through it?
    possible: list[str] = []
    if _NO_CODE_PAGE.search(text) is None:
        for encoding in _CODE_PAGES:
            if not chardata.possible_encoding(text, encoding):
                continue
            possible.append(encoding)
            encoded = text.encode(encoding)
            try:
                decoding = "utf-8"
                if encoding != "macroman" and chardata.ALTERED_UTF8_RE.search(encoded):
                    encoded = fixes.restore_byte_a0(encoded)
                if encoding.startswith("sloppy"):
                    encoded = fixes.replace_lossy_sequences(encoded)
                if 0xED in encoded or 0xC0 in encoded:
                    decoding = "utf-8-variants"
                return encoded.decode(decoding)
            except UnicodeDecodeError:
                pass
    fixed = _decode_inconsistent_utf8(text)
    if fixed != text:
        return fixed
    if "latin-1" in possible:
        if "windows-1252" in possible:  # as ftfy writes it (its list names "sloppy-windows-1252")
            return text
        try:
            fixed = text.encode("latin-1").decode("windows-1252")
            if fixed != text:
                return fixed
        except UnicodeDecodeError:
            pass
    if chardata.C1_CONTROL_RE.search(text):
        return fixes.fix_c1_controls(text)
    return text


# A character that no code page can encode (most CJK and emoji): one scan rules them all out,
# where trying each would scan up to it ten times. The characters are read from ftfy's checks.
_ANY_CODE_PAGE = {
    char
    for char in {
        *map(chr, range(0x80)),
        *"".join(chardata.ENCODING_REGEXES[page].pattern for page in _CODE_PAGES),
    }
    if any(chardata.possible_encoding(char, page) for page in _CODE_PAGES)
}
_NO_CODE_PAGE = re.compile(f"[^{''.join(map(re.escape, sorted(_ANY_CODE_PAGE)))}]")

# ftfy's UTF8_DETECTOR_RE opens with a lookbehind, so `re` tries it at every position; each of
# its matches starts with a UTF-8 lead character: skip to those, then match there (the
# lookbehind still sees the character before).
_UTF8_LEAD = re.compile(
    "[{utf8_first_of_2}{utf8_first_of_3}{utf8_first_of_4}]".format(**chardata.UTF8_CLUES)
)


def _decode_inconsistent_utf8(text: str) -> str:
    """`ftfy.fixes.decode_inconsistent_utf8(text)`."""
    size = len(text)
    pieces: list[str] = []
    done = at = 0
    while (lead := _UTF8_LEAD.search(text, at)) is not None:
        found = chardata.UTF8_DETECTOR_RE.match(text, lead.start())
        if found is None:
            at = lead.start() + 1
            continue
        at = found.end()
        piece = found[0]
        if len(piece) < size:  # ftfy's guard against calling itself on the same text
            fixed = _fixed_piece(piece)
            if fixed != piece:
                pieces += (text[done : found.start()], fixed)
                done = at
    if not pieces:
        return text
    pieces.append(text[done:])
    return "".join(pieces)


@functools.lru_cache(maxsize=4096)
def _fixed_piece(piece: str) -> str:
    return fix_encoding(piece) if is_bad(piece) else piece


# Each alternative of ftfy's BADNESS_RE is a few characters long and one of them must be from a
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


def is_bad(text: str) -> bool:
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
