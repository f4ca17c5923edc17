"""`rapport up` as a user runs it: a subprocess, with its summary, its Ctrl-C and its errors."""

from __future__ import annotations

import os
import queue
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

import pytest

from streams.local.broker import free_port
from tests.support.factories import brand_reply, inbound, jsonl

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def events(n: int, brand: str = "acme") -> bytes:
    lines = []
    for i in range(n):
        customer, minute = f"c{i % 7}", f"{i % 60:02d}"
        text = "help please, my order is late :("
        lines.append(inbound(f"x:{1000 + i}", brand, customer, text=text, created_at=f"2026-01-05T10:{minute}:00Z"))
        if i % 2 == 0:
            at = f"2026-01-05T11:{minute}:00Z"
            lines.append(brand_reply(f"x:{9000 + i}", f"x:{1000 + i}", customer, brand, created_at=at))
    return jsonl(lines) + b"not json at all\n"


def rapport(*args: str, env_extra: dict[str, str] | None = None, **kwargs) -> subprocess.Popen[str]:
    # every stack on its own ports: two tests (or a developer's own `rapport up`) never share 6066/6067
    env = (
        os.environ
        | {"RAPPORT_WEB_PORT": str(free_port()), "RAPPORT_ADMIN_PORT": str(free_port()), "PYTHONUNBUFFERED": "1"}
        | (env_extra or {})
    )
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
    # and a file holding every line twice: `stored` counts distinct events, not the rows inserted
    doubled = tmp_path / "doubled.jsonl"
    doubled.write_bytes(data.read_bytes() * 2)
    proc = rapport(
        "up", "--data-dir", str(tmp_path / "d"), "--replay", str(doubled), "--format", "jsonl", "--exit-when-drained"
    )
    out, err = proc.communicate(timeout=240)
    assert proc.returncode == 0, err
    assert "summary: events in 122, stored 60, dead-lettered 2 (120 rows inserted this run)" in out
    assert sql(tmp_path / "d", "SELECT count() FROM interactions FINAL") == "60"


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


def test_up_with_a_twcs_quote_never_closed_exits_3_naming_the_line_before_starting(tmp_path):
    path = tmp_path / "open-quote.csv"
    path.write_text(
        "tweet_id,author_id,inbound,created_at,text,response_tweet_id,in_response_to_tweet_id\n"
        "1,sprintcare,False,Tue Oct 31 22:10:47 +0000 2017,a post,,\n"
        '2,cust,True,Tue Oct 31 22:11:47 +0000 2017,"never closed,,1\n'
        "3,cust,True,Tue Oct 31 22:12:47 +0000 2017,swallowed,,\n"
    )
    proc = rapport("up", "--data-dir", str(tmp_path / "d"), "--replay", str(path), "--format", "twcs")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 3, err
    assert err.strip() == (
        f"rapport: error: {path}: line 3: unterminated quote (the quoted field starting there runs to the end of "
        "the file)"
    )
    assert "broker" not in out  # nothing was started


# --- failing closed: no process left behind, a dead worker is an error, a stalled drain is bounded ----------


