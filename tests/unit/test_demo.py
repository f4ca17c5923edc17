"""The synthetic demo data: deterministic, valid, and showing each brand's care habit in the numbers.

The habit tests measure the generated events the way the care metrics do (reply rate of the messages that
need a reply, first-response median, reply rate per follower tier, gaps between a brand's replies), so they
fail if a habit disappears from the data. The "engagement versus reach" tests measure what those figures
need (issue 14): a heavy tail of follower counts, a brand that mostly broadcasts, canned replies by the rule
of ``streams/processing/canned.py``, the sentiment shift after a reply, returning customers, posts whose
counters grow, and reach signals through the real webhook parsers.
"""

from __future__ import annotations

import itertools
import re
import statistics
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from schemas.interaction import CONVERSATIONAL_KINDS, Interaction
from streams.cli import main
from streams.local import demo, demo_webhooks
from streams.processing.canned import canned_flags
from streams.processing.pipeline import DictState, Options, process_message
from streams.processing.platforms import BrandDirectory
from streams.processing.records import ProcessResult, RawMessage
from streams.processing.sentiment import SentimentScorer
from streams.settings import Settings

BRAND = {p.habit: p.brand for p in demo.PERSONAS}
HOUR = 3600.0


@pytest.fixture(scope="module")
def lines() -> list[bytes]:
    return list(demo.generate())


@pytest.fixture(scope="module")
def good(lines: list[bytes]) -> list[Interaction]:
    events = []
    for line in lines:
        try:
            events.append(Interaction.model_validate_json(line))
        except ValidationError:
            continue
    return events


@pytest.fixture(scope="module")
def processed(lines: list[bytes]) -> ProcessResult:
    message = RawMessage(payload=b"\n".join(lines) + b"\n", format="jsonl", topic="rapport.raw")
    return process_message(message, DictState(), lambda text: None, now=1_800_000_000.0)


# --- what the data says, measured from the events ----------------------------------------------------


def _intent_of_text() -> dict[str, demo.Intent]:
    """Every text a customer can write, with its intent (from the generator's templates)."""
    intents: dict[str, demo.Intent] = {}

    def put(text: str, intent: demo.Intent) -> None:
        assert intents.setdefault(text, intent) == intent, f"{text!r} is both {intents[text]} and {intent}"

    for persona in demo.PERSONAS:
        for topic in persona.topics:
            for intent, templates in demo.MENTIONS.items():
                for template in templates:
                    for product in persona.products:
                        put(template.format(brand=persona.brand, topic=topic, product=product), intent)
            for intent, templates in demo.COMMENTS.items():
                for template in templates:
                    put(template.format(topic=topic), intent)
            for template in demo.NUDGES:
                put(template.format(brand=persona.brand, topic=topic), "complaint")
    for text in demo.CUSTOMER_ANSWERS + demo.ANNOYED_ANSWERS + demo.GRATEFUL_ANSWERS:
        put(text, "answer")
    for text in demo.FOLLOW_UPS_HAPPY:
        put(text, "thanks")
    for text in demo.FOLLOW_UPS_UNHAPPY:
        put(text, "complaint")
    return intents


INTENT_OF = _intent_of_text()


def customer_messages(good: list[Interaction], brand: str | None = None) -> list[Interaction]:
    return [e for e in good if e.direction == "inbound" and e.kind in CONVERSATIONAL_KINDS and brand in (None, e.brand)]


def needing_reply(good: list[Interaction], brand: str) -> list[Interaction]:
    return [e for e in customer_messages(good, brand) if INTENT_OF[e.text or ""] in demo.NEEDS_REPLY]


def first_replies(good: list[Interaction]) -> dict[str, Interaction]:
    """Inbound event id → the brand's earliest reply to it (``good`` is in time order)."""
    first: dict[str, Interaction] = {}
    for event in good:
        if event.direction == "outbound" and event.parent_id:
            first.setdefault(event.parent_id, event)
    return first


def in_tier(event: Interaction, tier: int | None) -> bool:
    """The event's author is in follower ``tier`` (None: any author, also one without a follower count)."""
    return tier is None or (event.author_followers is not None and demo.follower_tier(event.author_followers) == tier)


def reply_rate(good: list[Interaction], brand: str, tier: int | None = None, at_least: int = 20) -> float:
    """Share of the brand's messages that need a reply which it answered (from authors in ``tier``)."""
    answered = first_replies(good)
    messages = [e for e in needing_reply(good, brand) if in_tier(e, tier)]
    assert len(messages) >= at_least, f"too few messages for {brand} to judge"
    return sum(e.event_id in answered for e in messages) / len(messages)


