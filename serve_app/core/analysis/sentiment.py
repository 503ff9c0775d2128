"""Sentiment of a review: a label and a score in [-1, 1], for Chinese, English and mixed text.

- Chinese: SnowNLP's naive Bayes sentiment model (its `sentiment.marshal`, trained by SnowNLP's
  author on shopping reviews), scored here over rjieba words. SnowNLP's own pipeline segments
  with a pure-Python character tagger at ~30 KB/s; the model is the same, the words come from
  the segmenter this service already has. P(positive) p becomes the score 2p - 1.
- English: VADER's compound score (vaderSentiment: lexicon and rules, no training on reviews).
- Mixed: both, weighed by the Chinese and English shares of the text (`language.script_shares`).

Label: "positive" above the threshold, "negative" below minus it, else "neutral"; the thresholds
are the ones each model's authors use (VADER: 0.05; SnowNLP: p outside 0.4-0.6, i.e. 0.2),
mixed ones weighed like the score. Text with no Han character and no Latin word is neutral, 0.
Measured accuracy: README, "Review analytics".
"""

from __future__ import annotations

import gzip
import importlib.util
import marshal
import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

from serve_app.core.analysis.language import script_shares

__all__ = ["Sentiment", "analyze", "warm_up"]

Label = Literal["positive", "negative", "neutral"]
EN_THRESHOLD = 0.05
ZH_THRESHOLD = 0.2


@dataclass(frozen=True, slots=True)
class Sentiment:
    label: Label
    score: float

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "score": self.score}


@dataclass(frozen=True, slots=True)
class _Bayes:
    stop: frozenset[str]
    vocabulary: frozenset[str]
    # per class: log prior, log P(word) for the words seen, log P(unseen word)
    classes: tuple[tuple[str, float, dict[str, float], float], ...]


def _package_dir(name: str) -> Path:
    # resources.files() would import the package, and importing snownlp is what costs the
    # seconds and the ~400 MB: find its files without running it.
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"{name} is not installed (pip install {name})")
    return Path(next(iter(spec.submodule_search_locations)))


@cache
def _snownlp() -> _Bayes:
    # Read SnowNLP's data files directly: importing snownlp loads its own segmenter and tagger
    # models first (~3 s, ~100 MB), which nothing here uses.
    package = _package_dir("snownlp")
    raw = marshal.loads(
        gzip.decompress((package / "sentiment" / "sentiment.marshal.3").read_bytes())
    )
    stop = frozenset(
        line.strip()
        for line in (package / "normal" / "stopwords.txt").read_text(encoding="utf-8").splitlines()
    )
    total = raw["total"]
    classes = []
    for name, prob in raw["d"].items():
        denominator = prob["total"]
        logs = {word: math.log(n / denominator) for word, n in prob["d"].items()}
        classes.append(
            (
                name,
                math.log(denominator) - math.log(total),
                logs,
                math.log(prob["none"] / denominator),
            )
        )
    vocabulary = frozenset().union(*(logs for _, _, logs, _ in classes))
    return _Bayes(stop, vocabulary, tuple(classes))


@cache
def _vader() -> Any:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def _chinese_score(text: str) -> float:
    import rjieba

    model = _snownlp()
    # The model was trained on SnowNLP's own words, which are often shorter than jieba's: a
    # word it never saw is scored by its characters that it did see (the waimai sample in the
    # README: binary accuracy 74.0% -> 79.8%). Words it knows nothing of are left out: each
    # would only tilt the score towards the class with fewer training words. So are the
    # English words of a mixed review, which are VADER's part.
    words: list[str] = []
    for word in rjieba.cut(text):
        if word.isascii() and word.isalpha():
            continue
        if word in model.vocabulary:
            if word not in model.stop:
                words.append(word)
        elif len(word) > 1:
            words += [c for c in word if c in model.vocabulary and c not in model.stop]
    scores = {
        name: prior + sum(logs.get(w, unseen) for w in words)
        for name, prior, logs, unseen in model.classes
    }
    # P(pos) = 1 / (1 + exp(neg - pos)), kept finite for long texts
    margin = scores["neg"] - scores["pos"]
    p_positive = 0.0 if margin > 700 else 1.0 / (1.0 + math.exp(margin))
    return 2.0 * p_positive - 1.0


def _english_score(text: str) -> float:
    compound: float = _vader().polarity_scores(text)["compound"]
    return compound


def analyze(text: str) -> Sentiment:
    shares = script_shares(text)
    if not shares.zh and not shares.en:
        return Sentiment("neutral", 0.0)
    score = threshold = 0.0
    if shares.zh:
        score += shares.zh * _chinese_score(text)
        threshold += shares.zh * ZH_THRESHOLD
    if shares.en:
        score += shares.en * _english_score(text)
        threshold += shares.en * EN_THRESHOLD
    score = max(-1.0, min(1.0, round(score, 4)))
    if score > threshold:
        return Sentiment("positive", score)
    if score < -threshold:
        return Sentiment("negative", score)
    return Sentiment("neutral", score)


def warm_up() -> None:
    analyze("warm up 很好")
