"""Two edges of the engagement figures found in review: the follower tier is the one at the time of the message
(an edit with another count does not move it), and a message whose author the platform does not name
(Instagram mentions: ``author_id = 'unknown'``) is nobody's: not a customer, no shift pair."""

from __future__ import annotations

from typing import Any

from streams.metrics import care
from streams.processing.pipeline import DictState
from streams.sinks.warehouse import Warehouse
from tests.support import pipeline
from tests.support.factories import brand_post, brand_reply, inbound

DAY = "2026-03-02T"


def store(warehouse: Warehouse, events: list[dict[str, Any]]) -> None:
    """The events as one raw message of a fresh worker, stored and recomputed."""
    results = pipeline.process(events, DictState(), per_message=len(events))
    assert not results[0].dead_letters, results[0].dead_letters
    pipeline.store(warehouse, results)


def checked(warehouse: Warehouse, **kwargs: Any) -> list[dict[str, Any]]:
    query = care.MetricsQuery(**kwargs)
    rows = care.metrics(warehouse, query)
    assert rows == care.metrics(warehouse, query, direct=True)
    return rows


def test_the_tier_is_the_follower_count_at_the_time_of_the_message(warehouse: Warehouse) -> None:
    store(warehouse, [inbound("x:1", author_id="c1", author_followers=99, created_at=DAY + "10:00:00Z")])
    # the same message edited a day later, when its author has 150,000 followers; another without a count
    store(warehouse, [inbound("x:1", author_id="c1", author_followers=150_000, text="edited: where is it?",
                              created_at=DAY + "10:00:00Z", updated_at="2026-03-03T10:00:00Z"),
                      inbound("x:2", author_id="c2", author_followers=None, created_at=DAY + "11:00:00Z"),
                      inbound("x:2", author_id="c2", author_followers=5_000, text="edited",
                              created_at=DAY + "11:00:00Z", updated_at=DAY + "12:00:00Z")])  # fmt: skip
    tiers = {r["tier"]: r["inbound_messages"] for r in checked(warehouse, by="brand,tier")}
    assert tiers == {"<100": 1, "1k-9999": 1}  # x:1 at 99; x:2's first count reported is 5,000


def test_an_unnamed_author_is_no_customer_and_forms_no_pair(warehouse: Warehouse) -> None:
    unknown = {"author_id": "unknown", "platform": "instagram"}
    store(
        warehouse,
        [
            inbound("instagram:1", **unknown, text="this is terrible", created_at=DAY + "10:00:00Z"),
            brand_reply("instagram:r1", "instagram:1", "unknown", platform="instagram", created_at=DAY + "10:05:00Z"),
            inbound("instagram:2", **unknown, text="great, thanks!", created_at=DAY + "10:10:00Z",
                    parent_id="instagram:r1", kind="reply", conversation_id="instagram:1"),
            inbound("x:3", author_id="c3", text="hello", created_at=DAY + "11:00:00Z"),
        ],
    )  # fmt: skip
    (row,) = checked(warehouse)
    assert row["inbound_messages"] == 3
    assert (row["customers"], row["returning_customers"], row["won_back_customers"]) == (1, 0, 0)  # only c3
    assert row["sentiment_shift_pairs"] == 0  # two unnamed people are not "the same customer"


def test_a_post_with_an_unknown_counter_is_left_out_of_the_vanity_rate(warehouse: Warehouse) -> None:
    """docs/metrics.md's example: a missing counter is unknown, not 0, so its post is in neither sum of the rate."""
    store(
        warehouse,
        [
            brand_post("x:p1", created_at=DAY + "09:00:00Z", impressions=1000, likes=10, shares=1, replies=2),
            brand_post("x:p1", created_at=DAY + "09:00:00Z", impressions=4000, likes=90, shares=10, replies=20,
                       updated_at=DAY + "12:00:00Z"),
            brand_post("x:p2", created_at=DAY + "09:10:00Z"),
            brand_post("x:p3", created_at=DAY + "09:20:00Z", impressions=1000, likes=50, replies=5),  # no shares
            *[inbound(f"x:m{n}", author_id=f"c{n}", created_at=DAY + f"10:{n:02d}:00Z") for n in range(15)],
            *[brand_reply(f"x:r{n}", f"x:m{n}", f"c{n}", created_at=DAY + f"11:{n:02d}:00Z") for n in range(15)],
        ],
    )  # fmt: skip
    (row,) = checked(warehouse)
    assert (row["posts"], row["impressions"], row["likes"], row["shares"]) == (3, 5000, 140, 10)
    assert row["vanity_engagement_rate"] == 120 / 4000
    assert row["answered_messages"] == 15
    assert row["answered_per_1k_impressions"] == 15 / 5000 * 1000