def response_seconds(good: list[Interaction], brand: str, tiers: tuple[int, ...] | None = None) -> list[float]:
    """First-response times of the brand's answered messages that need a reply (from authors in ``tiers``), sorted."""
    answered = first_replies(good)
    return sorted(
        (answered[e.event_id].created_at - e.created_at).total_seconds()
        for e in needing_reply(good, brand)
        if e.event_id in answered and (tiers is None or any(in_tier(e, tier) for tier in tiers))
    )


def reply_times(good: list[Interaction], brand: str) -> list[datetime]:
    return [e.created_at for e in good if e.brand == brand and e.direction == "outbound" and e.kind == "reply"]


def longest_gap(good: list[Interaction], brand: str) -> tuple[datetime, datetime]:
    """The longest stretch between two consecutive replies of the brand."""
    times = reply_times(good, brand)
    return max(itertools.pairwise(times), key=lambda gap: gap[1] - gap[0])


def business_hours_silence(good: list[Interaction], brand: str, weekdays: bool = False) -> float:
    """The longest part of one day's 09:00–17:00 UTC (Mon–Fri only with ``weekdays``) without a reply of the
    brand, in hours."""
    times = reply_times(good, brand)
    longest = 0.0
    for before, after in itertools.pairwise(times):
        day = before.replace(hour=0, minute=0, second=0)
        while day < after:
            opens, closes = max(before, day + timedelta(hours=9)), min(after, day + timedelta(hours=17))
            if not weekdays or day.weekday() < 5:
                longest = max(longest, (closes - opens).total_seconds() / HOUR)
            day += timedelta(days=1)
    return longest


def hours(gap: tuple[datetime, datetime]) -> float:
    return (gap[1] - gap[0]).total_seconds() / HOUR


# --- determinism and shape -------------------------------------------------------------------------


def test_same_seed_gives_the_same_bytes_and_another_seed_does_not(lines: list[bytes]) -> None:
    assert list(demo.generate(seed=7)) == lines
    assert list(demo.generate(seed=8)) != lines
    small: dict[str, Any] = {"customers": 30, "days": 3}
    assert list(demo.generate(seed=1, **small)) == list(demo.generate(seed=1, **small))


def test_default_size_and_lines_are_json_lines_without_newlines(lines: list[bytes]) -> None:
    assert 7_000 <= len(lines) <= 12_500  # about 10k: `rapport up` replays them in well under a minute
    assert all(isinstance(line, bytes) and b"\n" not in line and line for line in lines)


def test_good_lines_are_canonical_interactions_in_the_window(lines: list[bytes], good: list[Interaction]) -> None:
    bad = len(lines) - len(good)
    assert 0.003 * len(lines) <= bad <= 0.008 * len(lines)
    start = demo.DEFAULT_START
    assert all(start <= e.created_at < start + timedelta(days=14) for e in good)
    assert {e.created_at.date() for e in good} == {(start + timedelta(days=d)).date() for d in range(14)}
    assert [e.created_at for e in good] == sorted(e.created_at for e in good), "in time order"
    # serialised exactly as the model serialises itself
    assert [line for line in lines if _is_valid(line)] == [e.model_dump_json().encode() for e in good]


def _is_valid(line: bytes) -> bool:
    try:
        Interaction.model_validate_json(line)
    except ValidationError:
        return False
    return True


def test_ids_platforms_and_kinds(good: list[Interaction]) -> None:
    ids = [e.event_id for e in good]
    assert len(ids) == len(set(ids))
    assert {e.platform for e in good} == {"x", "facebook", "instagram"}
    for event in good:
        platform, native = event.event_id.split(":", 1)
        assert platform == event.platform
        assert native.replace("_", "").isdigit()
    kinds = Counter(e.kind for e in good)
    assert set(kinds) == {"post", "mention", "comment", "reply", "reaction", "share", "follow"}
    assert {e.brand for e in good} == set(BRAND.values())


def test_event_shapes(good: list[Interaction]) -> None:
    for event in good:
        if event.kind in ("reaction", "share", "follow"):
            assert event.text is None and event.direction == "inbound"
        else:
            assert event.text
        if event.kind == "post":
            assert event.direction == "outbound" and event.customer_id is None and event.parent_id is None
            assert event.author_id == event.brand
            assert event.impressions and event.likes is not None and event.impressions > event.likes
            assert event.shares is not None and event.replies is not None
            assert event.updated_at is None, "the file holds every event once: later versions come by webhook"
        if event.kind == "mention":
            assert event.direction == "inbound" and event.parent_id is None
            assert f"@{event.brand}" in (event.text or "")
        if event.direction == "inbound":
            assert event.customer_id == event.author_id
            assert event.author_followers is not None or event.platform in demo.HIDDEN_FOLLOWERS_SHARE
        else:
            assert event.author_id == event.brand == event.author_handle
    assert any(any(ord(ch) > 0x2000 for ch in e.text or "") for e in good), "some texts have emoji"


