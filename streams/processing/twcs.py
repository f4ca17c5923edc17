"""The "Customer Support on Twitter" (twcs) CSV format.

Columns: ``tweet_id, author_id, inbound, created_at, text, response_tweet_id, in_response_to_tweet_id``;
``created_at`` like ``Tue Oct 31 22:10:47 +0000 2017``. Platform ``x``.

Two steps, both pure:

1. :func:`resolve_context` looks at the *whole file* (only the file knows which authors are brands
   and where a reply tree starts) and tells, per tweet, its brand, conversation root and customer.
   The replayer runs it and sends the result with each chunk (header ``rapport-context``).
2. :func:`to_interaction` turns one CSV record plus its context into an ``Interaction``; the worker
   runs it, so a bad row is rejected (dead-lettered) in one place with its original bytes.

Brand rules (the issue's, plus two fallbacks for what the data set anonymised):
- the brands are the authors of rows with ``inbound=False``; an outbound row belongs to its author;
- an inbound row belongs to the brand of its parent when the parent is a brand's message, and to its
  parent's brand when the parent is inbound;
- an inbound row that starts a conversation (or whose parent is not in the file, or whose parent has
  no brand) belongs to the first ``@handle`` in its text naming a brand (X handles are
  case-insensitive); failing that, to the brand that wrote the earliest direct reply to it (the data
  set replaced many brand handles by numbers, e.g. ``@115714`` for ``@sprintcare``);
- a row with no brand by these rules is dead-lettered ("brand: no brand could be determined").

Conversation root: follow ``in_response_to_tweet_id`` up while the parent is in the file; when the
chain leaves the file, the last referenced id is the root. Customer: the author of an inbound row;
for an outbound row, the author of the nearest inbound ancestor (None for a brand's own post).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from schemas.interaction import Interaction, Kind, describe_validation_error

COLUMNS = (
    "tweet_id",
    "author_id",
    "inbound",
    "created_at",
    "text",
    "response_tweet_id",
    "in_response_to_tweet_id",
)
TIME_FORMAT = "%a %b %d %H:%M:%S %z %Y"
_HANDLE = re.compile(r"@(\w{1,50})")


class RecordError(ValueError):
    """A record that cannot become an interaction; the message names the field."""


@dataclass(frozen=True)
class Context:
    brand: str | None
    conversation_id: str | None
    customer_id: str | None

    def to_json(self) -> list[str | None]:
        return [self.brand, self.conversation_id, self.customer_id]

    @classmethod
    def from_json(cls, value: Any) -> Context:
        if not (isinstance(value, list) and len(value) == 3):
            raise RecordError("context: missing or malformed (replay the file with `rapport replay`)")
        return cls(*value)


def parse_fields(record: bytes) -> dict[str, str]:
    """One CSV record (bytes, may span lines) → a dict of the 7 twcs columns."""
    try:
        text = record.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RecordError(f"record: not UTF-8 ({exc.reason} at byte {exc.start})") from exc
    try:
        # newline="": only \r and \n end CSV lines (str.splitlines would also split on U+2028 & co.)
        rows = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    except csv.Error as exc:
        raise RecordError(f"record: malformed CSV ({exc})") from exc
    if len(rows) != 1:
        raise RecordError(f"record: expected one CSV row, got {len(rows)}")
    values = rows[0]
    if len(values) != len(COLUMNS):
        raise RecordError(f"record: expected {len(COLUMNS)} columns ({', '.join(COLUMNS)}), got {len(values)}")
    return dict(zip(COLUMNS, values, strict=True))


def _is_outbound(fields: dict[str, str]) -> bool:
    return fields["inbound"].strip().lower() == "false"


def resolve_context(rows: Sequence[dict[str, str]]) -> dict[str, Context]:
    """Brand, conversation root and customer of every tweet of a file (see the module doc)."""
    by_id = {r["tweet_id"]: r for r in rows}
    brands = {r["author_id"] for r in rows if _is_outbound(r)}
    brand_by_lower = {b.lower(): b for b in brands}

    # the earliest direct brand reply of every tweet, for the anonymised-handle fallback
    first_brand_reply: dict[str, tuple[datetime, str]] = {}
    for r in rows:
        parent = r["in_response_to_tweet_id"]
        if _is_outbound(r) and parent:
            try:
                at = datetime.strptime(r["created_at"], TIME_FORMAT)
            except ValueError:
                continue
            if parent not in first_brand_reply or (at, r["author_id"]) < first_brand_reply[parent]:
                first_brand_reply[parent] = (at, r["author_id"])

    def own_brand(r: dict[str, str]) -> str | None:
        for handle in _HANDLE.findall(r["text"]):
            if handle.lower() in brand_by_lower:
                return brand_by_lower[handle.lower()]
        reply = first_brand_reply.get(r["tweet_id"])
        return reply[1] if reply else None

    brand_of: dict[str, str | None] = {}
    root_of: dict[str, str] = {}
    customer_of: dict[str, str | None] = {}

    def chain(tweet_id: str) -> list[str]:
        """tweet_id and its ancestors inside the file, up to the first one already resolved."""
        out, seen = [], set()
        current: str | None = tweet_id
        while current is not None and current in by_id and current not in brand_of and current not in seen:
            seen.add(current)
            out.append(current)
            current = by_id[current]["in_response_to_tweet_id"] or None
        return out

    for tweet_id in by_id:
        # resolve from the top of the chain down, so every parent is known before its child
        for tid in reversed(chain(tweet_id)):
            r = by_id[tid]
            parent_id = r["in_response_to_tweet_id"]
            parent_known = parent_id in by_id and parent_id in brand_of
            if _is_outbound(r):
                brand: str | None = r["author_id"]
            elif parent_known and brand_of[parent_id] is not None:
                brand = brand_of[parent_id]
            else:
                brand = own_brand(r)
            brand_of[tid] = brand
            if not parent_id:
                root_of[tid] = tid
            else:
                root_of[tid] = root_of[parent_id] if parent_known else parent_id
            if not _is_outbound(r):
                customer_of[tid] = r["author_id"]
            else:
                customer_of[tid] = customer_of.get(parent_id) if parent_known else None

    return {tid: Context(brand_of[tid], "x:" + root_of[tid], customer_of[tid]) for tid in by_id}


def to_interaction(fields: dict[str, str], context: Context) -> Interaction:
    """One twcs row + its file context → an ``Interaction`` (``RecordError`` names the bad field)."""
    tweet_id = fields["tweet_id"].strip()
    if not (tweet_id.isascii() and tweet_id.isdigit()):
        raise RecordError(f"tweet_id: expected a number, got {fields['tweet_id']!r}")
    inbound = fields["inbound"].strip().lower()
    if inbound not in ("true", "false"):
        raise RecordError(f"inbound: expected True or False, got {fields['inbound']!r}")
    try:
        created_at = datetime.strptime(fields["created_at"].strip(), TIME_FORMAT)
    except ValueError as exc:
        raise RecordError(
            f"created_at: expected like 'Tue Oct 31 22:10:47 +0000 2017', got {fields['created_at']!r}"
        ) from exc
    parent = fields["in_response_to_tweet_id"].strip()
    if parent and not (parent.isascii() and parent.isdigit()):
        raise RecordError(f"in_response_to_tweet_id: expected a number, got {parent!r}")
    if context.brand is None:
        raise RecordError(
            "brand: no brand could be determined (no brand reply above or below it, no brand @handle in the text)"
        )
    author = fields["author_id"].strip()
    outbound = inbound == "false"
    kind: Kind = "reply" if parent else ("post" if outbound else "mention")
    try:
        return Interaction(
            event_id=f"x:{tweet_id}",
            platform="x",
            brand=context.brand,
            author_id=author,
            author_handle=author if outbound or not author.isdigit() else None,
            direction="outbound" if outbound else "inbound",
            kind=kind,
            text=fields["text"],
            created_at=created_at,
            parent_id=f"x:{parent}" if parent else None,
            conversation_id=context.conversation_id,
            customer_id=context.customer_id if outbound else author,
        )
    except ValidationError as exc:
        raise RecordError(describe_validation_error(exc)) from exc
