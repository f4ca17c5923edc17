"""Sentiment of a text: the VADER compound score, -1 (most negative) … 1 (most positive).

Definition: VADER 3.3.2's ``polarity_scores(text)["compound"]`` (lexicon and rules as shipped by
``vaderSentiment``). Empty or missing text has no sentiment (``None``), not a neutral 0: a reaction
is not a neutral message.
"""

from __future__ import annotations

from functools import cached_property


class SentimentScorer:
    @cached_property
    def _analyzer(self):  # type: ignore[no-untyped-def]  # loaded lazily: the lexicon takes ~0.1 s
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        return SentimentIntensityAnalyzer()

    def score(self, text: str | None) -> float | None:
        if text is None or not text.strip():
            return None
        return float(self._analyzer.polarity_scores(text)["compound"])