def test_every_reply_answers_an_existing_message_of_the_same_brand(good: list[Interaction]) -> None:
    by_id = {e.event_id: e for e in good}
    replies = [e for e in good if e.kind == "reply"]
    assert len(replies) > 1_000
    follow_ups = 0
    for reply in replies:
        parent = by_id[reply.parent_id or ""]
        assert parent.brand == reply.brand and parent.platform == reply.platform
        assert parent.created_at < reply.created_at
        assert parent.direction != reply.direction
        root = by_id[reply.conversation_id or ""]
        assert root.parent_id is None and root.brand == reply.brand
        assert parent.conversation_id in (None, reply.conversation_id)
        if reply.direction == "outbound":
            assert reply.customer_id == parent.author_id and reply.author_id == reply.brand
        else:
            follow_ups += 1
            assert parent.customer_id == reply.author_id
    assert follow_ups > 100
    for event in good:
        if event.kind in ("comment", "reaction", "share"):
            assert by_id[event.parent_id or ""].kind == "post"
            assert by_id[event.parent_id or ""].brand == event.brand


def test_some_replies_arrive_hours_later(processed: ProcessResult) -> None:
    slow = [r for r in processed.responses if r["response_seconds"] >= 6 * 3600]
    assert len(slow) > 100
    assert any(r["response_seconds"] >= 24 * 3600 for r in processed.responses)


def test_texts_carry_positive_and_negative_sentiment(good: list[Interaction]) -> None:
    scorer = SentimentScorer()
    scores = [scorer.score(e.text) for e in good if e.kind == "mention"][:600]
    assert sum(1 for s in scores if s is not None and s < -0.3) > 100
    assert sum(1 for s in scores if s is not None and s > 0.3) > 80


# --- bad lines -------------------------------------------------------------------------------------


def test_bad_lines_become_dead_letters_with_reasons(lines: list[bytes], processed: ProcessResult) -> None:
    bad = [line for line in lines if not _is_valid(line)]
    assert processed.dead_letters
    assert [d.original for d in processed.dead_letters] == bad
    assert len(processed.interactions) == len(lines) - len(bad)
    reasons = [d.reason for d in processed.dead_letters]
    assert all(reason for reason in reasons)
    assert any(r.startswith("Invalid JSON") for r in reasons)
    assert any(r.startswith("brand: Field required") for r in reasons)
    assert any(r.startswith("created_at:") and "timezone" in r for r in reasons)
    assert any(r.startswith("kind:") for r in reasons)
    kinds = Counter(r.split(":")[0] for r in reasons)
    assert set(kinds) == {"Invalid JSON", "brand", "created_at", "kind"}
    for line in bad:
        try:
            data = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        broken = (
            "brand" not in data,
            data["kind"] not in CONVERSATIONAL_KINDS,
            "Z" not in data["created_at"],
        )
        assert sum(broken) == 1, data


def test_bad_lines_are_spread_through_the_file(lines: list[bytes]) -> None:
    positions = [i for i, line in enumerate(lines) if not _is_valid(line)]
    assert positions[0] < len(lines) // 4 and positions[-1] > 3 * len(lines) // 4


# --- what customers write -------------------------------------------------------------------------


def test_customers_write_messages_that_need_a_reply_and_messages_that_do_not(good: list[Interaction]) -> None:
    messages = customer_messages(good)
    unknown = {e.text for e in messages} - INTENT_OF.keys()
    assert not unknown, f"texts the templates do not explain: {sorted(map(str, unknown))[:5]}"
    intents = Counter(INTENT_OF[e.text or ""] for e in messages)
    assert set(intents) == {"complaint", "question", "request", "answer", "thanks", "praise", "emoji"}
    assert all(count >= 0.03 * len(messages) for count in intents.values()), intents
    needs = sum(count for intent, count in intents.items() if intent in demo.NEEDS_REPLY)
    assert 0.55 <= needs / len(messages) <= 0.8
    emoji_only = [e for e in messages if not re.search(r"[A-Za-z0-9]", re.sub(r"@\w+", "", e.text or ""))]
    assert len(emoji_only) > 100


def test_customers_answer_the_brands_questions(good: list[Interaction]) -> None:
    """A brand asks for a DM ("Can you DM us your order number?"); the customer answers ("done, sent"), which
    needs a reply again; the brand closes the case."""
    by_id = {e.event_id: e for e in good}
    answers = [e for e in customer_messages(good) if INTENT_OF[e.text or ""] == "answer"]
    assert len(answers) > 150
    for answer in answers:
        question = by_id[answer.parent_id or ""]
        assert question.direction == "outbound" and "DM" in (question.text or ""), question.text
    asks = [e for e in good if e.direction == "outbound" and "Can you DM us your order number?" in (e.text or "")]
    assert asks and {e.brand for e in asks} == {BRAND["influencer_only"]}
    closed = {e.parent_id for e in good if e.direction == "outbound" and e.parent_id}
    attentive = [a for a in answers if a.brand == BRAND["attentive"]]
    assert sum(a.event_id in closed for a in attentive) / len(attentive) > 0.75


