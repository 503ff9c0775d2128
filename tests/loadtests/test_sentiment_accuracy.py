from pathlib import Path

from loadtests import sentiment_accuracy
from serve_app.core.analysis import sentiment

SAMPLE = Path(sentiment_accuracy.__file__).parent / "data" / "sentiment" / "amazon_cells_sample.tsv"


def test_the_vendored_english_sample_loads_and_scores_well_above_chance() -> None:
    labeled = sentiment_accuracy.load(SAMPLE, "tsv")
    assert len(labeled) == 201 and {label for _, label in labeled} == {0, 1}
    right = sum((sentiment.analyze(text).score > 0) == bool(label) for text, label in labeled)
    # Measured 68-69% (README, "Review analytics"); a broken model or lexicon falls to ~50%.
    assert right / len(labeled) > 0.6
