"""The canonical event model: one ``Interaction`` for every kind of social event.

Every source (a replayed file, a platform webhook, a poller) is turned into ``Interaction``
objects before anything else happens; the rest of the pipeline only knows this model.

Identity: ``event_id`` is ``"<platform>:<native id>"`` so ids from different platforms never
collide; ``parent_id`` and ``conversation_id`` use the same form.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

Direction = Literal["inbound", "outbound"]
Kind = Literal["post", "comment", "reply", "mention", "direct_message", "reaction", "share", "follow"]

#: Kinds that are conversation (somebody said something); the others are reach/vanity signals.
CONVERSATIONAL_KINDS: frozenset[str] = frozenset({"post", "comment", "reply", "mention", "direct_message"})

#: The range ClickHouse's DateTime stores (Unix seconds in 32 bits, unsigned).
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2106, 2, 7, tzinfo=UTC)

Platform = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")]
EventRef = Annotated[str, Field(min_length=3, max_length=256, pattern=r"^[a-z][a-z0-9_]{0,31}:\S+$")]
NonEmpty = Annotated[str, Field(min_length=1, max_length=256)]
Count = Annotated[int, Field(ge=0, le=2**63 - 1)]


class Interaction(BaseModel):
    """One social event concerning one brand account."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: EventRef = Field(description="Globally unique id: '<platform>:<native id>'.")
    platform: Platform = Field(description="Source platform: x, facebook, instagram, youtube, …")
    brand: NonEmpty = Field(description="The brand account the event concerns (Kafka key).")
    author_id: NonEmpty = Field(description="Platform id of the author.")
    author_handle: str | None = Field(default=None, max_length=256)
    author_followers: Count | None = Field(default=None, description="Follower count when known.")
    direction: Direction = Field(description="inbound = customer → brand; outbound = brand → anyone.")
    kind: Kind
    text: str | None = Field(default=None, max_length=100_000)
    created_at: datetime = Field(description="When the event happened, timezone-aware, stored as UTC.")
    parent_id: EventRef | None = Field(default=None, description="The event this one directly answers.")
    conversation_id: EventRef | None = Field(
        default=None, description="Root of the reply tree; filled in by the pipeline when absent."
    )
    customer_id: str | None = Field(
        default=None,
        max_length=256,
        description="The customer the event concerns: the author of an inbound event, the addressee of "
        "an outbound reply or message; None for a brand broadcast.",
    )
    deleted: bool = Field(default=False, description="The platform reported the event removed (text dropped).")
    updated_at: datetime | None = Field(
        default=None, description="When the platform reported this version (an edit or removal); None for the original."
    )
    impressions: Count | None = None
    likes: Count | None = None
    shares: Count | None = None
    replies: Count | None = None

    @field_validator("created_at", "updated_at")
    @classmethod
    def _aware_utc(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("must include a timezone (e.g. '2017-10-31T22:10:47Z')")
        try:
            value = value.astimezone(UTC)
        except OverflowError:
            value = EARLIEST - timedelta(seconds=1)  # reported as out of range below
        if not EARLIEST <= value < LATEST:
            raise ValueError(f"must be between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d} (UTC)")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Interaction:
        prefix = self.platform + ":"
        for name in ("event_id", "parent_id", "conversation_id"):
            value = getattr(self, name)
            if value is not None and not value.startswith(prefix):
                raise ValueError(f"{name}: must start with the platform prefix {prefix!r}, got {value!r}")
        if self.parent_id is not None and self.parent_id == self.event_id:
            raise ValueError("parent_id: an event cannot answer itself")
        if self.direction == "inbound" and self.customer_id not in (None, self.author_id):
            raise ValueError("customer_id: an inbound event's customer is its author")
        if self.deleted and self.text is not None:
            raise ValueError("text: a deleted event carries no text")
        return self

    @property
    def version_time(self) -> datetime:
        """When this version of the event was reported: edits and removals are newer than the original."""
        return self.updated_at or self.created_at

    @property
    def is_conversational(self) -> bool:
        return self.kind in CONVERSATIONAL_KINDS

    @property
    def customer(self) -> str | None:
        """The customer this event concerns (inbound: the author)."""
        return self.author_id if self.direction == "inbound" else self.customer_id


def describe_validation_error(error: ValidationError) -> str:
    """One line naming every offending field, e.g. ``created_at: Input should be a valid datetime``."""
    parts = []
    for item in error.errors():
        loc = ".".join(str(p) for p in item["loc"]) or "(event)"
        msg = item["msg"].removeprefix("Value error, ")
        # model-level errors already start with the field name
        parts.append(msg if loc == "(event)" and ":" in msg else f"{loc}: {msg}")
    return "; ".join(parts).replace("\r", "\\r").replace("\n", "\\n")  # one line, whatever the input