def test_follower_counts_span_the_equity_tiers(good: list[Interaction]) -> None:
    followers = {e.author_id: e.author_followers for e in customer_messages(good) if e.author_followers is not None}
    tiers = Counter(demo.follower_tier(f) for f in followers.values())
    share = [tiers[t] / len(followers) for t in range(4)]
    assert share[0] >= 0.35, "many customers under 100 followers"
    assert share[1] >= 0.2 and share[2] >= 0.1, "some with 100–999 and 1k–9,999"
    assert 0.03 <= share[3] <= 0.12, "a few influencers with 10k+"
    assert max(followers.values()) >= 50_000
    assert [demo.follower_tier(f) for f in (0, 99, 100, 999, 1_000, 9_999, 10_000)] == [0, 0, 1, 1, 2, 2, 3]


def test_follower_counts_have_a_heavy_tail_and_some_are_unknown(good: list[Interaction]) -> None:
    """Most customers have under 1,000 followers, a few have 100k or more; some facebook customers show none."""
    followers: dict[tuple[str, str], int | None] = {}
    for event in customer_messages(good):
        followers[(event.platform, event.author_id)] = event.author_followers
    known = sorted(f for f in followers.values() if f is not None)
    assert sum(f < 1_000 for f in known) / len(known) > 0.6
    assert sum(f < 100 for f in known) / len(known) > 0.3
    assert 3 <= sum(f >= 100_000 for f in known) <= 0.05 * len(known)
    assert known[-1] >= 1_000_000
    assert statistics.mean(known) > 10 * statistics.median(known), "a heavy tail: the mean far above the median"
    unknown = [key for key, f in followers.items() if f is None]
    assert 0.05 <= len(unknown) / len(followers) <= 0.2
    assert {platform for platform, _ in unknown} == {"facebook"}
    # on the platforms that report it, every event of a customer carries the same count
    for event in good:
        if event.direction == "inbound":
            assert event.author_followers == followers.get((event.platform, event.author_id), event.author_followers)


# --- each brand's habit shows in the numbers ---------------------------------------------------------


def test_the_pipeline_sees_the_same_first_responses(good: list[Interaction], processed: ProcessResult) -> None:
    """The helpers below measure what the care metrics compute: the pipeline's ``responses``."""
    answered = first_replies(good)
    by_id = {e.event_id: e for e in good}
    expected = {
        inbound_id: (reply.created_at - by_id[inbound_id].created_at).total_seconds()
        for inbound_id, reply in answered.items()
        if by_id[inbound_id].direction == "inbound"
    }
    assert {r["inbound_id"]: r["response_seconds"] for r in processed.responses} == expected


def test_the_attentive_brand_answers_nearly_everyone_within_minutes(good: list[Interaction]) -> None:
    brand = BRAND["attentive"]
    assert reply_rate(good, brand) > 0.9
    seconds = response_seconds(good, brand)
    assert statistics.median(seconds) < 15 * 60, "first-response median well under an hour"
    assert seconds[int(0.9 * len(seconds))] < HOUR, "p90 under an hour"
    # the best of all brands on both counts
    others = [b for b in BRAND.values() if b != brand]
    assert all(reply_rate(good, brand) > reply_rate(good, other) + 0.05 for other in others)
    assert all(statistics.median(seconds) < statistics.median(response_seconds(good, o)) / 2 for o in others)


def test_the_broadcaster_posts_most_and_answers_least(good: list[Interaction]) -> None:
    reach: dict[str, int] = defaultdict(int)
    for event in good:
        if event.kind == "post":
            reach[event.brand] += event.impressions or 0
    assert max(reach, key=lambda b: reach[b]) == BRAND["broadcaster"]
    assert reply_rate(good, BRAND["broadcaster"]) < 0.1


