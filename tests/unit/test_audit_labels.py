"""Every audit action the code writes has a label on the audit log page in both languages
(the page shows a bare action name only for one added later without a label)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from livedesk.kit.paths import WEB_DIR

SRC = Path(__file__).resolve().parents[2] / "src" / "livedesk"
PAGE = WEB_DIR / "admin" / "audit.js"


def _listed(name: str) -> list[str]:
    body = re.search(rf"const {name} = \[(.*?)\];", PAGE.read_text(encoding="utf-8"), re.S)
    assert body, name
    return re.findall(r'"([a-z_.]+)"', body.group(1))


def _written() -> set[str]:
    """Action names in the code: literal action="x.y", constants passed as actions, and the
    recording access checks' "<action>_denied"."""
    found: set[str] = set()
    for path in SRC.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        if "audit" not in text:
            continue
        found |= set(re.findall(r'action="([a-z_]+\.[a-z_.]+)"', text))
        found |= set(re.findall(r'^[A-Z_]+ = "((?:staff|team)\.[a-z_]+)"', text, re.M))
        found |= set(re.findall(r'"((?:shopper|recording|integration|webhook)\.[a-z_.]+)"', text))
    checked = {a for a in found if a.startswith(("recording.view", "recording.play"))}
    return found | {f"{a}_denied" for a in checked if not a.endswith("_denied")}


def test_every_written_action_has_a_label_in_both_languages() -> None:
    listed = set(_listed("ACTIONS"))
    # Socket events and webhook event types share the noun.verb names; only audit actions count.
    events = {
        "recording.updated",
        "recording.ready",
        "recording.consent",
        "recording.current",
        "recording.start",
        "recording.stop",
        "recording.keyframe",
        "recording.join",
        "recording.leg",
        "recording.apply",
        "recording.attach",
        "recording.watch",
        "recording.retention",
        "recording.webm",
    }
    missing = _written() - events - listed
    assert not missing, f"audit.js ACTIONS lacks {sorted(missing)}"
    for lang in ("en", "ja"):
        table = json.loads((WEB_DIR / "admin" / "i18n" / f"{lang}.json").read_text(encoding="utf-8"))
        keys = [f"audit.action.{a}" for a in listed]
        keys += [f"audit.family.{f}" for f in _listed("FAMILIES")]
        keys += [f"audit.target.{t}" for t in _listed("TARGET_TYPES")]
        assert not [k for k in keys if k not in table], lang
