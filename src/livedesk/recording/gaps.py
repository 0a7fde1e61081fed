"""A recording's gaps: stretches where a participant's media is missing from the joined file
(their leg's process died, their browser lost the connection), found from the parts' wall-clock
spans and kept with the recording so that a recording with a party missing for a while is
never shown as simply "saved".

Stored without a schema change in the recording's ``error`` column, which a ready recording
does not otherwise use: ``incomplete:shopper@12300-15800,advisor@12300-15100`` (milliseconds
from the start of the joined file). The API reads it back as ``incomplete`` and ``gaps``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

PARTICIPANTS = ("shopper", "advisor")
# Shorter holes are a leg's ordinary start-up or a reload, not a gap worth telling.
GAP_MIN_MS = 1000
PREFIX = "incomplete:"
COLUMN_CHARS = 300


@dataclass(frozen=True)
class Gap:
    participant: str
    from_ms: int
    to_ms: int


@dataclass(frozen=True)
class Span:
    participant: str
    started_at: datetime
    duration_ms: int


def find_gaps(spans: list[Span], participants: tuple[str, ...] = PARTICIPANTS) -> list[Gap]:
    """Each participant's uncovered stretches of the joined file (from the first frame of
    anyone to the last), at least ``GAP_MIN_MS`` long; a participant with no media at all is
    one gap over the whole file."""
    if not spans:
        return []
    t0 = min(s.started_at for s in spans)

    def ms(s: Span) -> tuple[int, int]:
        start = round((s.started_at - t0).total_seconds() * 1000)
        return start, start + s.duration_ms

    end = max(ms(s)[1] for s in spans)
    gaps: list[Gap] = []
    for participant in participants:
        covered = sorted(ms(s) for s in spans if s.participant == participant)
        cursor = 0
        for start, stop in covered:
            if start - cursor >= GAP_MIN_MS:
                gaps.append(Gap(participant, cursor, start))
            cursor = max(cursor, stop)
        if end - cursor >= GAP_MIN_MS:
            gaps.append(Gap(participant, cursor, end))
    return sorted(gaps, key=lambda g: (g.from_ms, g.participant))


def encode(gaps: list[Gap]) -> str | None:
    if not gaps:
        return None
    text = PREFIX
    for i, gap in enumerate(gaps):
        item = f"{',' if i else ''}{gap.participant}@{gap.from_ms}-{gap.to_ms}"
        if len(text) + len(item) > COLUMN_CHARS:
            break  # the first gaps are kept; "incomplete" stays true either way
        text += item
    return text


def decode(error: str | None) -> list[Gap] | None:
    """The gaps stored for a ready recording; None when it is complete (or not ready)."""
    if not error or not error.startswith(PREFIX):
        return None
    gaps: list[Gap] = []
    for item in error[len(PREFIX) :].split(","):
        participant, _, span = item.partition("@")
        start, _, stop = span.partition("-")
        if participant and start.isdigit() and stop.isdigit():
            gaps.append(Gap(participant, int(start), int(stop)))
    return gaps
