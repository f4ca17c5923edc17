"""``rapport metrics`` and ``rapport backlog`` as a user runs them (subprocesses), on a warehouse this module fills
through the worker's pipeline and the sink's recomputation, then closes (chdb: one process at a time)."""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path

import orjson
import pytest

from schemas.contract import INTERACTIONS, RESPONSES, SLA_BREACHES
from schemas.migrate import migrate
from streams.metrics import care, engagement
from streams.processing.pipeline import DictState, process_message
from streams.processing.records import RawMessage
from streams.sinks.warehouse import connect
from streams.worker.sink import aggregate_buckets
from tests.support.cli import one_error_line, rapport
from tests.support.factories import brand_reply, inbound, jsonl

EVENTS = [
    inbound("x:1", created_at="2026-01-05T10:00:00Z", text="where is my order?"),
    brand_reply("x:2", "x:1", "c1", created_at="2026-01-05T10:05:00Z"),  # 300 s
    inbound("x:3", author_id="c2", created_at="2026-01-05T11:00:00Z", text="my bill is wrong, please fix it"),
    inbound("x:4", author_id="c3", created_at="2026-01-05T11:30:00Z", text="thank you!!"),
    inbound("x:5", brand="zeta", author_id="c4", created_at="2026-01-06T09:00:00Z", text="is the shop open today?"),
]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli-metrics")
    warehouse = connect(f"chdb://{root / 'data' / 'clickhouse'}")
    try:
        migrate(warehouse)
        result = process_message(RawMessage(jsonl(EVENTS), "jsonl", "acme"), DictState(), lambda t: 0.0, time.time())
        batches = [(INTERACTIONS, result.interactions), (RESPONSES, result.responses), (SLA_BREACHES, result.breaches)]
        for table, rows in batches:
            warehouse.insert(table, rows)
        care.mark_dirty(warehouse, aggregate_buckets(batches))  # as the sink does
        care.refresh_pending(warehouse)
    finally:
        warehouse.close()
    return root


def test_json_is_one_array_with_the_group_keys_and_the_figure_names(data: Path) -> None:
    result = rapport(data, "metrics", "--data-dir", str(data / "data"), "--format", "json")
    assert result.returncode == 0, result.stderr
    rows = orjson.loads(result.stdout)
    assert [r["brand"] for r in rows] == ["acme", "zeta"]
    assert list(rows[0]) == ["brand", *care.figure_names([3600, 86400]), *engagement.FIGURES]
    acme = rows[0]
    assert (acme["inbound_messages"], acme["answered_messages"], acme["first_response_median_s"]) == (3, 1, 300.0)
    assert acme["needs_reply_messages"] == 2 and acme["first_response_business_median_s"] is None


def test_grouping_range_brand_and_csv(data: Path) -> None:
    result = rapport(
        data, "metrics", "--data-dir", str(data / "data"), "--by", "brand,hour", "--from", "2026-01-05T11:00Z",
        "--to", "2026-01-06", "--brand", "acme", "--format", "csv",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [(r["brand"], r["hour"], r["inbound_messages"]) for r in rows] == [("acme", "2026-01-05T11:00:00Z", "2")]
    assert rows[0]["first_response_median_s"] == ""  # NULL: nothing answered in that hour


def test_table_for_people(data: Path) -> None:
    result = rapport(data, "metrics", "--data-dir", str(data / "data"))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["acme", "zeta"]
    assert any(line.split()[:2] == ["reply_rate", "33.3%"] for line in lines)
    assert any(line.split()[:3] == ["first_response_median_s", "5m", "00s"] for line in lines)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--from", "2026-01-05T10:30Z"), "not on a whole hour"),
        (("--from", "yesterday"), "not an ISO 8601 time"),
        (("--from", "2026-01-06", "--to", "2026-01-05"), "--from must be before --to"),
        (("--by", "customer"), "Invalid value for '--by'"),
    ],
)
def test_bad_options_are_usage_errors(data: Path, args: tuple[str, ...], message: str) -> None:
    result = rapport(data, "metrics", "--data-dir", str(data / "data"), *args)
    assert result.returncode == 2
    assert message in result.stderr


def test_no_data_exits_5(tmp_path: Path) -> None:
    result = rapport(tmp_path, "metrics", "--data-dir", str(tmp_path / "nothing"))
    assert result.returncode == 5
    assert "no Rapport data" in one_error_line(result.stderr)


def test_backlog_lists_what_waits_in_order(data: Path) -> None:
    result = rapport(data, "backlog", "--data-dir", str(data / "data"), "--format", "json")
    assert result.returncode == 0, result.stderr
    waiting = orjson.loads(result.stdout)
    assert [w["inbound_id"] for w in waiting] == ["x:3", "x:5"]  # x:4 needs no reply, x:1 was answered
    table = rapport(data, "backlog", "--data-dir", str(data / "data"), "--brand", "zeta")
    assert table.returncode == 0 and "is the shop open today?" in table.stdout and "x:3" not in table.stdout


def test_an_unknown_brand_says_so_and_csv_keeps_its_header(data: Path) -> None:
    result = rapport(data, "metrics", "--data-dir", str(data / "data"), "--brand", "NoSuchBrand", "--format", "csv")
    assert result.returncode == 0
    assert result.stdout.splitlines() == [",".join(care.column_names("brand", [3600, 86400]))]
    assert "no data for this selection (brands: acme, zeta)" in result.stderr
