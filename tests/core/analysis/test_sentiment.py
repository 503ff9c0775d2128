import pytest

from serve_app.core.analysis.sentiment import _chinese_score, analyze


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("质量很好，物流很快，非常满意", "positive"),
        ("太差了，用了两天就坏了，退货", "negative"),
        ("Great value, works perfectly, would buy again", "positive"),
        ("Terrible quality, it broke after one day. Waste of money.", "negative"),
        ("物流很快，质量很好 and great value", "positive"),
        ("质量太差了 and it broke after one day, terrible", "negative"),
        ("😀 !!! 123", "neutral"),
    ],
)
def test_labels_of_plain_reviews(text: str, label: str) -> None:
    result = analyze(text)
    assert result.label == label
    assert -1.0 <= result.score <= 1.0


def test_the_chinese_score_is_snownlps_model() -> None:
    snownlp = pytest.importorskip("snownlp")
    # Same model, words from rjieba instead of SnowNLP's tagger: close, not always equal.
    for text in ["质量很好，物流很快", "太差了，退货", "包装破损，客服不理人"]:
        expected = 2 * snownlp.SnowNLP(text).sentiments - 1
        assert abs(_chinese_score(text) - expected) < 0.1


def test_a_long_review_keeps_a_finite_score() -> None:
    assert analyze("太差了，退货。" * 5000).score == -1.0
