"""Platform webhook parsers: X (Account Activity + X Activity API), Meta (Pages, Instagram), canonical JSON.

Fixtures are bodies in the shapes the platforms document (``tests/fixtures/webhooks/SOURCES.md``); each
test checks by hand the fields that fixture is about.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.interaction import Interaction
from streams.processing.platforms import EMPTY_DIRECTORY, BrandDirectory, Parsed, common, events, meta, x

FIXTURES = Path(__file__).parents[1] / "fixtures" / "webhooks"
BRANDS = BrandDirectory.from_file(FIXTURES / "brands.yaml")
PARSERS: dict[str, ModuleType] = {"x": x, "meta": meta, "events": events}
ALL_FIXTURES = sorted(f"{folder}/{path.name}" for folder in PARSERS for path in (FIXTURES / folder).glob("*.json"))

ACME_X, ACME_PAGE, ACME_IG = "2244994945", "104830000000001", "17841400000000001"
JORDAN, MARIA, KIM = "1510523958923497472", "98765432", "1765432109876543210"
PAGE_POST = "104830000000001_122145873210000001"
COMMENT = "122145873210000001_1088301745592317"


def body(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def parser(name: str) -> ModuleType:
    return PARSERS[name.split("/")[0]]


def parse(name: str, brands: BrandDirectory = BRANDS) -> list[Parsed]:
    return list(parser(name).parse(body(name), brands))


def only(name: str) -> Interaction:
    """The one interaction a fixture holds (and it belongs to acme)."""
    results = parse(name)
    assert len(results) == 1, results
    assert results[0].ok, results[0].result
    assert results[0].brand == "acme"
    assert isinstance(results[0].result, Interaction)
    return results[0].result


def reasons(results: list[Parsed]) -> list[str]:
    return [p.result for p in results if isinstance(p.result, str)]


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def edited(name: str, change: Any) -> bytes:
    """A fixture with ``change(data)`` applied."""
    data = json.loads(body(name))
    change(data)
    return json.dumps(data).encode()


# --- every fixture ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL_FIXTURES)
def test_fixture_redelivery_gives_the_same_events_and_brands_agree(name: str) -> None:
    first, again = parse(name), parse(name)
    assert first == again  # same event ids, same versions: a redelivered body is deduplicated downstream
    assert parser(name).brands_in(body(name), BRANDS) == {p.brand for p in first}
    for result in first:
        assert isinstance(orjson.loads(result.original), dict | list)  # the event object, re-serialised
        assert not (isinstance(result.result, str) and result.result.startswith("internal error"))


def test_reactions_shares_and_follows_are_not_conversation() -> None:
    kinds: dict[str, bool] = {}
    for name in ALL_FIXTURES:
        for result in parse(name):
            if isinstance(result.result, Interaction):
                kinds[result.result.kind] = result.result.is_conversational
    assert {kind for kind, talk in kinds.items() if not talk} == {"reaction", "share", "follow"}
    assert {kind for kind, talk in kinds.items() if talk} == {"post", "comment", "reply", "mention", "direct_message"}


# --- X: Account Activity API -----------------------------------------------------------------------


def test_x_mention_takes_the_full_text_of_a_truncated_tweet() -> None:
    event = only("x/tweet_mention.json")
    assert (event.event_id, event.platform, event.kind, event.direction) == (
        "x:1767551916177227776",
        "x",
        "mention",
        "inbound",
    )
    assert (event.author_id, event.author_handle, event.author_followers) == (JORDAN, "jordan_kp", 212)
    assert event.text is not None and event.text.endswith("I paid for 2-day delivery.")
    assert event.created_at == at("2024-03-12 14:03:11")
    assert event.parent_id is None and event.conversation_id is None  # v1.1 has no conversation id
    assert event.customer_id == JORDAN


def test_x_brand_reply_is_outbound_and_addressed_to_the_customer() -> None:
    event = only("x/tweet_reply_outbound.json")
    assert (event.kind, event.direction, event.author_id) == ("reply", "outbound", ACME_X)
    assert event.parent_id == "x:1767551916177227776"  # answers the mention
    assert event.customer_id == JORDAN
    assert (event.likes, event.shares, event.replies) == (0, 0, 0)


def test_x_customer_reply_is_inbound() -> None:
    event = only("x/tweet_reply_inbound.json")
    assert (event.kind, event.direction, event.customer_id) == ("reply", "inbound", JORDAN)
    assert event.parent_id == "x:1767556567660363777"
    assert event.text == "@acme thanks, just sent it"


def test_x_brand_post_is_a_broadcast_without_customer() -> None:
    event = only("x/tweet_post.json")
    assert (event.kind, event.direction, event.customer_id, event.parent_id) == ("post", "outbound", None, None)
    assert event.author_followers == 48210


def test_x_quote_tweet_of_the_brand_is_a_mention() -> None:
    event = only("x/tweet_quote.json")
    assert (event.kind, event.direction, event.author_id, event.parent_id) == ("mention", "inbound", MARIA, None)
    assert event.text is not None and event.text.startswith("@acme finally!")


def test_x_retweet_is_a_share_of_the_retweeted_tweet_without_text() -> None:
    event = only("x/tweet_retweet.json")
    assert (event.kind, event.direction, event.text) == ("share", "inbound", None)
    assert event.parent_id == "x:1767943701919563779"  # the brand's post
    assert event.customer_id == MARIA


def test_x_favorite_is_a_reaction_to_the_liked_tweet() -> None:
    event = only("x/favorite.json")
    assert event.event_id == "x:favorite:a7ba59eab0bfcba386f7acedac279542"
    assert (event.kind, event.direction, event.author_id, event.customer_id) == ("reaction", "inbound", JORDAN, JORDAN)
    assert event.parent_id == "x:1767556567660363777"
    assert event.text is None
    assert event.created_at == at("2024-03-12 14:30:27")  # from timestamp_ms


def test_x_brand_like_is_outbound_and_concerns_the_liked_author() -> None:
    def brand_likes(data: dict[str, Any]) -> None:
        event = data["favorite_events"][0]
        event["user"], event["favorited_status"]["user"] = event["favorited_status"]["user"], event["user"]

    [result] = x.parse(edited("x/favorite.json", brand_likes), BRANDS)
    assert isinstance(result.result, Interaction)
    assert (result.result.direction, result.result.author_id, result.result.customer_id) == ("outbound", ACME_X, JORDAN)


def test_x_follow_then_unfollow_are_two_versions_of_one_event() -> None:
    follow, unfollow = only("x/follow.json"), only("x/unfollow.json")
    assert follow.event_id == unfollow.event_id == f"x:follow:{MARIA}:{ACME_X}"
    assert (follow.kind, follow.direction, follow.author_id, follow.customer_id) == ("follow", "inbound", MARIA, MARIA)
    assert (follow.deleted, follow.updated_at) == (False, None)
    assert unfollow.deleted and unfollow.updated_at == at("2024-04-02 09:45:12")
    assert unfollow.version_time > follow.version_time  # the unfollow replaces the follow


def test_x_direct_messages_in_both_directions() -> None:
    received, sent = only("x/direct_message_received.json"), only("x/direct_message_sent.json")
    assert received.event_id == "x:dm:1767557784008523782"
    assert (received.kind, received.direction, received.author_id, received.customer_id) == (
        "direct_message",
        "inbound",
        JORDAN,
        JORDAN,
    )
    assert (received.author_handle, received.author_followers) == ("jordan_kp", 212)  # from the users map
    assert received.text == "Hi, it's order #88412, placed March 3rd."
    assert received.created_at == at("2024-03-12 14:26:30")
    assert (sent.direction, sent.author_id, sent.customer_id) == ("outbound", ACME_X, JORDAN)


def test_x_tweet_deletion_is_rejected_with_the_brand() -> None:
    [result] = parse("x/tweet_delete.json")
    assert result.brand == "acme"
    assert result.result == (
        "tweet_delete_events[0]: deletions of tweets are not supported yet (x:1767557414909771778 was deleted)"
    )


@pytest.mark.parametrize("name", ["x/typing_indicator.json", "x/activity_profile_update_bio.json"])
def test_x_activity_that_is_not_content_is_skipped(name: str) -> None:
    assert parse(name) == []
    assert x.brands_in(body(name), BRANDS) == set()


def test_x_unknown_account_rejects_every_event_of_the_body() -> None:
    def two_tweets_for_someone_else(data: dict[str, Any]) -> None:
        data["for_user_id"] = "123"
        data["tweet_create_events"] *= 2

    raw = edited("x/tweet_mention.json", two_tweets_for_someone_else)
    results = x.parse(raw, BRANDS)
    assert [(p.brand, p.result) for p in results] == [("", "for_user_id: account 123 is not in the brands file")] * 2
    assert orjson.loads(results[0].original)["id_str"] == "1767551916177227776"  # the event, not the body
    assert x.brands_in(raw, BRANDS) == {""}


def test_x_bad_field_rejects_only_its_event_and_names_its_path() -> None:
    def second_tweet_with_bad_date(data: dict[str, Any]) -> None:
        data["tweet_create_events"].append(dict(data["tweet_create_events"][0], created_at="yesterday"))

    first, second = x.parse(edited("x/tweet_mention.json", second_tweet_with_bad_date), BRANDS)
    assert first.ok
    assert second.brand == "acme"
    assert second.result == (
        "tweet_create_events[1].created_at: expected a date like 'Wed Oct 10 20:19:24 +0000 2018', got 'yesterday'"
    )


def test_x_unknown_event_array_is_rejected_not_dropped() -> None:
    raw = orjson.dumps({"for_user_id": ACME_X, "poll_vote_events": [{"id": "1"}]})
    [result] = x.parse(raw, BRANDS)
    assert (result.brand, result.result) == (
        "acme",
        "poll_vote_events[0]: unknown Account Activity event type 'poll_vote_events'",
    )


def test_x_another_account_of_the_same_brand_counts_as_the_brand() -> None:
    brands = BrandDirectory.from_mapping({"brands": {"acme": {"x": [ACME_X, "777"]}}})

    def answered_by_acme_help(data: dict[str, Any]) -> None:
        data["tweet_create_events"][0]["user"] = {"id_str": "777", "screen_name": "acmehelp", "followers_count": 9}

    [result] = x.parse(edited("x/tweet_reply_outbound.json", answered_by_acme_help), brands)
    assert isinstance(result.result, Interaction)
    assert (result.result.direction, result.result.customer_id) == ("outbound", JORDAN)


def test_x_brand_answering_itself_concerns_no_customer() -> None:
    def thread(data: dict[str, Any]) -> None:
        data["tweet_create_events"][0]["in_reply_to_user_id_str"] = ACME_X

    [result] = x.parse(edited("x/tweet_reply_outbound.json", thread), BRANDS)
    assert isinstance(result.result, Interaction)
    assert (result.result.kind, result.result.customer_id) == ("reply", None)


# --- X Activity API --------------------------------------------------------------------------------


def test_x_activity_mention_of_the_brand() -> None:
    event = only("x/activity_post_mention_create.json")
    assert (event.event_id, event.kind, event.direction, event.author_id) == (
        "x:1787410485999435784",
        "mention",
        "inbound",
        KIM,
    )
    assert (event.author_handle, event.author_followers) == ("kimngu", 97)  # from includes.users
    assert event.conversation_id == "x:1787410485999435784"
    assert event.created_at == at("2024-05-06 09:14:03")
    assert event.customer_id == KIM


def test_x_activity_brand_reply_has_parent_conversation_and_metrics() -> None:
    event = only("x/activity_post_create.json")
    assert (event.kind, event.direction, event.author_id) == ("reply", "outbound", ACME_X)
    assert event.parent_id == event.conversation_id == "x:1787410485999435784"
    assert event.customer_id == KIM  # in_reply_to_user_id
    assert (event.impressions, event.likes, event.shares, event.replies) == (3, 0, 0, 0)


def test_x_activity_direct_message() -> None:
    event = only("x/activity_dm_received.json")
    assert (event.kind, event.direction, event.author_id, event.author_handle) == (
        "direct_message",
        "inbound",
        KIM,
        "kimngu",
    )
    assert event.text == "thanks! one more q: do you ship to Canada?"


def test_x_activity_unknown_filter_user_is_rejected() -> None:
    def for_someone_else(data: dict[str, Any]) -> None:
        data["data"]["filter"]["user_id"] = "555"

    raw = edited("x/activity_post_create.json", for_someone_else)
    [result] = x.parse(raw, BRANDS)
    assert (result.brand, result.result) == ("", "data.filter.user_id: account 555 is not in the brands file")
    assert x.brands_in(raw, BRANDS) == {""}


@pytest.mark.parametrize(
    ("event_type", "reason"),
    [
        ("post.delete", "data.payload: deletions of tweets are not supported yet"),
        ("like.create", "data.event_type: like.create is not supported yet"),
        ("follow.follow", "data.event_type: follow.follow is not supported"),
        ("chat.received", "data.event_type: chat.received is not supported"),
        ("post.teleport", "data.event_type: 'post.teleport' is not supported"),
    ],
)
def test_x_activity_unsupported_events_are_rejected(event_type: str, reason: str) -> None:
    def retype(data: dict[str, Any]) -> None:
        data["data"]["event_type"] = event_type

    [result] = x.parse(edited("x/activity_post_create.json", retype), BRANDS)
    assert result.brand == "acme"
    assert isinstance(result.result, str) and result.result.startswith(reason)


# --- Meta: Facebook Page feed ----------------------------------------------------------------------


def test_facebook_comment_on_the_page_post() -> None:
    event = only("meta/page_feed_comment.json")
    assert (event.event_id, event.platform) == (f"facebook:{COMMENT}", "facebook")
    assert (event.kind, event.direction, event.author_id, event.author_handle) == (
        "comment",
        "inbound",
        "7203958112345678",
        "Dana Whitfield",
    )
    assert event.parent_id == event.conversation_id == f"facebook:{PAGE_POST}"
    assert event.created_at == at("2024-03-14 10:05:31")
    assert (event.deleted, event.updated_at, event.customer_id) == (False, None, "7203958112345678")


def test_facebook_page_reply_to_a_comment_with_an_iso_created_time() -> None:
    event = only("meta/page_feed_reply.json")
    assert (event.kind, event.direction, event.author_id) == ("reply", "outbound", ACME_PAGE)
    assert event.parent_id == f"facebook:{COMMENT}"
    assert event.conversation_id == f"facebook:{PAGE_POST}"
    assert event.created_at == at("2024-03-14 10:32:08")  # "2024-03-14T10:32:08+0000"
    assert event.customer_id is None  # the addressee is not in the payload


def test_facebook_edit_and_removal_are_newer_versions_of_the_comment() -> None:
    original = only("meta/page_feed_comment.json")
    edit = only("meta/page_feed_comment_edited.json")
    removal = only("meta/page_feed_comment_removed.json")
    assert original.event_id == edit.event_id == removal.event_id
    assert edit.text is not None and "(see photo)" in edit.text and not edit.deleted
    assert edit.created_at == original.created_at and edit.updated_at == at("2024-03-14 10:07:02")  # entry.time
    assert removal.deleted and removal.text is None
    assert removal.updated_at == at("2024-03-15 08:12:40")
    assert original.version_time < edit.version_time < removal.version_time
    assert (edit.kind, removal.kind, removal.direction) == ("comment", "comment", "inbound")


def test_facebook_hidden_comment_counts_as_removed() -> None:
    event = only("meta/page_feed_comment_hidden.json")
    assert (event.deleted, event.text, event.updated_at) == (True, None, at("2024-03-15 08:30:00"))


def test_facebook_page_status_is_a_broadcast() -> None:
    event = only("meta/page_feed_status.json")
    assert event.event_id == event.conversation_id == f"facebook:{PAGE_POST}"
    assert (event.kind, event.direction, event.customer_id, event.parent_id) == ("post", "outbound", None, None)


def test_facebook_reaction_has_a_deterministic_id_and_un_reacting_removes_it() -> None:
    event = only("meta/page_feed_reaction.json")
    assert event.event_id == f"facebook:reaction:{PAGE_POST}:6519384402291133"
    assert (event.kind, event.text, event.parent_id) == ("reaction", None, f"facebook:{PAGE_POST}")

    def un_react(data: dict[str, Any]) -> None:
        data["entry"][0]["time"] += 60
        data["entry"][0]["changes"][0]["value"]["verb"] = "remove"

    [removal] = meta.parse(edited("meta/page_feed_reaction.json", un_react), BRANDS)
    assert isinstance(removal.result, Interaction)
    assert removal.result.event_id == event.event_id and removal.result.deleted


def test_facebook_reaction_on_a_comment_answers_the_comment() -> None:
    def on_comment(data: dict[str, Any]) -> None:
        data["entry"][0]["changes"][0]["value"].update(comment_id=COMMENT, parent_id=COMMENT)

    [result] = meta.parse(edited("meta/page_feed_reaction.json", on_comment), BRANDS)
    assert isinstance(result.result, Interaction)
    assert result.result.event_id == f"facebook:reaction:{COMMENT}:6519384402291133"
    assert result.result.parent_id == f"facebook:{COMMENT}"


def test_facebook_share() -> None:
    event = only("meta/page_feed_share.json")
    assert event.event_id == "facebook:share:803311925104477:6519384402291133"
    assert (event.kind, event.direction, event.text) == ("share", "inbound", "Want this one 😍")


def test_facebook_unknown_page_is_rejected_per_event_and_other_entries_still_parse() -> None:
    def add_unknown_page(data: dict[str, Any]) -> None:
        data["entry"].append(dict(data["entry"][0], id="999"))

    raw = edited("meta/page_feed_comment.json", add_unknown_page)
    known, unknown = meta.parse(raw, BRANDS)
    assert known.ok and known.brand == "acme"
    assert (unknown.brand, unknown.result) == ("", "entry[1].id: account 999 is not in the brands file")
    assert orjson.loads(unknown.original)["field"] == "feed"  # the change object
    assert meta.brands_in(raw, BRANDS) == {"acme", ""}


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"field": "ratings", "value": {}}, "entry[0].changes[0].field: unsupported field 'ratings'"),
        ({"field": "feed", "value": {"item": "milestone", "verb": "add", "from": {"id": "1"}, "post_id": "2"}},
         "entry[0].changes[0].value.item: 'milestone' is not supported"),
        ({"field": "feed", "value": {"item": "comment", "verb": "block", "from": {"id": "1"}, "post_id": "2"}},
         "entry[0].changes[0].value.verb: 'block' is not supported"),
        ({"field": "feed", "value": {"item": "comment", "verb": "add", "post_id": "2"}},
         "entry[0].changes[0].value.from: missing"),
    ],
)  # fmt: skip
def test_facebook_changes_it_cannot_use_are_rejected_with_their_path(change: dict[str, Any], reason: str) -> None:
    raw = orjson.dumps({"object": "page", "entry": [{"id": ACME_PAGE, "time": 1710410731, "changes": [change]}]})
    [result] = meta.parse(raw, BRANDS)
    assert (result.brand, result.result) == ("acme", reason)


def test_meta_time_accepts_unix_seconds_milliseconds_and_iso() -> None:
    expected = at("2024-01-01 12:00:00")
    for value in (1704110400, "1704110400", 1704110400000, "2024-01-01T12:00:00+0000", "2024-01-01T13:00:00+01:00"):
        assert meta.meta_time(value, "t") == expected


# --- Meta: Instagram -------------------------------------------------------------------------------


def test_instagram_comment_on_the_brand_media() -> None:
    event = only("meta/instagram_comment.json")
    assert (event.event_id, event.platform, event.kind, event.direction) == (
        "instagram:17865799348089039",
        "instagram",
        "comment",
        "inbound",
    )
    assert (event.author_id, event.author_handle, event.text) == (
        "17841456000001234",
        "dana.whitfield",
        "Does it come in green? 💚",
    )
    assert event.parent_id == event.conversation_id == "instagram:17990000000000101"
    assert event.created_at == at("2024-03-16 19:22:05")  # entry.time: the value carries no timestamp


def test_instagram_brand_reply_to_a_comment() -> None:
    event = only("meta/instagram_reply.json")
    assert (event.kind, event.direction, event.author_id) == ("reply", "outbound", ACME_IG)
    assert event.parent_id == "instagram:17865799348089039"
    assert event.conversation_id == "instagram:17990000000000101"


def test_instagram_mention_has_no_known_author_or_text() -> None:
    event = only("meta/instagram_mention.json")
    assert (event.event_id, event.kind, event.direction) == ("instagram:17871055864004356", "mention", "inbound")
    assert (event.author_id, event.text) == ("unknown", None)
    assert event.parent_id == event.conversation_id == "instagram:17887498072083520"


def test_instagram_login_flat_entry_in_a_json_array() -> None:
    event = only("meta/instagram_comment_instagram_login.json")
    assert (event.event_id, event.author_handle, event.kind) == ("instagram:17858893269000001", "sam.okafor", "comment")


def test_instagram_messaging_is_an_unsupported_field() -> None:
    [result] = parse("meta/instagram_messaging.json")
    assert result.brand == "acme"
    assert result.result == (
        "entry[0].messaging[0]: unsupported field (Messenger / Instagram direct messages are not supported yet)"
    )


# --- canonical JSON --------------------------------------------------------------------------------


def test_canonical_array_and_wrapped_forms() -> None:
    mention, reply = (p.result for p in parse("events/interactions.json"))
    assert isinstance(mention, Interaction) and isinstance(reply, Interaction)
    assert reply.parent_id == mention.event_id
    removed = only("events/wrapped.json")
    assert removed.deleted and removed.updated_at == at("2024-03-15 08:12:40")


def test_canonical_brand_must_be_in_the_brands_file_unless_there_is_none() -> None:
    def rebrand(data: list[dict[str, Any]]) -> None:
        data[1]["brand"] = "zeta"

    raw = edited("events/interactions.json", rebrand)
    ok, other = events.parse(raw, BRANDS)
    assert ok.ok and ok.brand == "acme"
    assert (other.brand, other.result) == ("", "[1].brand: 'zeta' is not in the brands file")
    assert events.brands_in(raw, BRANDS) == {"acme", ""}
    assert [p.brand for p in events.parse(raw, EMPTY_DIRECTORY)] == ["acme", "zeta"]


def test_canonical_invalid_event_names_its_index_and_field() -> None:
    def break_time(data: dict[str, Any]) -> None:
        data["events"][0]["created_at"] = "2024-03-14T10:05:31"  # no timezone

    [result] = events.parse(edited("events/wrapped.json", break_time), BRANDS)
    assert result.brand == "acme"
    assert result.result == "events[0]: created_at: must include a timezone (e.g. '2017-10-31T22:10:47Z')"


# --- bodies that are not webhooks ------------------------------------------------------------------

PARSER_MODULES = [x, meta, events]


@pytest.mark.parametrize("module", PARSER_MODULES, ids=lambda m: m.__name__.rsplit(".", 1)[1])
@pytest.mark.parametrize("raw", [b"", b"<html>", b"null", b"42", b'"x"', b"{}", b'{"object": "user", "entry": []}'])
def test_a_body_that_is_not_a_webhook_is_one_rejection_of_the_whole_body(module: ModuleType, raw: bytes) -> None:
    [result] = module.parse(raw, BRANDS)
    assert (result.brand, result.original) == ("", raw)
    assert isinstance(result.result, str) and not result.result.startswith("internal error")
    assert module.brands_in(raw, BRANDS) == {""}


@pytest.mark.parametrize("module", PARSER_MODULES, ids=lambda m: m.__name__.rsplit(".", 1)[1])
def test_deeply_nested_events_are_rejected_not_crashed(module: ModuleType) -> None:
    nested = "[" * 1000 + "]" * 1000  # deeper than orjson.dumps and repr() accept, within orjson.loads' limit
    raw = {
        x: '{"for_user_id": "2244994945", "tweet_create_events": [%s]}',
        meta: '{"object": "page", "entry": [{"id": "104830000000001", "changes": [%s]}]}',
        events: "[%s]",
    }[module] % nested
    [result] = module.parse(raw.encode(), BRANDS)
    assert result.brand == "acme" or module is events
    assert isinstance(result.result, str) and "expected" in result.result
    assert result.original == common.TOO_DEEP


# --- properties ------------------------------------------------------------------------------------

KEYS = st.sampled_from(
    [
        "for_user_id", "tweet_create_events", "favorite_events", "follow_events", "direct_message_events",
        "tweet_delete_events", "users", "data", "event_type", "filter", "user_id", "payload", "includes", "id",
        "id_str", "user", "created_at", "text", "object", "entry", "changes", "field", "value", "item", "verb",
        "from", "post_id", "comment_id", "parent_id", "created_time", "time", "media", "events", "brand",
    ]
)  # fmt: skip
LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from([ACME_X, ACME_PAGE, ACME_IG, "page", "instagram", "feed", "comment", "add", "post.create"])
)
JSON = st.recursive(
    LEAVES,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(KEYS | st.text(max_size=8), children, max_size=5),
    max_leaves=30,
)


def check(module: ModuleType, raw: bytes) -> None:
    results = module.parse(raw, BRANDS)
    assert isinstance(results, list) and all(isinstance(p, Parsed) for p in results)
    assert module.brands_in(raw, BRANDS) == {p.brand for p in results}
    for result in results:
        assert isinstance(result.original, bytes)
        assert isinstance(result.result, Interaction) or not result.result.startswith("internal error"), result.result


@settings(max_examples=150, deadline=None)
@given(module=st.sampled_from(PARSER_MODULES), raw=st.binary(max_size=200))
def test_property_arbitrary_bytes_never_raise(module: ModuleType, raw: bytes) -> None:
    check(module, raw)


@settings(max_examples=300, deadline=None)
@given(module=st.sampled_from(PARSER_MODULES), value=JSON)
def test_property_arbitrary_json_never_raises(module: ModuleType, value: Any) -> None:
    check(module, json.dumps(value).encode())


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in children:
        yield from paths(child, (*prefix, key))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(ALL_FIXTURES), data=st.data())
def test_property_damaged_fixtures_never_raise(name: str, data: st.DataObject) -> None:
    """Real payloads with one value replaced or removed: every code path sees bad input somewhere."""
    document = json.loads(body(name))
    where = data.draw(st.sampled_from(list(paths(document))[1:]))
    parent = document
    for key in where[:-1]:
        parent = parent[key]
    if data.draw(st.booleans()):
        parent[where[-1]] = data.draw(JSON)
    elif isinstance(parent, dict):
        del parent[where[-1]]
    else:
        parent.pop(where[-1])
    check(parser(name), json.dumps(document).encode())
