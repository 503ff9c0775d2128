from serve_app.core import counting
from serve_app.core.analysis.simplify import to_simplified
from serve_app.core.cleaning import CleanOptions, clean

TRADITIONAL = "這個質量很好，頭髮乾燥後來好了，裡面的東西"


def test_traditional_becomes_simplified_and_the_rest_is_untouched() -> None:
    assert to_simplified(TRADITIONAL) == "这个质量很好，头发干燥后来好了，里面的东西"
    assert to_simplified("Ａ① café 😀 质量") == "Ａ① café 😀 质量"


def test_the_clean_option_makes_both_scripts_one_word_and_is_idempotent() -> None:
    options = CleanOptions(to_simplified=True)
    cleaned = clean("質量很好 质量很好", options)
    assert counting.count(cleaned).word_counts["质量"] == 2
    assert clean(cleaned, options) == cleaned
    assert clean(TRADITIONAL) == TRADITIONAL  # off by default
