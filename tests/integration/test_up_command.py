"""`rapport up` as a user runs it: a subprocess, with its summary, its Ctrl-C and its errors."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from streams.localbroker import free_port

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def events(n: int, brand: str = "acme") -> bytes:
    lines = []
    for i in range(n):
        inbound = {
            "event_id": f"x:{1000 + i}",
            "platform": "x",
            "brand": brand,
            "author_id": f"c{i % 7}",
            "direction": "inbound",
            "kind": "mention",
            "text": "help please, my order is late :(",
            "created_at": f"2026-01-05T10:{i % 60:02d}:00Z",
        }
        lines.append(orjson.dumps(inbound))
        if i % 2 == 0:
            lines.append(
                orjson.dumps(
                    {
                        "event_id": f"x:{9000 + i}",
                        "platform": "x",
                        "brand": brand,
                        "author_id": brand,
                        "direction": "outbound",
                        "kind": "reply",
                        "text": "sorry! DM us",
                        "parent_id": f"x:{1000 + i}",
                        "customer_id": f"c{i % 7}",
                        "created_at": f"2026-01-05T11:{i % 60:02d}:00Z",
                    }
                )
            )
    return b"\n".join(lines) + b"\nnot json at all\n"


def rapport(*args: str, **kwargs) -> subprocess.Popen[str]:
    env = os.environ | {"RAPPORT_WEB_PORT": str(free_port())}
    return subprocess.Popen(
        [sys.executable, "-m", "streams.cli", *args],
        cwd=ROOT,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **kwargs,
    )


def sql(data_dir: Path, query: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "streams.cli", "sql", query, "--data-dir", str(data_dir), "--format", "TSV"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_up_exit_when_drained_prints_the_summary(tmp_path):
    data = tmp_path / "events.jsonl"
    data.write_bytes(events(40))
    proc = rapport(
        "up",
        "--data-dir",
        str(tmp_path / "d"),
        "--replay",
        str(data),
        "--format",
        "jsonl",
        "--exit-when-drained",
        "--drain-timeout",
        "120",
    )
    out, err = proc.communicate(timeout=240)
    assert proc.returncode == 0, err
    assert "summary: events in 61, stored 60, dead-lettered 1" in out
    assert sql(tmp_path / "d", "SELECT count() FROM responses FINAL") == "20"
    # and again: the same file changes no figure
    proc = rapport(
        "up",
        "--data-dir",
        str(tmp_path / "d"),
        "--replay",
        str(data),
        "--format",
        "jsonl",
        "--exit-when-drained",
    )
    out, err = proc.communicate(timeout=240)
    assert proc.returncode == 0, err
    assert sql(tmp_path / "d", "SELECT count() FROM interactions FINAL") == "60"
    assert sql(tmp_path / "d", "SELECT count() FROM dead_letters FINAL") == "1"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_up_stops_cleanly_on_a_signal_with_everything_received_stored(tmp_path, sig):
    data = tmp_path / "events.jsonl"
    data.write_bytes(events(300))
    proc = rapport("up", "--data-dir", str(tmp_path / "d"), "--replay", str(data), "--format", "jsonl")
    assert proc.stdout is not None
    deadline = time.monotonic() + 120
    for line in proc.stdout:
        if line.startswith("replayed "):  # events are in Kafka; the worker may not have stored them yet
            break
        assert time.monotonic() < deadline
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err
    assert "dead-lettered 1" in out
    assert sql(tmp_path / "d", "SELECT count() FROM interactions FINAL") == "450"


def test_up_errors_are_one_line_with_exit_codes(tmp_path):
    proc = rapport(
        "up",
        "--data-dir",
        str(tmp_path / "d"),
        "--replay",
        str(tmp_path / "missing.csv"),
        "--format",
        "twcs",
        "--exit-when-drained",
    )
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 3
    assert err.strip().startswith("rapport: error:") and "missing.csv" in err and len(err.strip().splitlines()) == 1
