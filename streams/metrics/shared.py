"""What the care and the engagement figures both use: which kinds are messages, and how a ratio and a duration
are given (NULL for an undefined one)."""

from __future__ import annotations

import math
from typing import Any

#: The conversational kinds (docs/metrics.md, "Conversation vs reach"): somebody said something.
CONVERSATIONAL_SQL = "('post', 'comment', 'reply', 'mention', 'direct_message')"


def rate(numerator: float, denominator: float) -> float | None:
    """numerator ÷ denominator; None (NULL) when the denominator is 0."""
    return numerator / denominator if denominator else None


def seconds(value: Any) -> float | None:
    """A duration in seconds, to the millisecond (quantiles interpolate: 4688.000000000003 is 4688.0); None for
    no value or NaN (a quantile of nothing)."""
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else round(value, 3)