def test_the_broadcaster_mostly_broadcasts(good: list[Interaction]) -> None:
    """Conversation versus broadcast: a broadcast is an outbound post with no parent and no customer, a brand
    reply an outbound conversational message addressed to a customer. Every post carries its counters."""
    broadcasts: Counter[str] = Counter()
    replies: Counter[str] = Counter()
    for event in good:
        if event.direction != "outbound" or event.kind not in CONVERSATIONAL_KINDS:
            continue
        if event.kind == "post" and event.parent_id is None and event.customer_id is None:
            broadcasts[event.brand] += 1
            assert None not in (event.impressions, event.likes, event.shares, event.replies)
        elif event.customer_id is not None:
            replies[event.brand] += 1
    share = {brand: replies[brand] / (replies[brand] + broadcasts[brand]) for brand in BRAND.values()}
    broadcaster = BRAND["broadcaster"]
    assert broadcasts[broadcaster] > 2 * replies[broadcaster] and broadcasts[broadcaster] >= 50
    assert share[broadcaster] < 0.35, share
    assert all(share[brand] > 0.75 for brand in BRAND.values() if brand != broadcaster), share
    assert broadcasts[broadcaster] == max(broadcasts.values())


def test_the_influencer_only_brand_answers_big_accounts(good: list[Interaction]) -> None:
    def by_tier(brand: str) -> list[float]:
        return [reply_rate(good, brand, tier) for tier in range(4)]

    under_100, hundreds, thousands, influencers = rates = by_tier(BRAND["influencer_only"])
    assert influencers > 0.75, rates
    assert under_100 < 0.1 and hundreds < 0.15, rates
    assert max(under_100, hundreds) < thousands < influencers, f"more followers, more answers: {rates}"
    assert reply_rate(good, BRAND["influencer_only"]) < 0.4
    # ... and first: big accounts wait minutes, the others (when answered at all) hours
    big = statistics.median(response_seconds(good, BRAND["influencer_only"], tiers=(3,)))
    small = statistics.median(response_seconds(good, BRAND["influencer_only"], tiers=(0, 1)))
    assert big < 30 * 60 and small > 3 * big, (big, small)
    # the attentive brand answers every tier
    attentive = [reply_rate(good, BRAND["attentive"], tier, at_least=10) for tier in range(4)]
    assert min(attentive) > 0.8, attentive


def test_the_outage_brand_goes_silent_mid_period_while_customers_write(good: list[Interaction]) -> None:
    brand = BRAND["outage"]
    persona = demo.PERSONAS_BY_HABIT["outage"]
    begins = demo.DEFAULT_START + timedelta(days=7, hours=demo.OUTAGE_START_HOUR)  # the middle day of 14
    ends = begins + timedelta(hours=persona.outage_hours)
    gap = longest_gap(good, brand)
    assert gap[0] <= begins and gap[1] >= ends, f"its longest silence {gap} is not the outage {begins}–{ends}"
    assert persona.outage_hours <= hours(gap) <= persona.outage_hours + 6
    # longer than any silence of the attentive brand, nights included (the slow brand keeps office hours, so its
    # weekends are silent by design: within office hours it never goes as quiet as the outage)
    assert hours(gap) > hours(longest_gap(good, BRAND["attentive"])) + 1
    # and no other brand that answers most people goes quiet for most of a working day
    assert business_hours_silence(good, brand) >= 7.5
    assert business_hours_silence(good, BRAND["attentive"]) < 5
    assert business_hours_silence(good, BRAND["slow"], weekdays=True) < 7  # it keeps office hours: weekends are quiet

    # customers kept writing, some of them twice ("is anyone there?") ...
    during = [e for e in needing_reply(good, brand) if begins <= e.created_at < ends]
    assert len(during) >= 8
    nudges = {t.format(brand=brand, topic=topic) for t in demo.NUDGES for topic in persona.topics}
    assert any(e.text in nudges for e in during)
    # ... so each one breached a 1-hour SLA, and the catch-up afterwards was slow
    answered = first_replies(good)
    waits = [(answered[e.event_id].created_at - e.created_at).total_seconds() for e in during if e.event_id in answered]
    assert len(waits) >= 3, "it catches up on some of them"
    assert min(waits) > HOUR and statistics.median(waits) > 3 * HOUR
    assert statistics.median(response_seconds(good, brand)) < HOUR, "outside the outage it answers within the hour"
    assert reply_rate(good, brand) > 0.7


def test_the_slow_brand_answers_most_but_hours_later(good: list[Interaction]) -> None:
    brand = BRAND["slow"]
    assert reply_rate(good, brand) > 0.6
    median = statistics.median(response_seconds(good, brand))
    assert median > 4 * HOUR
    assert median > 10 * statistics.median(response_seconds(good, BRAND["attentive"]))


def test_the_firefighter_answers_complaints_not_praise(good: list[Interaction]) -> None:
    brand = BRAND["firefighter"]
    answered = first_replies(good)
    mentions = [e for e in good if e.brand == brand and e.kind == "mention"]

    def share(intent: demo.Intent) -> float:
        mine = [e for e in mentions if INTENT_OF[e.text or ""] == intent]
        assert len(mine) >= 20
        return sum(e.event_id in answered for e in mine) / len(mine)

    assert share("complaint") > 0.6
    assert share("praise") < 0.25
    assert share("question") < 0.25


