"""Where a recording misses a participant (recording/gaps.py): found from the parts' spans,
kept in the recording's ``error`` column and read back for the API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from livedesk.recording.gaps import COLUMN_CHARS, Gap, Span, decode, encode, find_gaps

T0 = datetime(2026, 12, 6, 8, 0, tzinfo=UTC)


def span(participant: str, start_ms: int, duration_ms: int) -> Span:
    return Span(participant, T0 + timedelta(milliseconds=start_ms), duration_ms)


def test_a_complete_recording_has_no_gap_and_short_holes_do_not_count() -> None:
    spans = [span("shopper", 0, 10_000), span("advisor", 300, 9_900)]
    assert find_gaps(spans) == []
    # A reload: 0.6 s without the advisor is not a gap worth telling.
    spans = [span("shopper", 0, 10_000), span("advisor", 0, 4_000), span("advisor", 4_600, 5_400)]
    assert find_gaps(spans) == []


def test_a_process_dying_leaves_a_gap_for_both_parties() -> None:
    spans = [
        span("shopper", 0, 5_000),
        span("advisor", 100, 4_900),
        span("shopper", 8_000, 4_000),
        span("advisor", 8_200, 3_800),
    ]
    # In the file's order, then by participant.
    assert find_gaps(spans) == [Gap("advisor", 5_000, 8_200), Gap("shopper", 5_000, 8_000)]


def test_a_party_never_seen_is_missing_from_start_to_end_and_the_trailing_end_counts() -> None:
    assert find_gaps([span("shopper", 0, 6_000)]) == [Gap("advisor", 0, 6_000)]
    spans = [span("shopper", 0, 9_000), span("advisor", 0, 4_000)]
    assert find_gaps(spans) == [Gap("advisor", 4_000, 9_000)]
    assert find_gaps([]) == []


def test_gaps_survive_the_column_and_a_long_list_is_cut_not_lost() -> None:
    gaps = [Gap("shopper", 5_000, 8_000), Gap("advisor", 5_000, 8_200)]
    stored = encode(gaps)
    assert stored == "incomplete:shopper@5000-8000,advisor@5000-8200"
    assert decode(stored) == gaps
    assert encode([]) is None
    assert decode(None) is None
    assert decode("joining failed: boom") is None
    many = [Gap("advisor", i * 10_000_000, i * 10_000_000 + 5_000) for i in range(40)]
    text = encode(many)
    assert text is not None
    assert len(text) <= COLUMN_CHARS
    kept = decode(text)
    assert kept is not None
    assert 0 < len(kept) < 40
    assert kept == many[: len(kept)]
