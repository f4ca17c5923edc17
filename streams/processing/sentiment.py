"""Sentiment of a text: the VADER compound score, -1 (most negative) … 1 (most positive).

Definition: VADER 3.3.2's ``polarity_scores(text)["compound"]`` (lexicon and rules as shipped by
``vaderSentiment``). Empty or missing text has no sentiment (``None``), not a neutral 0: a reaction
is not a neutral message.

``SentimentScorer`` computes it with ``FastVader`` (``streams.processing.sentiment_fast``): same scores,
faster, most of all when that module is compiled with mypyc (``./dev setup`` builds it);
``SentimentScorer.implementation`` says which one runs. ``reference_score`` computes it with
``vaderSentiment`` itself, for tests and benchmarks.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from streams.processing import sentiment_fast
from streams.processing.sentiment_fast import FastVader

DEFAULT_CACHE_SIZE = 4096  # texts repeat in real streams (templates, retweets); the cache never changes a score


class SentimentScorer:
    """Compound scores of texts, ``None`` for missing or blank text.

    ``cache_size``: how many recent texts' scores to keep (0: no cache). Benchmarks of the algorithm
    itself should pass 0. ``implementation``: "mypyc" (the compiled ``sentiment_fast``) or "python".
    """

    implementation: str = sentiment_fast.IMPLEMENTATION

    def __init__(self, cache_size: int = DEFAULT_CACHE_SIZE) -> None:
        self._compound = FastVader(cache_size=cache_size).compound

    def score(self, text: str | None) -> float | None:
        if text is None or not text.strip():
            return None
        return self._compound(text)

    @staticmethod
    def reference_score(text: str | None) -> float | None:
        """The same score from ``vaderSentiment`` itself (slow): see ``reference_score``."""
        return reference_score(text)


@cache
def _reference_analyzer() -> Any:  # loaded lazily: the lexicon takes ~0.1 s
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def reference_score(text: str | None) -> float | None:
    """``SentimentIntensityAnalyzer().polarity_scores(text)["compound"]`` (``None`` for missing/blank text)."""
    if text is None or not text.strip():
        return None
    return float(_reference_analyzer().polarity_scores(text)["compound"])