# --- engagement versus reach (issue 14) -------------------------------------------------------------


def brand_replies(good: list[Interaction], brand: str) -> list[Interaction]:
    """Outbound conversational messages of the brand addressed to a customer."""
    return [
        e
        for e in good
        if e.brand == brand and e.direction == "outbound" and e.kind in CONVERSATIONAL_KINDS and e.customer_id
    ]


def canned_rate(good: list[Interaction], brand: str) -> float:
    """Figure 6: canned ÷ the brand's replies with at least 3 tokens (``canned_flags`` judges only those)."""
    flags = canned_flags((e.event_id, int(e.created_at.timestamp()), e.text) for e in brand_replies(good, brand))
    assert len(flags) >= 20, f"too few replies of {brand} to judge"
    return sum(flags.values()) / len(flags)


def test_one_brand_answers_with_templates_and_one_writes_personal_replies(good: list[Interaction]) -> None:
    rates = {brand: canned_rate(good, brand) for brand in BRAND.values() if len(brand_replies(good, brand)) >= 50}
    templated, personal = BRAND["slow"], BRAND["attentive"]
    assert rates[templated] > 0.8, rates
    assert rates[personal] < 0.05, rates
    # the others mix templates and personal replies: in between
    assert all(0.1 < rate < 0.6 for brand, rate in rates.items() if brand not in (templated, personal)), rates
    # the templates: one apology that sends everyone to DMs (with small variations), and a few more
    persona = demo.PERSONAS_BY_HABIT["slow"]
    templates = {
        template.format(handle="x", reference=persona.reference)
        for template in (*demo.CANNED_FIRST, *demo.CANNED_COURTESY, *itertools.chain(*demo.CANNED_SECOND.values()))
    }
    texts = Counter(re.sub(r"@\w+", "@x", e.text or "") for e in brand_replies(good, templated))
    assert sum(count for text, count in texts.items() if text in templates) > 0.8 * texts.total()
    assert sum(count for text, count in texts.items() if "DM us your account number" in text) > 0.4 * texts.total()
    # personal replies: almost every text is different
    assert len({e.text for e in brand_replies(good, personal)}) > 0.95 * len(brand_replies(good, personal))


def sentiment_pairs(good: list[Interaction], brand: str) -> list[tuple[float, float]]:
    """Figure 5: for each answered inbound message M with a sentiment, (s(M), s(M′)) with M′ the same
    customer's first later inbound message with text in the same conversation, written after the reply."""
    score = SentimentScorer().score
    answered = first_replies(good)
    later: dict[tuple[str, str], list[Interaction]] = defaultdict(list)
    mine = customer_messages(good, brand)
    for event in mine:
        later[(event.conversation_id or event.event_id, event.author_id)].append(event)
    pairs = []
    for message in mine:
        reply, before = answered.get(message.event_id), score(message.text)
        if reply is None or before is None:
            continue
        after = [
            e
            for e in later[(message.conversation_id or message.event_id, message.author_id)]
            if e.created_at > reply.created_at and e.text
        ]
        if after:
            shifted = score(min(after, key=lambda e: (e.created_at, e.event_id)).text)
            if shifted is not None:
                pairs.append((before, shifted))
    return pairs


def test_one_brand_turns_angry_customers_around(good: list[Interaction]) -> None:
    """improved-after-reply: the share of pairs whose sentiment rose by more than 0.05."""

    def improved(pairs: list[tuple[float, float]]) -> float:
        return sum(after - before > 0.05 for before, after in pairs) / len(pairs)

    def won_back(pairs: list[tuple[float, float]]) -> float:
        """Of the pairs that open negative (≤ −0.05), the share whose follow-up is positive (≥ 0.05)."""
        negative = [(before, after) for before, after in pairs if before <= -0.05]
        assert len(negative) >= 5
        return sum(after >= 0.05 for _, after in negative) / len(negative)

    pairs = {brand: sentiment_pairs(good, brand) for brand in BRAND.values()}
    turnaround = BRAND["firefighter"]
    others = [brand for brand in BRAND.values() if brand != turnaround and len(pairs[brand]) >= 30]
    assert len(pairs[turnaround]) >= 100 and len(others) >= 4
    # its customers mostly open negative ...
    negative = sum(before <= -0.05 for before, _ in pairs[turnaround]) / len(pairs[turnaround])
    assert negative > 0.6
    # ... and come back in a better mood far more often than the other brands' customers
    rates = {brand: improved(pairs[brand]) for brand in [turnaround, *others]}
    assert rates[turnaround] > 0.75, rates
    assert all(rates[turnaround] > rates[brand] + 0.2 for brand in others), rates
    assert all(won_back(pairs[turnaround]) > won_back(pairs[brand]) + 0.25 for brand in others)


