"""Every setting is in the README's settings table, and the table names no setting that does
not exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from livedesk.settings import Settings

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_lists_every_setting() -> None:
    documented = set(re.findall(r"^\| `(LIVEDESK_[A-Z_]+)` \|", README.read_text(), flags=re.MULTILINE))
    actual = {f"LIVEDESK_{name.upper()}" for name in Settings.model_fields}
    assert documented == actual


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIVEDESK_PORT", "9191")
    monkeypatch.setenv("LIVEDESK_DATA_DIR", "/tmp/somewhere")
    settings = Settings()
    assert settings.port == 9191
    assert settings.effective_database_url == "sqlite+aiosqlite:////tmp/somewhere/livedesk.sqlite3"
