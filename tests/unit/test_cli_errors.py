"""``rapport`` exit codes and one-line error messages, run as a user runs it (a subprocess)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cli import TIMEOUT, one_error_line, rapport, start


@pytest.fixture(scope="module")
def tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cli")


@pytest.fixture(scope="module")
def valid_jsonl(tmp: Path) -> Path:
    path = tmp / "events.jsonl"
    path.write_text(
        '{"event_id":"x:1","platform":"x","brand":"b","author_id":"c","direction":"inbound",'
        '"kind":"mention","text":"hi","created_at":"2017-10-31T22:10:47Z"}\n'
    )
    return path


@pytest.fixture(scope="module")
def unreachable_broker(tmp: Path, valid_jsonl: Path) -> Iterator[subprocess.Popen[str]]:
    # `rapport replay` waits 10 s (hard-coded) for a broker: start it first, the other tests run meanwhile
    process = start(tmp, "replay", str(valid_jsonl), "--format", "jsonl", "--brokers", "127.0.0.1:1", "--no-progress")
    yield process
    if process.poll() is None:
        process.kill()
        process.communicate()


@pytest.fixture(autouse=True)
def _broker_runs_in_background(unreachable_broker: subprocess.Popen[str]) -> None:
    """Started by the module's first test so the 10-second wait overlaps the others."""


def test_replay_missing_file_exits_3_naming_it(tmp: Path) -> None:
    result = rapport(tmp, "replay", "/nonexistent/file.csv", "--format", "twcs")
    assert result.returncode == 3
    assert "/nonexistent/file.csv" in one_error_line(result.stderr)
    assert "no such file" in result.stderr


def test_replay_wrong_header_exits_3(tmp: Path) -> None:
    path = tmp / "not-twcs.csv"
    path.write_text("id,user,message\n1,a,hello\n")
    result = rapport(tmp, "replay", str(path), "--format", "twcs")
    assert result.returncode == 3
    line = one_error_line(result.stderr)
    assert "not a twcs file" in line and str(path) in line


def test_replay_unknown_format_is_usage_error(tmp: Path) -> None:
    result = rapport(tmp, "replay", "x", "--format", "xml")
    assert result.returncode == 2
    assert "'xml'" in result.stderr and "--format" in result.stderr
    assert "Traceback" not in result.stderr


def test_sql_on_unreachable_server_exits_5(tmp: Path) -> None:
    result = rapport(tmp, "sql", "SELECT 1", "--clickhouse", "clickhouse://127.0.0.1:1/db")
    assert result.returncode == 5
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("rapport: error: ") and "unreachable" in last and "127.0.0.1:1" in last


def test_sql_on_unreachable_server_error_is_one_line(tmp: Path) -> None:
    result = rapport(tmp, "sql", "SELECT 1", "--clickhouse", "clickhouse://127.0.0.1:1/db")
    assert result.returncode == 5
    assert "unreachable" in one_error_line(result.stderr)


def test_sql_without_data_exits_5(tmp: Path) -> None:
    empty = tmp / "empty"
    empty.mkdir()
    result = rapport(tmp, "sql", "SELECT 1", "--data-dir", str(empty))
    assert result.returncode == 5
    line = one_error_line(result.stderr)
    assert "no Rapport data" in line and str(empty) in line


def test_bad_warehouse_url_exits_5(tmp: Path) -> None:
    result = rapport(tmp, "sql", "SELECT 1", "--clickhouse", "foo://x")
    assert result.returncode == 5
    assert "bad warehouse URL" in one_error_line(result.stderr)


def test_migrate_twice_then_query(tmp: Path) -> None:
    url = f"chdb://{tmp / 'warehouse'}"
    first = rapport(tmp, "migrate", "--clickhouse", url)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == f"{url}: applied 0001_core_tables, 0002_care_metrics, 0003_engagement"
    second = rapport(tmp, "migrate", "--clickhouse", url)
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == f"{url}: applied none (up to date)"
    query = rapport(tmp, "sql", "SELECT count() FROM interactions", "--clickhouse", url, "--format", "TSV")
    assert query.returncode == 0, query.stderr
    assert query.stdout == "0\n"
    bad = rapport(tmp, "sql", "SELECT * FROM no_such_table", "--clickhouse", url)
    assert bad.returncode == 5
    assert "no_such_table" in one_error_line(bad.stderr)


def test_replay_to_unreachable_broker_exits_4(unreachable_broker: subprocess.Popen[str]) -> None:
    stdout, stderr = unreachable_broker.communicate(timeout=TIMEOUT)
    assert unreachable_broker.returncode == 4
    line = one_error_line(stderr)
    assert "unreachable" in line and "127.0.0.1:1" in line
    assert stdout == ""
