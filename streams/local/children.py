"""Child processes that die with the process that started them.

``rapport up`` starts the tansu broker and the worker each in their own session, so a terminal's Ctrl-C
reaches only ``up`` (which drains, then stops them in order). The price of their own session: nothing
stops them when ``up`` dies without running its clean-up (SIGKILL, a crashed terminal, a test harness
killing the process group); they would keep their ports and the chdb directory. On Linux the kernel can
send a signal to a process when its parent dies (``prctl(PR_SET_PDEATHSIG)``): :func:`die_with_parent`
gives the ``preexec_fn`` that asks for SIGKILL.

Caveat of the mechanism: "parent" is the *thread* that forked the child. Start such children from a
thread that lives as long as they should (``rapport up`` and the tests start them from the main thread).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

__all__ = ["die_with_parent"]

PR_SET_PDEATHSIG = 1


@functools.cache
def _prctl() -> Any:
    """libc's ``prctl``, loaded once before any fork (a child between fork and exec should not load it)."""
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True).prctl


def die_with_parent(sig: signal.Signals = signal.SIGKILL) -> Callable[[], None] | None:
    """A ``preexec_fn`` for ``subprocess.Popen``: the child gets ``sig`` when this process dies, however it dies.

    None where the kernel has no such thing (not Linux): the child then outlives a killed parent, as before.
    """
    if not sys.platform.startswith("linux"):
        return None
    prctl = _prctl()
    parent = os.getpid()
    number = int(sig)

    def preexec() -> None:  # runs in the child between fork and exec: no imports, no allocation to speak of
        if prctl(PR_SET_PDEATHSIG, number, 0, 0, 0) != 0:  # Popen raises SubprocessError in the parent
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
        # the parent may have died between fork() and prctl(): then no signal will ever come
        if os.getppid() != parent:
            os._exit(1)

    return preexec
