"""Figures as people, programs and spreadsheets read them: ``table``, ``json``, ``csv``.

``json`` is one JSON array of objects (the group keys, then the figures; null where undefined), ``csv`` one row
per group with a header, and ``table`` a text table for people: one column per group and one line per figure,
with rates as percentages, durations as ``1h 05m`` and counts with thousands separators.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

import orjson

KEYS = ("brand", "platform", "day", "hour", "tier")
GROUPS_PER_BLOCK = 6


def duration(seconds: float) -> str:
    """``4m 10s``, ``1h 05m``, ``2d 3h``; under a minute ``42s``."""
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 86400}d {s % 86400 // 3600}h"


def readable(name: str, value: Any) -> str:
    if value is None:
        return "–"
    if name.endswith(("_rate", "_share")):
        return f"{100 * value:.1f}%"
    if name.endswith("_s"):
        return duration(value)
    if isinstance(value, float):
        return f"{value:,.3f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def render(rows: Sequence[dict[str, Any]], fmt: str, columns: Sequence[str] = ()) -> str:
    """``rows`` in ``fmt``; ``columns`` names the CSV header when there is no row (scripts still get one)."""
    if fmt == "json":
        return orjson.dumps(list(rows), option=orjson.OPT_INDENT_2).decode() + "\n"
    if fmt == "csv":
        out = io.StringIO()
        fieldnames = list(rows[0]) if rows else list(columns)
        if fieldnames:
            writer = csv.DictWriter(out, fieldnames=fieldnames, lineterminator="\n")
            writer.writeheader()
            writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in rows)
        return out.getvalue()
    if fmt == "table":
        return table(rows)
    raise ValueError(f"unknown format {fmt!r} (table, json, csv)")


def table(rows: Sequence[dict[str, Any]]) -> str:
    """Figures down, groups across (``GROUPS_PER_BLOCK`` groups per block, so it fits a terminal)."""
    if not rows:
        return "(no data in the range)\n"
    keys = [k for k in KEYS if k in rows[0]]
    figures = [name for name in rows[0] if name not in keys]
    blocks = []
    for start in range(0, len(rows), GROUPS_PER_BLOCK):
        chunk = rows[start : start + GROUPS_PER_BLOCK]
        lines = [[" / ".join(str(r[k]) for k in keys) for r in chunk]]
        lines += [[readable(name, r[name]) for r in chunk] for name in figures]
        labels = ["", *figures]
        label_width = max(len(label) for label in labels)
        widths = [max(len(line[i]) for line in lines) for i in range(len(chunk))]
        text = []
        for label, line in zip(labels, lines, strict=True):
            cells = "  ".join(cell.rjust(width) for cell, width in zip(line, widths, strict=True))
            text.append(f"{label.ljust(label_width)}  {cells}".rstrip())
        text.insert(1, "-" * len(text[0]))
        blocks.append("\n".join(text))
    return "\n\n".join(blocks) + "\n"
