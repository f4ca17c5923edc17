"""Helpers shared by the tests (e.g. a throwaway ClickHouse server process)."""

from pathlib import Path

#: The real "Customer Support on Twitter" samples: ``../shared/data/twcs`` beside the repository, read in
#: place (never copied into it). Tests that need them skip with the path in the reason when it is absent.
TWCS_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "twcs"
