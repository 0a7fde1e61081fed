"""Supervision: the live board (snapshot, then changes), today's figures, alerts, metrics."""
