"""Accuracy of `core.analysis.sentiment` on a labeled review set (binary: 1 positive, 0 negative).

    python -m loadtests.sentiment_accuracy FILE [--format csv|tsv] [--simplify] [--snownlp]

csv: a header then `label,review` (ChineseNlpCorpus's waimai_10k layout); tsv: `text<TAB>label`
(UCI "Sentiment Labelled Sentences" layout). Prints the binary accuracy (the sign of the score
against the label; a score of exactly 0 counts as wrong), the three-way accuracy (a "neutral"
label counts as wrong) and the share labeled neutral. --simplify runs the clean option
to_simplified first (for sets in Traditional script); --snownlp also scores SnowNLP's own
pipeline (its tagger's words instead of rjieba's) on the same texts, for comparison.
"""

from __future__ import annotations

import argparse
import csv
import time
from collections.abc import Callable
from pathlib import Path

from serve_app.core import cleaning
from serve_app.core.analysis import sentiment


def load(path: Path, fmt: str) -> list[tuple[str, int]]:
    with path.open(encoding="utf-8", newline="") as handle:
        if fmt == "csv":
            rows = csv.reader(handle)
            next(rows)
            return [(text, int(label)) for label, text in rows]
        pairs = (line.rstrip("\n").rsplit("\t", 1) for line in handle if line.strip())
        return [(text, int(label)) for text, label in pairs]


def score(labeled: list[tuple[str, int]], scorer: Callable[[str], tuple[str, float]]) -> str:
    right = three_way = neutral = 0
    started = time.process_time()
    for text, label in labeled:
        name, value = scorer(text)
        right += (value > 0) == bool(label) and value != 0
        three_way += name == ("positive" if label else "negative")
        neutral += name == "neutral"
    cpu = time.process_time() - started
    n = len(labeled)
    return (
        f"n={n} binary accuracy {right / n:.1%}, three-way {three_way / n:.1%}, "
        f"neutral {neutral / n:.1%} ({cpu:.2f} s CPU)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", type=Path)
    parser.add_argument("--format", choices=("csv", "tsv"), default="csv")
    parser.add_argument("--simplify", action="store_true")
    parser.add_argument("--snownlp", action="store_true")
    args = parser.parse_args()
    labeled = load(args.file, args.format)
    if args.simplify:
        options = cleaning.CleanOptions(to_simplified=True)
        labeled = [(cleaning.clean(text, options), label) for text, label in labeled]
    sentiment.warm_up()

    def ours(text: str) -> tuple[str, float]:
        result = sentiment.analyze(text)
        return result.label, result.score

    print(f"cleanserve sentiment: {score(labeled, ours)}")
    if args.snownlp:
        from snownlp import SnowNLP

        def snownlp(text: str) -> tuple[str, float]:
            value = 2 * SnowNLP(text).sentiments - 1
            label = "neutral" if abs(value) <= sentiment.ZH_THRESHOLD else "positive"
            return (label if value > 0 else "negative") if label != "neutral" else label, value

        print(f"SnowNLP's own pipeline: {score(labeled, snownlp)}")


if __name__ == "__main__":
    main()