class Output:
    """The lines `rapport up` prints, read in a thread (so a test can wait for one with a time limit)."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._read, args=(proc.stdout,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self._queue.put(line)
        self._queue.put(None)

    def wait_for(self, prefix: str, timeout: float = 120) -> str:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._queue.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no line starting {prefix!r} after {timeout}s: {self.lines}") from None
            if line is None:
                raise AssertionError(f"rapport up ended before printing {prefix!r}: {self.lines}")
            self.lines.append(line)
            if line.startswith(prefix):
                return line

    def rest(self, timeout: float = 5) -> str:
        self._thread.join(timeout)
        while not self._queue.empty():
            line = self._queue.get()
            if line is not None:
                self.lines.append(line)
        return "".join(self.lines)


def number(pattern: str, text: str) -> int:
    found = re.search(pattern, text)
    assert found, (pattern, text)
    return int(found.group(1))


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")  # a zombie nobody reaps (a container without init) is gone


def children(pid: int) -> set[int]:
    """The processes whose parent is ``pid``, from /proc."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def port_free(port: int) -> bool:
    """Nothing listens on ``port`` (a server could bind it; connections in TIME_WAIT do not count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def until(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


class Stack:
    """The pids and ports of a running `rapport up`, from what it printed (and /proc)."""

    def __init__(self, proc: subprocess.Popen[str], output: Output) -> None:
        broker = output.wait_for("broker  ")
        worker = output.wait_for("worker  ")
        self.broker_pid = number(r"\(pid (\d+),", broker)
        self.worker_pid = number(r"^worker  pid (\d+),", worker)
        self.ports = [
            number(r"tansu on 127\.0\.0\.1:(\d+)", broker),
            number(r"web http://127\.0\.0\.1:(\d+)", worker),
            number(r"admin http://127\.0\.0\.1:(\d+)", worker),
        ]
        self.pids = {self.broker_pid, self.worker_pid} | children(proc.pid)

    def gone(self) -> bool:
        return not any(alive(pid) for pid in self.pids) and all(port_free(port) for port in self.ports)

    def kill_leftovers(self) -> None:
        for pid in self.pids:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_up_sigkilled_leaves_no_process_behind(tmp_path):
    data = tmp_path / "events.jsonl"
    data.write_bytes(events(50))
    proc = rapport("up", "--data-dir", str(tmp_path / "d"), "--replay", str(data), "--format", "jsonl")
    output = Output(proc)
    stack = Stack(proc, output)
    try:
        output.wait_for("running; Ctrl-C to stop")
        assert {stack.broker_pid, stack.worker_pid} <= children(proc.pid)
        assert all(alive(pid) for pid in stack.pids)
        proc.kill()  # no clean-up runs in `rapport up`: the kernel has to stop its children
        proc.wait(10)
        assert until(stack.gone, 5), f"left behind: {[p for p in stack.pids if alive(p)]}, ports {stack.ports}"
    finally:
        proc.kill()
        stack.kill_leftovers()


def worker_killed_under_up(tmp_path, *options: str, when: str | None) -> tuple[int, str, str, Stack]:
    data = tmp_path / "events.jsonl"
    data.write_bytes(events(50))
    proc = rapport("up", "--data-dir", str(tmp_path / "d"), "--replay", str(data), "--format", "jsonl", *options)
    output = Output(proc)
    stack = Stack(proc, output)
    try:
        if when is not None:
            output.wait_for(when)
        os.kill(stack.worker_pid, signal.SIGKILL)
        proc.wait(30)  # stderr is a few lines: the pipe never fills
        assert proc.stderr is not None
        err = proc.stderr.read()
        return proc.returncode, output.rest(), err, stack
    finally:
        proc.kill()
        stack.kill_leftovers()


def one_error_line(err: str) -> str:
    errors = [line for line in err.splitlines() if line.startswith("rapport: error:")]
    assert len(errors) == 1, err
    assert "Traceback" not in err, err
    return errors[0]


def test_a_worker_killed_under_a_running_up_stops_the_stack_with_the_reason(tmp_path):
    code, _out, err, stack = worker_killed_under_up(tmp_path, when="running; Ctrl-C to stop")
    assert code == 1, err
    line = one_error_line(err)
    assert line.startswith("rapport: error: the worker exited with code -9 (killed by SIGKILL)"), line
    assert until(stack.gone, 5)  # and the broker was stopped


def test_a_worker_killed_while_up_waits_for_the_drain_stops_the_stack_with_the_reason(tmp_path):
    code, out, err, stack = worker_killed_under_up(tmp_path, "--exit-when-drained", when=None)  # before the replay
    assert code == 1, err
    line = one_error_line(err)
    assert line.startswith("rapport: error: the worker exited with code -9 (killed by SIGKILL)"), line
    assert "summary:" not in out
    assert until(stack.gone, 5)


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(bytes(random.Random(7).randrange(256) for _ in range(20_000)), id="binary"),
        pytest.param(
            b"tweet_id,author_id,inbound,created_at,text,response_tweet_id,in_response_to_tweet_id\n"
            + b"".join(b"%d,cust,True,Tue Oct 31 22:10:47 +0000 2017,hello %d,,\n" % (i, i) for i in range(30)),
            id="csv",
        ),
    ],
)
def test_a_file_of_which_nothing_becomes_an_interaction_ends_with_exit_3(tmp_path, content):
    path = tmp_path / "input.jsonl"
    path.write_bytes(content)
    records = len([line for line in content.split(b"\n") if line.strip()])
    proc = rapport(
        "up", "--data-dir", str(tmp_path / "d"), "--replay", str(path), "--format", "jsonl", "--exit-when-drained"
    )
    out, err = proc.communicate(timeout=240)
    assert proc.returncode == 3, err
    line = one_error_line(err)
    assert line.startswith(f"rapport: error: {path}: all {records} records were dead-lettered"), line
    assert line.endswith("is it a jsonl file?"), line
    assert f"summary: events in {records}, stored 0, dead-lettered {records}" in out  # stored first
    assert int(sql(tmp_path / "d", "SELECT count() FROM dead_letters FINAL")) > 0


def test_a_drain_that_makes_no_progress_is_bounded_and_says_what_is_stuck(tmp_path):
    data = tmp_path / "events.jsonl"
    data.write_bytes(events(50))
    proc = rapport(
        "up",
        "--data-dir",
        str(tmp_path / "d"),
        "--replay",
        str(data),
        "--format",
        "jsonl",
        "--stall-timeout",
        "3",
        env_extra={"RAPPORT_STOP_TIMEOUT": "5"},
    )
    output = Output(proc)
    stack = Stack(proc, output)
    try:
        output.wait_for("running; Ctrl-C to stop")
        os.kill(stack.worker_pid, signal.SIGSTOP)  # alive, answering nothing, storing nothing
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        proc.wait(60)
        elapsed = time.monotonic() - started
        assert proc.stderr is not None
        err = proc.stderr.read()
        assert proc.returncode == 1, err
        line = one_error_line(err)
        assert line.startswith("rapport: error: nothing progressed for 3s while draining: the worker"), line
        assert "does not answer" in line, line
        assert elapsed < 3 + 40, elapsed  # the stall bound, the stop of the (resumed) worker (≤ 5 + 10 s), a margin
        assert until(stack.gone, 5)
    finally:
        proc.kill()
        stack.kill_leftovers()
