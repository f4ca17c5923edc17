"""The canonical ``Interaction`` model and its one-line validation messages."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas.interaction import Interaction, describe_validation_error
from tests.support.factories import inbound


def event(**overrides: Any) -> dict[str, Any]:
    base = inbound("x:1", "sprintcare", "115712", text="@sprintcare help", created_at="2017-10-31T22:10:47Z")
    return base | overrides


def reason_for(data: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as info:
        Interaction.model_validate_json(json.dumps(data))
    return describe_validation_error(info.value)


@pytest.mark.parametrize(
    "data",
    [
        event(),
        event(
            parent_id="x:0", customer_id="115712", author_followers=12, likes=3, created_at="2017-10-31T17:10:47-05:00"
        ),
        event(text=None, deleted=True, updated_at="2017-11-01T00:00:00Z"),
    ],
)
def test_field_values_are_the_python_dump(data: dict[str, Any]) -> None:
    """The pipeline builds rows from ``__dict__`` (a tenth of ``model_dump``'s cost): they must agree."""
    interaction = Interaction.model_validate(data)
    assert interaction.__dict__ == interaction.model_dump(mode="python")
    assert list(interaction.__dict__) == list(Interaction.model_fields)


def test_valid_event_round_trips_through_json() -> None:
    original = Interaction.model_validate(
        event(
            parent_id="x:0",
            conversation_id="x:0",
            customer_id="115712",
            author_handle="someone",
            author_followers=12,
            impressions=0,
            likes=3,
            shares=1,
            replies=2,
        )
    )
    again = Interaction.model_validate_json(original.model_dump_json())
    assert again == original
    assert again.created_at == datetime(2017, 10, 31, 22, 10, 47, tzinfo=UTC)
    assert again.likes == 3 and again.parent_id == "x:0"


def test_naive_datetime_is_rejected_naming_created_at() -> None:
    reason = reason_for(event(created_at="2017-10-31T22:10:47"))
    assert reason.startswith("created_at: ")
    assert "timezone" in reason


def test_non_utc_offset_is_converted_to_utc() -> None:
    parsed = Interaction.model_validate(event(created_at="2017-11-01T00:10:47+02:00"))
    assert parsed.created_at.utcoffset() == timedelta(0)
    assert parsed.created_at == datetime(2017, 10, 31, 22, 10, 47, tzinfo=UTC)
    assert (parsed.created_at.hour, parsed.created_at.day) == (22, 31)
    # a datetime object with an offset, too
    aware = datetime(2017, 10, 31, 17, 10, 47, tzinfo=timezone(timedelta(hours=-5)))
    assert Interaction.model_validate(event(created_at=aware)).created_at.hour == 22


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"event_id": "1234"}, "event_id"),  # no platform prefix at all
        ({"event_id": "facebook:1"}, "event_id"),  # another platform's prefix
        ({"parent_id": "facebook:1"}, "parent_id"),
        ({"conversation_id": "y:1"}, "conversation_id"),
        ({"kind": "tweet"}, "kind"),
        ({"direction": "sideways"}, "direction"),
        ({"likes": -1}, "likes"),
        ({"author_followers": -5}, "author_followers"),
        ({"impressions": -1}, "impressions"),
        ({"shares": -1}, "shares"),
        ({"replies": -1}, "replies"),
        ({"parent_id": "x:1"}, "parent_id"),  # answers itself
        ({"customer_id": "someone-else"}, "customer_id"),  # inbound: the customer is the author
    ],
)
def test_bad_field_is_rejected_naming_it(overrides: dict[str, Any], field: str) -> None:
    reason = reason_for(event(**overrides))
    assert reason.startswith(f"{field}: "), reason
    assert "\n" not in reason


def test_unknown_extra_field_is_rejected_naming_it() -> None:
    reason = reason_for(event(retweets=3))
    assert reason == "retweets: Extra inputs are not permitted"


def test_missing_required_field_is_named() -> None:
    data = event()
    del data["brand"]
    assert reason_for(data) == "brand: Field required"


def test_description_is_one_line_naming_every_bad_field() -> None:
    reason = reason_for(event(kind="tweet", direction="up", likes=-1, created_at="yesterday", surprise=1))
    assert "\n" not in reason
    parts = reason.split("; ")
    assert sorted(p.split(":")[0] for p in parts) == ["created_at", "direction", "kind", "likes", "surprise"]


def test_invalid_json_and_non_object_give_a_reason() -> None:
    with pytest.raises(ValidationError) as info:
        Interaction.model_validate_json(b"{not json")
    assert describe_validation_error(info.value).startswith("Invalid JSON")
    with pytest.raises(ValidationError) as info:
        Interaction.model_validate_json(b"[1, 2]")
    assert describe_validation_error(info.value).startswith("(event): ")


def test_customer_property() -> None:
    inbound = Interaction.model_validate(event())
    assert inbound.customer == "115712"
    outbound = Interaction.model_validate(
        event(direction="outbound", author_id="sprintcare", kind="reply", parent_id="x:0", customer_id="115712")
    )
    assert outbound.customer == "115712"
    broadcast = Interaction.model_validate(event(direction="outbound", author_id="sprintcare", kind="post"))
    assert broadcast.customer is None
    assert inbound.is_conversational
    assert not Interaction.model_validate(event(kind="reaction", text=None)).is_conversational


@pytest.mark.parametrize("created_at", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_out_of_range_utc_datetime_is_a_validation_error(created_at: str) -> None:
    with pytest.raises(ValidationError) as info:
        Interaction.model_validate_json(json.dumps(event(created_at=created_at)))
    assert describe_validation_error(info.value).startswith("created_at: ")


def test_description_stays_one_line_for_a_key_with_a_newline() -> None:
    reason = reason_for(event(**{"bad\nkey": 1}))
    assert "\n" not in reason


# --- property: anything JSON in, a model or a ValidationError out --------------------------------

_FIELDS = [
    "event_id",
    "platform",
    "brand",
    "author_id",
    "author_handle",
    "author_followers",
    "direction",
    "kind",
    "text",
    "created_at",
    "parent_id",
    "conversation_id",
    "customer_id",
    "impressions",
    "likes",
    "shares",
    "replies",
]
_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.text(max_size=30),
    st.sampled_from(
        [
            "x:1",
            "x:2",
            "y:1",
            "inbound",
            "outbound",
            "reply",
            "reaction",
            "2017-10-31T22:10:47Z",
            "2017-10-31T22:10:47+05:30",
            "2017-10-31 22:10:47",
            "x",
            "",
        ]
    ),
)
_keys = st.one_of(st.sampled_from(_FIELDS), st.text(min_size=1, max_size=10).filter(lambda k: "\n" not in k))


@settings(max_examples=300, deadline=None)
@given(
    base=st.booleans(),
    fields=st.dictionaries(_keys, _values, max_size=8),
)
def test_arbitrary_json_objects_validate_or_raise_validation_error(base: bool, fields: dict[str, Any]) -> None:
    data = {**event(), **fields} if base else fields
    try:
        model = Interaction.model_validate_json(json.dumps(data))
    except ValidationError as exc:
        reason = describe_validation_error(exc)
        assert reason
        assert "\n" not in reason
    else:
        assert model.created_at.utcoffset() == timedelta(0)
        assert model.event_id.startswith(model.platform + ":")
