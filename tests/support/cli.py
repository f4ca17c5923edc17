"""Run ``rapport`` as a user runs it: a subprocess with a clean ``RAPPORT_*`` environment, and its one-line error."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 60


def environment(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAPPORT_")}
    env["RAPPORT_DATA_DIR"] = str(tmp / "rapport-data")  # never the repository's .rapport
    env["PYTHONWARNINGS"] = "ignore"
    return env


def start(tmp: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "streams.cli", *args],
        cwd=REPO,
        env=environment(tmp),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def rapport(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    process = start(tmp, *args)
    stdout, stderr = process.communicate(timeout=TIMEOUT)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def one_error_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, f"expected a one-line error, got:\n{stderr}"
    assert lines[0].startswith("rapport: error: ")
    return lines[0]
