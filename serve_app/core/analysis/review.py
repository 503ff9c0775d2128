"""Per-review analysis options and the fields they add to a result: `language`, `sentiment`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from serve_app.core.analysis import language, sentiment

__all__ = ["AnalysisOptions", "analyze", "warm_up"]


@dataclass(frozen=True, slots=True)
class AnalysisOptions:
    language: bool = False
    sentiment: bool = False

    @property
    def any(self) -> bool:
        return self.language or self.sentiment


def analyze(text: str, options: AnalysisOptions) -> dict[str, Any]:
    """The fields to add to the text's result: none when no option is on."""
    fields: dict[str, Any] = {}
    if options.language:
        fields["language"] = language.detect(text)
    if options.sentiment:
        fields["sentiment"] = sentiment.analyze(text).to_dict()
    return fields


def warm_up() -> None:
    """Load the models now (~1 s), not on the first request that asks for them."""
    language.warm_up()
    sentiment.warm_up()
