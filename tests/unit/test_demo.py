"""The synthetic demo data: deterministic, valid, and showing each brand persona in the numbers."""

from __future__ import annotations

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
from streams.local import demo
from streams.processing.pipeline import DictState, process_message
from streams.processing.records import ProcessResult, RawMessage
from streams.processing.sentiment import SentimentScorer

BRAND = {p.habit: p.brand for p in demo.PERSONAS}


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


def answered_share(result: ProcessResult, brand: str, followers: Any = None) -> float:
    """Share of the brand's inbound conversational messages it answered directly."""
    answered = {r["inbound_id"] for r in result.responses if r["brand"] == brand}
    inbound = [
        row
        for row in result.interactions
        if row["brand"] == brand
        and row["direction"] == "inbound"
        and row["kind"] in CONVERSATIONAL_KINDS
        and (followers is None or followers(row["author_followers"]))
    ]
    assert len(inbound) >= 20, f"too few inbound messages for {brand} to judge"
    return sum(row["event_id"] in answered for row in inbound) / len(inbound)


def median_response_minutes(result: ProcessResult, brand: str) -> float:
    seconds = sorted(r["response_seconds"] for r in result.responses if r["brand"] == brand)
    return seconds[len(seconds) // 2] / 60


# --- determinism and shape -------------------------------------------------------------------------


def test_same_seed_gives_the_same_bytes_and_another_seed_does_not(lines: list[bytes]) -> None:
    assert list(demo.generate(seed=7)) == lines
    assert list(demo.generate(seed=8)) != lines
    small: dict[str, Any] = {"customers": 30, "days": 3}
    assert list(demo.generate(seed=1, **small)) == list(demo.generate(seed=1, **small))


def test_default_size_and_lines_are_json_lines_without_newlines(lines: list[bytes]) -> None:
    assert 8_000 <= len(lines) <= 15_000
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
        if event.kind == "mention":
            assert event.direction == "inbound" and event.parent_id is None
            assert f"@{event.brand}" in (event.text or "")
        if event.direction == "inbound":
            assert event.customer_id == event.author_id and event.author_followers is not None
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


# --- the personas show in the numbers ------------------------------------------------------------


def test_the_attentive_brand_answers_far_more_than_the_broadcaster(processed: ProcessResult) -> None:
    attentive = answered_share(processed, BRAND["attentive"])
    broadcaster = answered_share(processed, BRAND["broadcaster"])
    assert attentive > 0.8
    assert broadcaster < 0.1
    assert median_response_minutes(processed, BRAND["attentive"]) < 20


def test_the_broadcaster_has_the_most_reach(good: list[Interaction]) -> None:
    reach: dict[str, int] = defaultdict(int)
    for event in good:
        if event.kind == "post":
            reach[event.brand] += event.impressions or 0
    assert max(reach, key=lambda b: reach[b]) == BRAND["broadcaster"]


def test_the_influencer_only_brand_answers_big_accounts(processed: ProcessResult) -> None:
    brand = BRAND["influencer_only"]
    big = answered_share(processed, brand, lambda f: f > demo.INFLUENCER_FOLLOWERS)
    rest = answered_share(processed, brand, lambda f: f <= demo.INFLUENCER_FOLLOWERS)
    assert big > 0.6
    assert rest < 0.15
    # the attentive brand does not care about follower counts
    attentive = BRAND["attentive"]
    big_a = answered_share(processed, attentive, lambda f: f > demo.INFLUENCER_FOLLOWERS)
    rest_a = answered_share(processed, attentive, lambda f: f <= demo.INFLUENCER_FOLLOWERS)
    assert abs(big_a - rest_a) < 0.15


def test_the_slow_brand_answers_most_but_hours_later(processed: ProcessResult) -> None:
    assert answered_share(processed, BRAND["slow"]) > 0.6
    assert median_response_minutes(processed, BRAND["slow"]) > 4 * 60
    assert median_response_minutes(processed, BRAND["slow"]) > 10 * median_response_minutes(
        processed, BRAND["attentive"]
    )


def test_the_firefighter_answers_complaints_not_praise(good: list[Interaction]) -> None:
    persona = demo.PERSONAS_BY_HABIT["firefighter"]
    brand = persona.brand
    answered = {e.parent_id for e in good if e.brand == brand and e.direction == "outbound"}
    mentions = [e for e in good if e.brand == brand and e.kind == "mention"]

    def share(tone: demo.Tone) -> float:
        texts = {t.format(brand=brand, topic=topic) for t in demo.MENTIONS[tone] for topic in persona.topics}
        mine = [e for e in mentions if e.text in texts]
        assert len(mine) >= 20
        return sum(e.event_id in answered for e in mine) / len(mine)

    assert share("complaint") > 0.6
    assert share("praise") < 0.25
    assert share("question") < 0.25


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
