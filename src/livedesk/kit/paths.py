"""Where the package finds the browser pages it serves (``web/`` beside ``src/``)."""

from __future__ import annotations

from pathlib import Path

WEB_DIR = Path(__file__).resolve().parents[3] / "web"
