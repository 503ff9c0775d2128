"""Mask personal data in review text: phone numbers, Chinese resident ID numbers, e-mail addresses.

Kind       Mask      What is masked
phone      [PHONE]   Chinese mobiles (1[3-9] + 9 digits; optional +86/0086/86 prefix; spaces or
                     hyphens as 3-4-4), Chinese landlines written with a hyphen (010-12345678),
                     and international numbers written with "+" (+44 20 7946 0958): 8-15 digits
id_card    [ID]      18-character resident ID numbers whose region, birth date and ISO 7064
                     MOD 11-2 check character are valid (15-digit pre-1999 numbers: not masked)
email      [EMAIL]   addresses, as the `emails` clean option finds them

A number is a whole run: digits or letters right before or after it mean it is part of
something longer (an order or tracking number, a SKU), which is left alone. So are numbers
right after an order-number label (订单号, 运单号, order no., tracking #), prices, dates and
times: none has the shape above. Digits must be ASCII: run it after full-width folding.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable, Iterable
from typing import Final, Literal

__all__ = ["KINDS", "MASKS", "PiiKind", "masker"]

PiiKind = Literal["phone", "id_card", "email"]
KINDS: Final[tuple[PiiKind, ...]] = ("phone", "id_card", "email")
MASKS: Final[dict[PiiKind, str]] = {"phone": "[PHONE]", "id_card": "[ID]", "email": "[EMAIL]"}

# Not glued to letters, digits or the characters that continue a number or an address.
_BEFORE = r"(?<![A-Za-z0-9_+\-.@/])"
_AFTER = r"(?![A-Za-z0-9_@]|[-.][0-9])"
_MOBILE = r"(?:(?:\+|00)?86[ -]?)?1[3-9][0-9](?:[0-9]{8}|[ -][0-9]{4}[ -][0-9]{4})"
_LANDLINE = r"\(?0[1-9][0-9]{1,2}\)?-[2-9][0-9]{6,7}"
# "+" then a country code and groups: the "+" is what tells it from an order number.
_INTERNATIONAL = r"\+[1-9][0-9]{0,2}(?:[ -]?\(?[0-9]{1,4}\)?){1,5}[ -]?[0-9]{2,8}"
_PHONE = f"{_BEFORE}(?P<phone>{_MOBILE}|{_LANDLINE}|{_INTERNATIONAL}){_AFTER}"
_ID_CARD = rf"{_BEFORE}(?P<id_card>[1-8][0-9]{{16}}[0-9Xx]){_AFTER}"
_EMAIL = (
    r"(?P<email>(?<![-A-Za-z0-9._%+])[A-Za-z0-9._%+-]++@"
    r"[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![A-Za-z0-9-]))"
)
_PATTERNS: Final[dict[PiiKind, str]] = {"phone": _PHONE, "id_card": _ID_CARD, "email": _EMAIL}
# What an order or tracking number is introduced with, right before the number.
_ORDER_LABEL = re.compile(
    r"(?:订单|單號|单号|编号|編號|order|tracking|invoice|sku)\s*(?:no\.?|number|#|id|号|號)?"
    r"\s*[:：#]?\s*$",
    re.IGNORECASE,
)
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_DIGIT = re.compile("[0-9]")


def _valid_id(number: str) -> bool:
    total = sum(int(d) * w for d, w in zip(number[:17], _ID_WEIGHTS, strict=True))
    if _ID_CHECK[total % 11] != number[17].upper():
        return False
    try:
        born = datetime.date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        return False
    return datetime.date(1900, 1, 1) <= born


def _digits(number: str) -> int:
    return sum(c.isdigit() for c in number)


def masker(kinds: Iterable[PiiKind]) -> Callable[[str], str]:
    """One pass over the text for all the kinds asked for; an ID is tried before a phone."""
    wanted = [kind for kind in ("id_card", "email", "phone") if kind in set(kinds)]
    unknown = set(kinds) - set(KINDS)
    if unknown:
        raise ValueError(f"unknown PII kind(s) {sorted(unknown)}; choose from {KINDS}")
    if not wanted:
        return lambda text: text
    pattern = re.compile("|".join(_PATTERNS[kind] for kind in wanted), re.ASCII)
    needs_digit = "email" not in wanted

    def replace(match: re.Match[str]) -> str:
        kind: PiiKind = match.lastgroup  # type: ignore[assignment]
        found = match[0]
        if kind == "email":
            return MASKS[kind]
        if _ORDER_LABEL.search(match.string, max(0, match.start() - 20), match.start()):
            return found
        if kind == "id_card" and not _valid_id(found):
            return found
        if kind == "phone" and not 8 <= _digits(found) <= 15:
            return found
        return MASKS[kind]

    def mask(text: str) -> str:
        if needs_digit and _DIGIT.search(text) is None:
            return text
        return pattern.sub(replace, text)

    return mask