def test_customers_come_back_and_are_answered_again(good: list[Interaction]) -> None:
    """Returning customers write in 2+ conversations; two-way customers are answered in 2+ of them."""
    answered = first_replies(good)
    for brand in BRAND.values():
        conversations: dict[str, set[str]] = defaultdict(set)
        answered_in: dict[str, set[str]] = defaultdict(set)
        for event in customer_messages(good, brand):
            conversation = event.conversation_id or event.event_id
            conversations[event.author_id].add(conversation)
            if event.event_id in answered:
                answered_in[event.author_id].add(conversation)
        returning = sum(len(c) >= 2 for c in conversations.values())
        two_way = sum(len(c) >= 2 for c in answered_in.values())
        assert returning > 0.5 * len(conversations), brand
        if brand in (BRAND["attentive"], BRAND["slow"], BRAND["outage"]):
            assert two_way > 0.5 * len(conversations), brand
        if brand == BRAND["broadcaster"]:
            assert two_way < 0.1 * len(conversations)


def test_post_updates_are_later_versions_of_replayed_posts_with_grown_counters(good: list[Interaction]) -> None:
    updates = demo.post_updates()
    assert updates == demo.post_updates(), "deterministic"
    posts = {e.event_id: e for e in good if e.kind == "post"}
    assert 15 <= len(updates) <= 0.5 * len(posts)
    assert len({u.event_id for u in updates}) == len(updates)
    assert len({u.brand for u in updates}) >= 4
    end = demo.DEFAULT_START + timedelta(days=14)
    for update in updates:
        original = posts[update.event_id]
        assert update.updated_at is not None and update.updated_at > end > original.created_at
        assert update.version_time > original.version_time
        assert update.model_copy(update={"impressions": None, "likes": None, "shares": None, "updated_at": None}) == (
            original.model_copy(update={"impressions": None, "likes": None, "shares": None})
        )
        assert (update.impressions or 0) > (original.impressions or 0)
        assert (update.likes or 0) >= (original.likes or 0) and (update.shares or 0) >= (original.shares or 0)
        assert (update.impressions or 0) > (update.likes or 0)
    assert list(demo.generate()) == list(demo.generate()), "and generate() does not depend on them"


