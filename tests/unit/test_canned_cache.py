"""A running worker's canned-reply cache (``engagement.CannedCache``): new replies are judged alone against the
window it indexed, and any change it cannot account for (an edited or removed reply, a reply arriving late inside
the window) makes it judge the span from the rows again. Either way the figures equal the computation from the
rows with the exact detector (``direct=True``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import pytest

from streams.metrics import care, engagement
from streams.processing import canned
from streams.processing.pipeline import DictState
from streams.sinks.warehouse import Warehouse
from tests.support import pipeline
from tests.support.factories import brand_reply, inbound

TEMPLATE = "sorry to hear that, please DM us your order number and we will look"


def at(minute: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(1_767_225_600 + 60 * minute))  # 2026-01-01


def conversation(n: int, minute: int, text: str) -> list[dict[str, Any]]:
    return [
        inbound(f"x:m{n}", author_id=f"c{n}", created_at=at(minute)),
        brand_reply(f"x:r{n}", f"x:m{n}", f"c{n}", created_at=at(minute + 5), text=text),
    ]


def store(warehouse: Warehouse, events: Sequence[dict[str, Any]], state: DictState, cache: Any) -> None:
    """The events as one raw message, stored and recomputed with the worker's canned-reply ``cache``."""
    results = pipeline.process(events, state, per_message=len(events), score=lambda _: None)
    pipeline.store(warehouse, results, canned=cache)


def canned_figures(warehouse: Warehouse) -> tuple[int, int | None]:
    query = care.MetricsQuery()
    rows = care.metrics(warehouse, query)
    assert rows == care.metrics(warehouse, query, direct=True)
    (row,) = rows
    return row["canned_replies"], row["canned_reply_rate"]


def test_new_replies_are_judged_alone_and_every_other_change_judges_the_rows_again(
    warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = []  # every call of the whole-span detector
    monkeypatch.setattr(canned, "canned_flags", lambda replies: whole.append(1) or _flags(replies))
    cache, state = engagement.CannedCache(), DictState()

    store(warehouse, conversation(1, 0, TEMPLATE) + conversation(2, 60, f"{TEMPLATE} at it"), state, cache)
    assert canned_figures(warehouse) == (1, 1 / 2)  # r2 shares 14 of its 15 tokens with r1
    first = len(whole)
    store(warehouse, conversation(3, 120, TEMPLATE) + conversation(4, 180, "a personal answer, just for you"), state,
          cache)  # fmt: skip
    assert len(whole) == first  # in order: the cached window judged r3 and r4 alone
    assert canned_figures(warehouse) == (2, 2 / 4)

    # an edit of an earlier reply: r2 is now personal, so r3 (a copy of r1) is still canned, r2 no longer
    store(warehouse, [brand_reply("x:r2", "x:m2", "c2", created_at=at(65), text="thanks Jo, all sorted now!",
                                  updated_at=at(200))], state, cache)  # fmt: skip
    assert len(whole) > first
    assert canned_figures(warehouse) == (1, 1 / 4)

    # a removal: r1 is gone, so r3 is the template's first and is not canned
    edited = len(whole)
    store(warehouse, [brand_reply("x:r1", "x:m1", "c1", created_at=at(5), text=None, deleted=True,
                                  updated_at=at(210))], state, cache)  # fmt: skip
    assert len(whole) > edited
    assert canned_figures(warehouse) == (0, 0 / 3)

    # a reply arriving late, inside the window: it is earlier than r3, so r3 becomes canned
    removed = len(whole)
    store(warehouse, conversation(5, 100, TEMPLATE), state, cache)
    assert len(whole) > removed
    assert canned_figures(warehouse) == (1, 1 / 4)


_flags = canned.canned_flags


def test_a_change_older_than_the_window_is_judged_from_the_rows(warehouse: Warehouse) -> None:
    """The cached window holds the 30 days before its latest reply: a reply arriving late before that, or the
    removal of one, cannot be checked against it, so the span is judged from the rows."""
    cache, state = engagement.CannedCache(), DictState()
    day = 24 * 60
    store(warehouse, conversation(1, 0, TEMPLATE), state, cache)
    store(warehouse, conversation(2, 40 * day, "a personal answer, just for you"), state, cache)
    assert canned_figures(warehouse) == (0, 0 / 2)
    store(warehouse, conversation(3, day, TEMPLATE), state, cache)  # late, 39 days before the window's latest
    assert canned_figures(warehouse) == (1, 1 / 3)  # r3 copies r1 (a day earlier)
    store(warehouse, [brand_reply("x:r1", "x:m1", "c1", created_at=at(5), text=None, deleted=True,
                                  updated_at=at(41 * day))], state, cache)  # fmt: skip
    assert canned_figures(warehouse) == (0, 0 / 2)
