"""Documentation that users rely on stays in step with the code."""

from __future__ import annotations

from pathlib import Path

from streams.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def test_every_setting_is_documented_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [
        f"RAPPORT_{name.upper()}"
        for name in Settings.model_fields
        if f"RAPPORT_{name.upper()}" not in readme
        and not (name.startswith("topic_") and "RAPPORT_TOPIC_RAW" in readme)  # documented as a group
    ]
    assert missing == []


def test_every_rapport_command_is_in_the_readme() -> None:
    from streams.cli import main

    readme = (ROOT / "README.md").read_text()
    assert [name for name in main.commands if f"rapport {name}" not in readme] == []
