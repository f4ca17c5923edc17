"""The backlog: messages that need a reply and are still unanswered, the most pressing first.

Order (also the order of the ``care_backlog`` view's ``priority`` column, which dashboards sort by):
1. ``priority``: 0 for negative messages (sentiment ≤ −0.05), 1 for neutral ones and those without a score, 2 for
   positive ones (sentiment ≥ 0.05): an angry customer waits less;
2. ``inbound_at``, oldest first: within the same priority, first come, first served;
3. ``inbound_id``: a stable order for messages of the same second.

``waited_s`` is how long each has waited: now (the wall clock when the query runs) − ``inbound_at``. A message
leaves the backlog when its brand answers it directly (a ``responses`` row), when it is removed, or when an edit
makes it one that needs no reply.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from streams.metrics.report import duration, readable
from streams.metrics.report import render as render_rows
from streams.sinks.warehouse import Warehouse, in_list

COLUMNS = (
    "brand",
    "platform",
    "inbound_id",
    "customer_id",
    "author_handle",
    "author_followers",
    "inbound_at",
    "sentiment",
    "priority",
    "waited_s",
    "text",
)


def backlog_sql(brands: Sequence[str], limit: int) -> str:
    where = f"WHERE brand IN {in_list(brands)}" if brands else ""
    return (
        f"SELECT {', '.join(COLUMNS)} FROM care_backlog {where} "
        f"ORDER BY priority, inbound_at, inbound_id LIMIT {int(limit)}"
    )


def backlog(warehouse: Warehouse, brands: Sequence[str] = (), limit: int = 50) -> list[dict[str, Any]]:
    out = []
    for row in warehouse.rows(backlog_sql(brands, limit)):
        item = dict(zip(COLUMNS, row, strict=True))
        item["inbound_at"] = str(item["inbound_at"]).replace(" ", "T").removesuffix("+00:00") + "Z"
        out.append(item)
    return out


def render(rows: Sequence[dict[str, Any]], fmt: str) -> str:
    if fmt != "table":
        return render_rows(rows, fmt)
    if not rows:
        return "(nothing waiting)\n"
    header = ("waited", "brand", "platform", "customer", "sentiment", "inbound_at", "text")
    lines = [
        (
            duration(r["waited_s"]),
            r["brand"],
            r["platform"],
            r["author_handle"] or r["customer_id"] or "",
            readable("sentiment", r["sentiment"]),
            r["inbound_at"],
            (r["text"] or "").replace("\n", " ")[:60],
        )
        for r in rows
    ]
    widths = [max(len(str(x[i])) for x in [header, *lines]) for i in range(len(header))]
    text = [
        "  ".join(str(cell).ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in [header, *lines]
    ]
    text.insert(1, "-" * len(text[0]))
    return "\n".join(text) + "\n"
