"""streams.local.children: a child started with die_with_parent() dies when its parent is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from streams.local.children import die_with_parent

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux only")


def alive(pid: int) -> bool:
    """Running (a zombie waiting for a reaper that never comes, in a container without init, is dead)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


def wait_dead(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.05)
    return False


PARENT = textwrap.dedent(
    """
    import subprocess, sys, time
    from streams.local.children import die_with_parent
    child = subprocess.Popen(["sleep", "60"], start_new_session=True, preexec_fn=die_with_parent())
    print(child.pid, flush=True)
    time.sleep(60)
    """
)


def test_a_child_dies_when_its_parent_is_killed() -> None:
    parent = subprocess.Popen([sys.executable, "-c", PARENT], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    try:
        assert alive(child)
        assert os.getsid(child) == child  # its own session: a terminal's Ctrl-C does not reach it
        parent.kill()  # SIGKILL: the parent runs no clean-up at all
        parent.wait()
        assert wait_dead(child, 3.0), "the child outlived its SIGKILLed parent"
    finally:
        if alive(child):
            os.kill(child, signal.SIGKILL)


def test_the_child_lives_while_its_parent_does() -> None:
    child = subprocess.Popen(["sleep", "60"], preexec_fn=die_with_parent())
    try:
        time.sleep(0.3)
        assert child.poll() is None
    finally:
        child.kill()
        child.wait()


def test_a_child_whose_parent_died_before_prctl_exits_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # the race: the parent dies between fork() and prctl(); the child is re-parented and must not stay
    monkeypatch.setattr(os, "getpid", lambda: 1)  # "the parent" is then pid 1, not the process below
    preexec = die_with_parent()
    monkeypatch.undo()
    assert preexec is not None
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            preexec()
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 1