@pytest.fixture(scope="module")
def webhook_events(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """Every correctly signed demo delivery through the pipeline's own parser for its endpoint."""
    settings = Settings(x_consumer_secret="x-secret", meta_app_secret="meta-secret", events_token="token")
    brands = BrandDirectory.from_file(demo_webhooks.write_demo_brands(tmp_path_factory.mktemp("w") / "brands.yaml"))
    state, rows = DictState(), []
    for delivery in [*demo_webhooks.demo_deliveries(settings), *demo_webhooks.reach_deliveries(settings)]:
        if delivery.expect != 200:
            continue
        fmt = delivery.path.rsplit("/", 1)[1]
        result = process_message(
            RawMessage(delivery.body, fmt, "rapport.raw"), state, lambda text: None, time.time(), Options(brands=brands)
        )
        if delivery.signals:
            assert not result.dead_letters, (delivery.what, result.dead_letters[0].reason)
            assert Counter(delivery.signals) == Counter(
                "post update" if row["updated_at"] else row["kind"] for row in result.interactions
            ), delivery.what
        rows += result.interactions
    return rows


def test_reach_signals_reach_the_worker_through_the_webhook_endpoints(webhook_events: list[dict[str, Any]]) -> None:
    kinds = Counter((row["brand"], row["platform"], row["kind"]) for row in webhook_events if not row["deleted"])
    for kind in ("reaction", "share"):
        for platform in ("x", "facebook"):
            brands = {brand for brand, p, k in kinds if (p, k) == (platform, kind)}
            assert len(brands) >= 3, (kind, platform, brands)
    assert len({brand for brand, p, k in kinds if (p, k) == ("x", "follow")}) >= 3
    total = Counter(kind for (_, _, kind), count in kinds.items() for _ in range(count))
    assert total["reaction"] >= 40 and total["share"] >= 10 and total["follow"] >= 10, total
    # the broadcaster gets the most of each
    for kind in ("reaction", "share", "follow"):
        per_brand = Counter({brand: count for (brand, _, k), count in kinds.items() if k == kind})
        assert per_brand.most_common(1)[0][0] == BRAND["broadcaster"], (kind, per_brand)
    # likes and retweets are of the brands' own posts; the X users have a heavy tail of followers
    posts = {row["event_id"] for row in webhook_events if row["kind"] == "post"}
    on_x = [row for row in webhook_events if row["platform"] == "x" and row["kind"] in ("reaction", "share")]
    assert sum(row["parent_id"] in posts for row in on_x) >= len(on_x) - 1  # the one like of a reply
    known = [row["author_followers"] for row in webhook_events if row["platform"] == "x" and row["kind"] != "post"]
    assert None not in known
    assert sum(f < 1_000 for f in known) > len(known) / 2 and max(known) >= 100_000


def test_grown_post_counters_arrive_through_the_canonical_endpoint(webhook_events: list[dict[str, Any]]) -> None:
    updates = {u.event_id: u for u in demo.post_updates()}
    versions = {row["event_id"]: row for row in webhook_events if row["kind"] == "post" and row["updated_at"]}
    assert versions.keys() == updates.keys()
    for event_id, row in versions.items():
        assert row["impressions"] == updates[event_id].impressions
        assert row["_version"] > row["created_at"] * 1000, "a newer version than the replayed original"


def test_the_webhook_summary_counts_the_reach_signals() -> None:
    settings = Settings(x_consumer_secret="x-secret", meta_app_secret="meta-secret", events_token="token")
    deliveries = demo_webhooks.reach_deliveries(settings)
    assert deliveries == demo_webhooks.reach_deliveries(settings), "fixed bodies: posting them again counts once"
    assert all(d.expect == 200 for d in deliveries)
    signals = Counter(s for d in deliveries for s in d.signals)
    assert signals["reaction"] > 0 and signals["share"] > 0 and signals["follow"] > 0 and signals["post update"] > 0
    # and the summary that `rapport up --demo-webhooks` prints counts them
    sent: list[str] = []

    def accept(base_url: str, delivery: demo_webhooks.Delivery) -> int:
        sent.append(delivery.what)
        return delivery.expect

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(demo_webhooks, "post", accept)
        summary = demo_webhooks.post_demo_webhooks("http://127.0.0.1:1", settings)
    assert len(sent) == len(demo_webhooks.demo_deliveries(settings)) + len(deliveries)
    assert (
        f"reach signals: {signals['reaction']} reactions, {signals['share']} shares, {signals['follow']} follows, "
        f"{signals['post update']} post counter updates"
    ) in summary


# --- parameters, file and CLI ------------------------------------------------------------------------


def test_parameters_scale_the_data() -> None:
    small = [Interaction.model_validate_json(x) for x in demo.generate(customers=40, days=3) if _is_valid(x)]
    start = demo.DEFAULT_START
    assert all(start <= e.created_at < start + timedelta(days=3) for e in small)
    assert len({e.customer_id for e in small if e.customer_id}) <= 40
    two = {e.brand for e in demo_events(brands=2)}
    assert two == {demo.PERSONAS[0].brand, demo.PERSONAS[1].brand}
    other = datetime(2025, 6, 1, 12, tzinfo=UTC)
    assert min(e.created_at for e in demo_events(start=other)) >= other
    with pytest.raises(ValueError):
        demo.generate(days=0)
    with pytest.raises(ValueError):
        demo.generate(start=datetime(2026, 1, 1))


def demo_events(**kwargs: Any) -> list[Interaction]:
    return [
        Interaction.model_validate_json(line)
        for line in demo.generate(customers=60, days=4, **kwargs)
        if _is_valid(line)
    ]


def test_write_demo_file(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "demo.jsonl"
    count = demo.write_demo_file(path, seed=3, customers=50, days=2)
    data = path.read_bytes()
    assert data.endswith(b"\n")
    assert data.split(b"\n")[:-1] == list(demo.generate(seed=3, customers=50, days=2))
    assert count == data.count(b"\n")


def test_cli_demo_data(tmp_path: Path) -> None:
    out = tmp_path / "demo.jsonl"
    result = CliRunner().invoke(
        main, ["demo-data", "--out", str(out), "--seed", "5", "--customers", "30", "--days", "2"]
    )
    assert result.exit_code == 0, result.output
    count = len(out.read_bytes().splitlines())
    assert result.output.strip() == f"wrote {count} events to {out}"
    assert out.read_bytes().splitlines() == list(demo.generate(seed=5, customers=30, days=2))
    bad = CliRunner().invoke(main, ["demo-data", "--out", str(out), "--days", "0"])
    assert bad.exit_code == 2


def test_the_replayer_reads_the_demo_file_keyed_by_brand(tmp_path: Path) -> None:
    from streams.kafka.replay import read_chunks

    path = tmp_path / "demo.jsonl"
    count = demo.write_demo_file(path, customers=60, days=3)
    chunks = list(read_chunks(path, "jsonl", 200))
    assert sum(len(c.records) for c in chunks) == count
    assert {c.key for c in chunks} == {*BRAND.values(), ""}  # "": lines whose brand cannot be read
