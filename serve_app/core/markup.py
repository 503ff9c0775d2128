"""HTML for review text: drop tags, comments and <script>/<style> blocks, decode entities.

Pure and linear: one scan per round, a bounded number of rounds. `strip_html` leaves text that
`html_unsettled` says a second call would change only for inputs nested deeper than the rounds.
"""

from __future__ import annotations

import re
from html.entities import html5

# --- HTML --------------------------------------------------------------------------------------
# Only known element names count as tags, so "<3", "a < b", "<great>" and "<me@x.com>" stay text.
# A tag runs to the first ">" (as in HTML5, "<" inside is just a character). Removing markup can
# join "<b" and "r>" into a new tag, so the scanner re-checks each seam: one pass reaches the state
# a second pass would leave alone, in linear time.

_TAG_NAMES = frozenset(
    """
a abbr acronym address area article aside audio b base basefont bdi bdo big blink blockquote body
br button canvas caption center cite code col colgroup data datalist dd del details dfn dialog
dir div dl dt em embed fieldset figcaption figure font footer form frame frameset h1 h2 h3 h4 h5 h6
head header hgroup hr html i iframe img input ins kbd label legend li link main map mark marquee
menu meta meter nav nobr noembed noframes noscript object ol optgroup option output p param picture
plaintext pre progress q rp rt ruby s samp script search section select slot small source span
strike strong style sub summary sup svg table tbody td template textarea tfoot th thead time title
tr track tt u ul var video wbr xmp
""".split()
)
# Removing one of these leaves a space, as a browser's innerText and Elasticsearch's html_strip
# do: "<p>Great.</p><p>Works</p>" has two sentences, "fast<br>cheap" two words. Inline elements
# ("<b>gr</b>eat") leave nothing. Namespaced names (Word's "o:p", "w:p") go by their local name.
_BLOCK_NAMES = frozenset(
    """
address article aside blockquote body br caption center dd details dialog dir div dl dt fieldset
figcaption figure footer form frame frameset h1 h2 h3 h4 h5 h6 head header hgroup hr html legend li
listing main menu nav ol optgroup option p plaintext pre search section summary table tbody td
tfoot th thead title tr ul xmp
""".split()
)
# Names are checked against the set afterwards: an alternation of 120 names costs 4 us per "<".
# "prefix:name" is an XML-namespaced element, as Office pastes them (<o:p>, <w:sdt>, <v:shape>).
_NAME = r"[A-Za-z][A-Za-z0-9-]{0,63}+(?::[A-Za-z][A-Za-z0-9-]{0,63}+)?"
_MARKUP_START = re.compile(
    rf"<(?:(?P<comment>!--)|![A-Za-z\[]|\?[A-Za-z]|/?(?P<name>{_NAME})(?=[\s/>]))",
    re.ASCII,
)
_PROBE = 136  # longer than any markup start: "</" + a 129-character name + lookahead
# The end of already-emitted text that could still become a markup start once text follows it.
_PENDING = re.compile(
    r"<(?:!-?|\?|/?(?:[A-Za-z][A-Za-z0-9-]{0,63}(?::(?:[A-Za-z][A-Za-z0-9-]{0,63})?)?)?)\Z",
    re.ASCII,
)
_PENDING_LAST = frozenset("<!-?/:abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
# A tag ends at the first ">" outside a quoted attribute value (HTML5's attribute value states):
# '<a href="/x?a>b">' is one tag. Possessive throughout, so a failed match never backtracks; it
# fails only when a quoted value runs past the last ">", and then the tag ends at its first ">".
_TAG_REST = re.compile(r"""(?:[^>"'=]++|=[\t\n\f\r ]*+(?:"[^"]*+"|'[^']*+')?+|["'])*+>""")
# A removed block element's space, in the list of kept spans.
_SPACE = (-1, -1)
_RAW_TEXT_CLOSE = {
    name: re.compile(rf"</{name}(?=[\s/>])", re.IGNORECASE | re.ASCII)
    for name in ("script", "style")
}


# The usual review holds only plain tags: one substitution removes them, as the scanner below
# would, unless a seam could join pieces into new markup. That takes a pending markup start
# ("<", "</", "<b") kept right before a removed tag, or a "<" inside a candidate that is no tag
# ("<great <b>"): then the scanner runs from the block tag before the seam to the first point
# after it where nothing is pending (a 250 KB review with one seam is not scanned whole), and
# for comments, "<!x>", "<?x" and <script>/<style> it runs on the whole text.
# Block tags leave a space as the scanner does, one per run and none at the start: spaces count,
# as ftfy reads a space right after mojibake as its lost NBSP ("â€ " is "†").
_PLAIN_TAG = re.compile(rf"</?({_NAME})(?=[\s/>]){_TAG_REST.pattern}", re.ASCII)
_NOT_PLAIN = re.compile(r"<[!?]|<(?:script|style)(?=[\s/>])", re.IGNORECASE | re.ASCII)
# A quote left open inside a candidate tag may close past the last ">", where the scanner sees it
# and this substitution (cut at that ">") does not: such a tag ends differently, so scan.
_CLOSED_VALUE = re.compile(r"""=[\t\n\f\r ]*(?:"[^"]*"|'[^']*')""")


_NOT_A_TAG, _INLINE, _BLOCK = "text", "inline", "block"
# Names as written ("BR", "br", "o:p") and what they are, remembered: a review's tags are few.
_TAG_KINDS: dict[str, str] = {}


def _tag_kind(written: str) -> str:
    name = written.lower()
    if name in _TAG_NAMES or "-" in name or ":" in name:
        kind = _BLOCK if name.rpartition(":")[2] in _BLOCK_NAMES else _INLINE
    else:
        kind = _NOT_A_TAG
    if len(_TAG_KINDS) >= 4096:  # bounded whatever names the input makes up
        _TAG_KINDS.clear()
    _TAG_KINDS[written] = kind
    return kind


def _plain_tags(text: str) -> str:
    """The scanner's result, by one substitution-like pass over the tags; the scanner takes over
    only around a seam, from the last block tag before it (where its state is empty: nothing
    pending crosses the block's space) to the first such point after it."""
    stop = text.rfind(">") + 1  # a tag needs a ">": past the last one, "<a " would scan to the end
    pieces: list[str] = []  # never empty strings, so `pieces` says whether anything is kept
    done = kept_from = 0  # text[:done] is in pieces; the text kept since the last tag starts at
    spaced = False  # pieces end with a block's space (a second block adds none, as in _scan)
    reset = reset_pieces = 0  # the last block tag's end, and len(pieces) there
    reset_spaced = False
    at = 0
    while True:
        for match in _PLAIN_TAG.finditer(text, at, stop):
            kind = _TAG_KINDS.get(match[1]) or _tag_kind(match[1])
            start = match.start()
            if kind is not _NOT_A_TAG:
                lo = max(kept_from, start - _PROBE)
                # a pending start holds a "<": most often there is none to search from
                if text.find("<", lo, start) >= 0 and _PENDING.search(text, lo, start):
                    break
                tag = match[0]
                if ('"' in tag or "'" in tag) and any(
                    q in _CLOSED_VALUE.sub("", tag) for q in "\"'"
                ):
                    break
                if start > done:
                    pieces.append(text[done:start])
                    spaced = False
                done = kept_from = match.end()
                if kind is _BLOCK:
                    if pieces and not spaced:
                        pieces.append(" ")
                        spaced = True
                    reset, reset_pieces, reset_spaced = done, len(pieces), spaced
            elif "<" in match[0][1:]:
                break
        else:
            if done == 0:
                return text
            if done < len(text):
                pieces.append(text[done:])
            return "".join(pieces)
        del pieces[reset_pieces:]
        kept, at = _scan(text, reset, start)
        if kept:
            pieces.append(_joined(kept, text))
            spaced = kept[-1] is _SPACE
        else:
            spaced = reset_spaced
        done = kept_from = reset = at
        reset_pieces, reset_spaced = len(pieces), spaced
        if at >= len(text):
            return "".join(pieces)


def _strip_tags(text: str) -> str:
    if "<" not in text:
        return text
    if _NOT_PLAIN.search(text) is None:
        return _plain_tags(text)
    return _scan_tags(text)


def _scan_tags(text: str) -> str:
    kept, _ = _scan(text, 0, len(text))
    return text if kept[0] == (0, len(text)) else _joined(kept, text)


def _joined(kept: list[tuple[int, int]], text: str) -> str:
    return "".join([" " if a < 0 else text[a:b] for a, b in kept])


def _scan(text: str, begin: int, until: int) -> tuple[list[tuple[int, int]], int]:
    """Markup removed from text[begin:]: the kept spans (or _SPACE) and where they end, which is
    the end of the text, or the first point past `until` where nothing kept is pending."""
    kept: list[tuple[int, int]] = []  # spans of text, never empty, or _SPACE; sliced at the end
    pos = scan = begin
    stop = text.rfind(">") + 1  # markup needs a ">" after its start
    absent: set[str] = set()  # closers known to be missing from the rest of the text
    while (start := _MARKUP_START.search(text, scan, stop)) is not None:
        if not _is_markup(start):
            scan = start.start() + 1
            continue
        end = _markup_end(text, start, start.end(), absent)
        if end < 0:  # no ">" left, so no later "<" can start markup either
            break
        if start.start() > pos:
            kept.append((pos, start.start()))
        pos, block = _rejoin(kept, text, end, absent, _is_block(start))
        # A space after a pending "<b" would make "<b r>" a tag for the next pass: there the
        # block's space is dropped instead, and the text stays settled.
        if block and kept and kept[-1] is not _SPACE and not _pending(kept, text):
            kept.append(_SPACE)
        scan = pos
        if pos > until and block and (not kept or kept[-1] is _SPACE):
            return kept, pos
    kept.append((pos, len(text)))
    return kept, len(text)


def _is_markup(start: re.Match[str]) -> bool:
    name = start["name"]
    return name is None or "-" in name or ":" in name or name.lower() in _TAG_NAMES


def _is_block(start: re.Match[str]) -> bool:
    name = start["name"]
    return name is not None and name.rpartition(":")[2].lower() in _BLOCK_NAMES


def _markup_end(text: str, start: re.Match[str], after: int, absent: set[str]) -> int:
    if start["comment"] and "-->" not in absent:
        close = text.find("-->", after)
        if close >= 0:
            return close + 3
        absent.add("-->")
    gt = text.find(">", after)
    if gt < 0:
        return -1
    name = (start["name"] or "").lower()
    if name:
        tag = _TAG_REST.match(text, after)
        if tag is not None:
            gt = tag.end() - 1
    if name in _RAW_TEXT_CLOSE and not start[0].startswith("</") and name not in absent:
        close_tag = _RAW_TEXT_CLOSE[name].search(text, gt + 1)
        close_gt = -1 if close_tag is None else text.find(">", close_tag.end())
        if close_gt >= 0:
            return close_gt + 1
        absent.add(name)
    return gt + 1


def _pending(kept: list[tuple[int, int]], text: str) -> re.Match[str] | None:
    a, b = kept[-1]
    if text[b - 1] not in _PENDING_LAST:
        return None
    # A pending start holds one "<", its first character: most often it is in the last span.
    lt = text.rfind("<", max(a, b - _PROBE), b)
    if lt >= 0:
        return _PENDING.match(text, lt, b)
    if b - a >= _PROBE:
        return None
    return _PENDING.search(_tail(kept, text, _PROBE))


def _rejoin(
    kept: list[tuple[int, int]], text: str, pos: int, absent: set[str], block: bool
) -> tuple[int, bool]:
    while kept and kept[-1] is not _SPACE:
        pending = _pending(kept, text)
        if pending is None:
            break
        start = _MARKUP_START.match(pending[0] + text[pos : pos + _PROBE])
        if start is None or not _is_markup(start):
            break
        end = _markup_end(text, start, pos + start.end() - len(pending[0]), absent)
        if end < 0:
            break
        _drop_tail(kept, len(pending[0]))
        pos = end
        block = block or _is_block(start)
    return pos, block


def _tail(kept: list[tuple[int, int]], text: str, size: int) -> str:
    pieces: list[str] = []
    for a, b in reversed(kept):  # spans are never empty, so this reads at most `size` of them
        if a < 0:  # a space: no markup start reaches across it
            break
        piece = text[max(a, b - size) : b]
        pieces.append(piece)
        size -= b - a
        if size <= 0 or "<" in piece:  # a markup start holds one "<", at its start
            break
    return "".join(reversed(pieces))


def _drop_tail(kept: list[tuple[int, int]], size: int) -> None:
    while size:
        a, b = kept.pop()
        if b - a > size:
            kept.append((a, b - size))
            return
        size -= b - a


# Entities need their ";" (the legacy "&amp" forms would turn "&copy" in "&copyright" into "©").
# Decoding is repeated to a fixpoint ("&amp;lt;" -> "<"), which a second pass would otherwise do.
# A numeric reference may have any number of digits ("&#x00000041;" is "A", "&#4294967361;" is
# out of range): HTML5 reads them all.
_ENTITY = re.compile(r"&(?:#[0-9]+|#[xX][0-9A-Fa-f]+|[A-Za-z][A-Za-z0-9]{0,31});")
_ENTITY_AT_END = re.compile(_ENTITY.pattern + r"\Z")
_LONGEST_ENTITY = 34  # longer only with more digits: _entity_at_end reaches back over them
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
_ENTITY_CHARS = frozenset("&#;0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def _decode_entity(ref: str) -> str | None:
    if ref[1] == "#":
        return _numeric_reference(ref)
    return html5.get(ref[1:])


def _numeric_reference(ref: str) -> str:
    # HTML5's rules: U+FFFD for zero, surrogates and past U+10FFFF, the cp1252 character for
    # 0x80-0x9F where it has one, else the code point itself, controls and noncharacters too
    # (html.unescape drops those: "&#x10FFFF;" gave nothing).
    hexadecimal = ref[2] in "xX"
    digits = ref[3 if hexadecimal else 2 : -1].lstrip("0")
    if len(digits) > (6 if hexadecimal else 7):  # past U+10FFFF, and int() stays cheap
        return "\ufffd"
    code = int(digits or "0", 16 if hexadecimal else 10)
    if code == 0 or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
        return "\ufffd"
    if 0x80 <= code <= 0x9F:
        try:
            return bytes([code]).decode("cp1252")
        except UnicodeDecodeError:  # 0x81, 0x8D, 0x8F, 0x90, 0x9D: no cp1252 character
            return chr(code)
    return chr(code)


def _entity_at_end(out: list[str]) -> re.Match[str] | None:
    start = len(out) - _LONGEST_ENTITY
    digit = len(out) - 2  # out ends with ";"
    while digit >= 0 and out[digit] in _HEX_DIGITS:
        digit -= 1
    return _ENTITY_AT_END.search("".join(out[max(0, min(start, digit - 2)) :]))


def _decode_entities(text: str) -> str:
    if "&" not in text:
        return text
    may_form_more = False

    def decode(match: re.Match[str]) -> str:
        nonlocal may_form_more
        decoded = _decode_entity(match[0])
        if decoded is None:
            return match[0]
        may_form_more = may_form_more or not _ENTITY_CHARS.isdisjoint(decoded)
        return decoded

    text = _ENTITY.sub(decode, text)
    if may_form_more and any(_decode_entity(m[0]) is not None for m in _ENTITY.finditer(text)):
        return _decode_entities_to_fixpoint(text)
    return text


def _decode_entities_to_fixpoint(text: str) -> str:
    # Every entity ends in ";": after each ";" decode whatever entity now ends the output. A
    # decoded ";" may close one more ("&amp&semi;"), a decoded "&" opens the next ("&amp;lt;").
    out: list[str] = []
    pos = 0
    while (semi := text.find(";", pos)) >= 0:
        out.extend(text[pos : semi + 1])
        pos = semi + 1
        while (ref := _entity_at_end(out)) is not None:
            decoded = _decode_entity(ref[0])
            if decoded is None:
                break
            del out[-len(ref[0]) :]
            out.extend(decoded)
            if not decoded.endswith(";"):
                break
    out.extend(text[pos:])
    return "".join(out)


_HTML_ROUNDS = 4


def strip_html(text: str) -> str:
    for _ in range(_HTML_ROUNDS):
        stripped = _strip_tags(text)
        text = _decode_entities(stripped)
        if text.count("<") <= stripped.count("<"):  # else "&lt;b&gt;" may have decoded into a tag
            break
    return text


def html_unsettled(text: str) -> bool:
    if "<" in text and _strip_tags(text) != text:
        return True
    return "&" in text and any(_decode_entity(m[0]) is not None for m in _ENTITY.finditer(text))
