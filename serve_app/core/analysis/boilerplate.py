"""Default reviews: what a shop writes when the buyer wrote nothing (此用户未填写评价内容,
系统默认好评, "This user didn't fill in a review"). They say nothing about the product, so a
batch can flag them and leave them out of its word counts.

A text is boilerplate when, case-folded and with everything but letters and digits taken out,
it is one of the known phrases or a run of them ("默认好评！默认好评"), or one of the platform
templates below (该用户未做出评价，系统默认好评). Text around it makes it a review: "默认好评，
但是物流太慢" is not boilerplate.
"""

from __future__ import annotations

from typing import Any, Final

import regex

__all__ = ["PHRASES", "is_boilerplate"]

PHRASES: Final = (
    "此用户未填写评价内容",
    "此用户没有填写评价",
    "此用户没有填写评论",
    "该用户未填写评价内容",
    "用户未填写评价内容",
    "用户未填写评价",
    "此用户未及时评价",
    "用户未及时评价",
    "默认好评",
    "系统默认好评",
    "系统默认评价",
    "默认评价",
    "评价方未及时做出评价系统默认好评",
    "用户未及时做出评价系统默认好评",
    "该用户未做出评价系统默认好评",
    "此用户未做出评价系统默认好评",
    "用户未评价系统默认好评",
    "好评默认",
    "thisuserdidntfillinareview",
    "thisuserdidnotfillinareview",
    "thisuserhasnotfilledinareview",
    "theuserdidnotleaveareview",
    "theuserdidntleaveareview",
    "nocommentsfromthisuser",
    "defaultpositivereview",
    "defaultreview",
    "noreviewcontent",
)
_NOT_ALNUM: Any = regex.compile(r"[^\p{L}\p{N}]+")
_KNOWN: Any = regex.compile("(?:" + "|".join(sorted(PHRASES, key=len, reverse=True)) + ")+")
# Platform templates: 该/此 用户 未/没有 (及时) (填写/做出) 评价/评论 (内容) (系统) (默认) (好评)
_TEMPLATE: Any = regex.compile(
    r"(?:[该此]?(?:位)?(?:用户|买家)|评价方)(?:未|没有|没)(?:及时)?(?:填写|做出|发表)?"
    r"(?:评价|评论)(?:内容)?(?:系统)?(?:默认)?(?:好评|评价)?"
)


def is_boilerplate(text: str) -> bool:
    key = _NOT_ALNUM.sub("", text.casefold())
    if not key or len(key) > 64:
        return False
    return _KNOWN.fullmatch(key) is not None or _TEMPLATE.fullmatch(key) is not None
