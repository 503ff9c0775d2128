from serve_app.ops.cli import analytics_rows


def test_the_summary_table_shows_the_analytics_only_when_asked() -> None:
    assert analytics_rows({"records": 3, "top_words": []}) == []
    summary = {
        "languages": {"zh": 2, "mixed": 1},
        "sentiment": {"labels": {"positive": 2, "neutral": 0, "negative": 1}, "mean_score": 0.25},
        "duplicates": 1,
        "boilerplate": 0,
    }
    assert analytics_rows(summary) == [
        ("duplicates", "1"),
        ("boilerplate", "0"),
        ("languages", "zh (2), mixed (1)"),
        ("sentiment", "positive 2, neutral 0, negative 1; mean score +0.250"),
    ]
