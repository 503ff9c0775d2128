import pytest

from serve_app.core.analysis.pii import masker
from serve_app.core.cleaning import CleanOptions, clean

ALL = masker(["phone", "id_card", "email"])
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def resident_id(first17: str) -> str:
    return first17 + "10X98765432"[sum(int(d) * w for d, w in zip(first17, _WEIGHTS)) % 11]


VALID_ID = resident_id("11010519491231002")  # the GB 11643 example, check character X


def test_the_check_character_is_computed_as_gb_11643_says() -> None:
    assert VALID_ID == "11010519491231002X"


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("电话13812345678请联系", "电话[PHONE]请联系"),
        ("tel +86 138-1234-5678.", "tel [PHONE]."),
        ("0086 13812345678", "[PHONE]"),
        ("138 1234 5678 微信同号", "[PHONE] 微信同号"),
        ("call +44 20 7946 0958 today", "call [PHONE] today"),
        ("+1 (415) 555-2671", "[PHONE]"),
        ("座机010-62345678", "座机[PHONE]"),
        (f"身份证{VALID_ID}。", "身份证[ID]。"),
        (f"id {VALID_ID.lower()}", "id [ID]"),
        ("mail a.b+c@x.com.cn ok", "mail [EMAIL] ok"),
    ],
)
def test_personal_data_is_masked(text: str, masked: str) -> None:
    assert ALL(text) == masked


@pytest.mark.parametrize(
    "text",
    [
        "订单号：13812345678",  # an 11-digit order number that looks like a mobile
        "order no. 13912345678",
        "运单号 SF1381234567890",
        "订单2024011512345678已发货",
        "SKU13812345678",
        "¥1399.00，原价1,599元，省了200",
        "$19.99 + $5.00 shipping",
        "2024-01-15 12:30 收到",
        "2024年1月15日 20240115",
        "评分 4.5/5，用了 3 个月",
        "3.13812345678",
        "价格 +100 元",
        resident_id("11010519491231002")[:-1] + "0",  # wrong check character
        resident_id("11010519491332002"),  # month 13
        "110105194912310",  # 15-digit numbers are not masked
        "version 1.3.13812345678-beta",
    ],
)
def test_no_false_positives_on_order_numbers_prices_and_dates(text: str) -> None:
    assert ALL(text) == text


def test_an_order_label_covers_only_the_number_right_after_it() -> None:
    text = "订单号：13812345678，电话13912345678"
    assert ALL(text) == "订单号：13812345678，电话[PHONE]"


def test_only_the_kinds_asked_for_are_masked() -> None:
    text = f"13812345678 {VALID_ID} a@b.co"
    assert masker(["phone"])(text) == f"[PHONE] {VALID_ID} a@b.co"
    assert masker(["id_card"])(text) == "13812345678 [ID] a@b.co"
    assert masker(["email"])(text) == f"13812345678 {VALID_ID} [EMAIL]"


def test_an_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown PII kind"):
        CleanOptions(pii=("passport",))  # type: ignore[arg-type]


def test_the_clean_option_masks_after_full_width_folding_and_keeps_masks_on_lowercase() -> None:
    options = CleanOptions(pii=("phone", "email"), lowercase=True)
    cleaned = clean("电话：１３８１２３４５６７８ Mail: Me@Example.COM", options)
    assert cleaned == "电话：[PHONE] mail: [EMAIL]"
    assert clean(cleaned, options) == cleaned


def test_without_the_option_a_literal_mask_is_lowercased_as_before() -> None:
    assert clean("[PHONE] X", CleanOptions(lowercase=True)) == "[phone] x"


def test_pii_choices_are_canonical() -> None:
    assert CleanOptions(pii=["email", "phone", "email"]).pii == ("phone", "email")  # type: ignore[arg-type]
