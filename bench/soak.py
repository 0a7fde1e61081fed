"""Soak: many shoppers and advisors chatting for a long time on one livedesk process.

2,000 shoppers and 50 advisors (40 consultations each) chat for 10 minutes (``--quick``: 200
shoppers and 10 advisors for 30 s, for CI). Every message is a real ``chat.send`` over its own
socket (stored, sequenced, acknowledged, delivered to the other party); senders alternate
between the shopper and the advisor of a consultation, at a fixed total rate (open loop).

A message counts as lost unless it was acknowledged, reached the other party as a
``chat.message`` event and is stored exactly once. ``errors`` counts error acks, timeouts and
dropped sockets. ``rss_growth_pct`` is the server's resident memory at the end (settled)
against the same after the warm-up (connections open, a tenth of the run done): the target is
0 lost and < 10 % growth.

Progress lines start with ``[bench]``; the last stdout line is one JSON object. Everything
runs on 127.0.0.1: the server is a fresh ``python -m livedesk serve`` subprocess on SQLite in
a temporary directory (no Redis), stopped at the end by its own PID.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import hashlib
import json
import random
import secrets
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp

from _common import (
    RawSocket,
    SocketError,
    close_all,
    open_many,
    percentile,
    raise_open_files_limit,
    rss_kib,
    say,
    settled_rss_kib,
    start_livedesk,
)


@dataclass(frozen=True)
class Sizes:
    mode: str
    shoppers: int
    advisors: int
    seconds: float
    rate: int  # messages per second, all consultations together
    drain_seconds: float


HANDSHAKE_SECONDS = 60.0
CONNECT_ATTEMPTS = 3
FULL = Sizes("full", 2000, 50, 600.0, 100, 30.0)
QUICK = Sizes("quick", 200, 10, 30.0, 40, 10.0)


@dataclass(frozen=True)
class Consultation:
    id: str
    shopper_token: str
    advisor: int  # index of its advisor


async def migrated_sqlite(directory: Path) -> str:
    from livedesk.kit.migrate import upgrade

    url = f"sqlite+aiosqlite:///{directory / 'livedesk.sqlite3'}"
    await upgrade(url)
    return url


async def seed(url: str, secret: str, sizes: Sizes) -> tuple[list[Consultation], list[str]]:
    """Advisors with login sessions, and one active chat consultation per shopper, written
    straight to the database (routing and login have their own tests and benches)."""
    from livedesk.identity import VisitorClaims, VisitorTokens
    from livedesk.kit.clock import utcnow
    from livedesk.kit.db import Database
    from livedesk.models import Consultation as Row
    from livedesk.models import ConsultationKind, ConsultationStatus, Role, Shopper, Staff, StaffSession

    tokens = VisitorTokens(secret, 24 * 3600)
    db = Database(url)
    now = utcnow()
    cookies: list[str] = []
    staff_ids: list[uuid.UUID] = []
    consultations: list[Consultation] = []
    try:
        async with db.transaction() as session:
            for i in range(sizes.advisors):
                staff = Staff(
                    id=uuid.uuid4(),
                    email=f"soak-advisor-{i}@bench.test",
                    password_hash="!",  # noqa: S106 - no password signs in: the session is seeded
                    role=Role.ADVISOR,
                    display_name=f"Advisor {i}",
                )
                session.add(staff)
                await session.flush()
                cookie = secrets.token_urlsafe(32)
                # The session table keeps only the SHA-256 of the cookie (identity/sessions.py).
                digest = hashlib.sha256(cookie.encode()).hexdigest()
                session.add(StaffSession(id=digest, staff_id=staff.id, csrf_token=secrets.token_urlsafe(32)))
                cookies.append(cookie)
                staff_ids.append(staff.id)
        for start in range(0, sizes.shoppers, 500):
            async with db.transaction() as session:
                for i in range(start, min(sizes.shoppers, start + 500)):
                    shopper = Shopper(id=uuid.uuid4(), display_name=f"Shopper {i}")
                    session.add(shopper)
                    await session.flush()
                    advisor = i % sizes.advisors
                    row = Row(
                        id=uuid.uuid4(),
                        shopper_id=shopper.id,
                        kind=ConsultationKind.CHAT,
                        status=ConsultationStatus.ACTIVE,
                        advisor_id=staff_ids[advisor],
                        requested_at=now - timedelta(minutes=2),
                        queued_at=now - timedelta(minutes=2),
                        accepted_at=now - timedelta(minutes=1),
                        passed_over=[],
                        skills=[],
                    )
                    session.add(row)
                    token = tokens.issue(VisitorClaims(shopper_id=shopper.id, visitor_id=f"soak{i}"))
                    consultations.append(Consultation(str(row.id), token, advisor))
    finally:
        await db.dispose()
    return consultations, cookies


@dataclass
class Ledger:
    """Every message sent: when, whether acknowledged, whether the other party got it."""

    sent_at: dict[str, float] = field(default_factory=dict)
    receiver: dict[str, str] = field(default_factory=dict)  # client_id → "shopper"/"advisor"
    acked: set[str] = field(default_factory=set)
    delivered: dict[str, float] = field(default_factory=dict)
    errors: Counter[str] = field(default_factory=Counter)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    socket_of: dict[str, RawSocket] = field(default_factory=dict)  # the sender's socket
    peer_of: dict[str, RawSocket] = field(default_factory=dict)  # the receiver's socket
    up_at_end: set[int] = field(default_factory=set)  # ids of the sockets still open at the end

    def handler(self, role: str) -> Any:
        def on_event(name: str, data: Any) -> None:
            if name != "chat.message" or not isinstance(data, dict):
                return
            client_id = data.get("client_id", "")
            # Each party's own messages come back to its other tabs too; only the other
            # party's copy counts as delivered.
            if self.receiver.get(client_id) == role and client_id not in self.delivered:
                self.delivered[client_id] = time.monotonic()
                self.changed.set()

        return on_event

    def on_ack(self, client_id: str, future: asyncio.Future[Any]) -> None:
        if future.cancelled():
            self.errors["cancelled"] += 1
            return
        exc = future.exception()
        if exc is not None:
            self.errors[type(exc).__name__] += 1
            return
        ack = future.result()
        if isinstance(ack, dict) and ack.get("ok") is True:
            self.acked.add(client_id)
        else:
            code = ack.get("error", {}).get("code", "?") if isinstance(ack, dict) else "bad_ack"
            self.errors[f"ack:{code}"] += 1


async def stored_counts(url: str) -> Counter[str]:
    from sqlalchemy import select

    from livedesk.kit.db import Database
    from livedesk.models import Message

    db = Database(url)
    try:
        async with db.read() as session:
            rows = (await session.execute(select(Message.client_id))).scalars().all()
    finally:
        await db.dispose()
    return Counter(rows)


async def run(sizes: Sizes, keep: Path | None) -> dict[str, Any]:
    limit = raise_open_files_limit()
    say(f"mode {sizes.mode}; open-files limit {limit}")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="livedesk-soak-") as tmp:
        workdir = keep or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        url = await migrated_sqlite(workdir)
        secret = secrets.token_hex(16)
        consultations, cookies = await seed(url, secret, sizes)
        say(f"seeded {len(consultations)} consultations with {len(cookies)} advisors")
        per_advisor = str(max(3, -(-sizes.shoppers // sizes.advisors)))
        server = start_livedesk("soak", workdir, url, secret, LIVEDESK_MAX_CHATS_PER_ADVISOR=per_advisor)
        ledger = Ledger()
        shoppers: list[RawSocket] = []
        advisors: list[RawSocket] = []
        try:
            await server.wait_ready("/readyz")
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
                refusals: Counter[str] = Counter()

                async def connect(namespace: str, **kwargs: Any) -> RawSocket:
                    # Like the browsers' socket wrapper: a refused connect (the server says
                    # why, e.g. database_unavailable) is tried again. A handshake the server
                    # never answers would otherwise wait forever (its pings keep the socket's
                    # own read timeout from firing).
                    for attempt in range(CONNECT_ATTEMPTS):
                        try:
                            return await asyncio.wait_for(
                                RawSocket.open(http, server.url, namespace, **kwargs), HANDSHAKE_SECONDS
                            )
                        except SocketError as exc:
                            refusals[str(exc)[:120]] += 1
                            if attempt == CONNECT_ATTEMPTS - 1:
                                raise
                    raise AssertionError("unreachable")

                def open_advisor(i: int) -> Any:
                    headers = {"Cookie": f"livedesk_session={cookies[i]}"}
                    return connect("/staff", headers=headers, on_event=ledger.handler("advisor"))

                def open_shopper(i: int) -> Any:
                    auth = {"token": consultations[i].shopper_token}
                    return connect("/shopper", auth=auth, on_event=ledger.handler("shopper"))

                # In order: sockets and consultations must line up by index.
                advisors = await open_many(sizes.advisors, open_advisor, concurrency=10, progress="advisors")
                shoppers = await open_many(sizes.shoppers, open_shopper, concurrency=10, progress="shoppers")
                if len(advisors) != sizes.advisors or len(shoppers) != sizes.shoppers:
                    raise RuntimeError("not every socket connected")
                result = await chat(sizes, consultations, shoppers, advisors, ledger, server.pid)
                result["connect_refusals"] = sum(refusals.values())
                result["connect_refusal_kinds"] = dict(refusals)
                stored = await stored_counts(url)
                ledger.up_at_end = {id(sock) for sock in shoppers + advisors if sock.open_now}
                await close_all(shoppers + advisors)
        finally:
            server.stop()
    sent = list(ledger.sent_at)
    lost = [c for c in sent if c not in ledger.acked or c not in ledger.delivered or stored[c] != 1]
    # The strict count above also holds messages whose sender or receiver socket dropped on a
    # starved machine (the bench's sockets do not reconnect and sync as the browsers do). The
    # data-loss figure proper: acknowledged to the sender, yet not stored exactly once.
    acked_not_stored = [c for c in ledger.acked if stored[c] != 1]
    dropped = {id(ledger.socket_of[c]) for c in sent} - ledger.up_at_end
    undelivered_both_up = [
        c
        for c in sent
        if c in ledger.acked
        and c not in ledger.delivered
        and id(ledger.socket_of[c]) in ledger.up_at_end
        and id(ledger.peer_of[c]) in ledger.up_at_end
    ]
    latencies = [(ledger.delivered[c] - ledger.sent_at[c]) * 1000 for c in sent if c in ledger.delivered]
    result.update(
        {
            "mode": sizes.mode,
            "shoppers": sizes.shoppers,
            "advisors": sizes.advisors,
            "rate_msgs_per_s": sizes.rate,
            "messages_sent": len(sent),
            "messages_acked": len(ledger.acked),
            "messages_delivered": len(ledger.delivered),
            "messages_stored": sum(1 for c in sent if stored[c] == 1),
            "messages_lost": len(lost),
            "acked_not_stored": len(acked_not_stored),
            "undelivered_with_both_sockets_up": len(undelivered_both_up),
            "sockets_dropped": len(dropped),
            "errors": sum(ledger.errors.values()),
            "error_kinds": dict(ledger.errors),
            "delivery_p50_ms": round(percentile(latencies, 50), 1) if latencies else None,
            "delivery_p99_ms": round(percentile(latencies, 99), 1) if latencies else None,
            "targets": {"messages_lost": 0, "rss_growth_pct_max": 10},
            "seconds": round(time.monotonic() - started, 1),
        }
    )
    return result


async def chat(
    sizes: Sizes,
    consultations: list[Consultation],
    shoppers: list[RawSocket],
    advisors: list[RawSocket],
    ledger: Ledger,
    pid: int,
) -> dict[str, Any]:
    rng = random.Random(2468)  # the same conversation every run
    turns = [0] * len(consultations)
    pending: set[asyncio.Future[Any]] = set()
    tick = 0.05
    per_tick = sizes.rate * tick
    owed = 0.0
    loop = asyncio.get_running_loop()
    begin = loop.time()
    warm_at = begin + sizes.seconds / 10
    rss_warm: int | None = None
    say(f"chatting for {sizes.seconds:.0f} s at {sizes.rate} msgs/s")
    next_report = begin + max(5.0, sizes.seconds / 10)
    while (now := loop.time()) < begin + sizes.seconds:
        owed += per_tick
        while owed >= 1:
            owed -= 1
            i = rng.randrange(len(consultations))
            c = consultations[i]
            from_shopper = turns[i] % 2 == 0
            turns[i] += 1
            sock = shoppers[i] if from_shopper else advisors[c.advisor]
            client_id = f"soak-{i}-{turns[i]}-{uuid.uuid4().hex[:6]}"
            ledger.sent_at[client_id] = time.monotonic()
            ledger.receiver[client_id] = "advisor" if from_shopper else "shopper"
            ledger.socket_of[client_id] = sock
            ledger.peer_of[client_id] = advisors[c.advisor] if from_shopper else shoppers[i]
            frame, future = sock.frame(
                "chat.send", {"consultation_id": c.id, "client_id": client_id, "body": f"message {turns[i]}"}
            )
            future.add_done_callback(lambda f, cid=client_id: ledger.on_ack(cid, f))
            pending.add(future)
            future.add_done_callback(pending.discard)
            try:
                await sock.send_frame(frame)
            except (aiohttp.ClientError, ConnectionError, RuntimeError) as exc:
                ledger.errors[f"send:{type(exc).__name__}"] += 1
                future.cancel()
        if rss_warm is None and now >= warm_at:
            rss_warm = rss_kib(pid)
            say(f"warm: server RSS {rss_warm} KiB")
        if now >= next_report:
            say(f"{now - begin:.0f} s: sent {len(ledger.sent_at)}, delivered {len(ledger.delivered)}")
            next_report += max(5.0, sizes.seconds / 10)
        await asyncio.sleep(max(0.0, tick - (loop.time() - now)))
    # Drain: everything sent gets its ack and its delivery, or the deadline passes.
    deadline = loop.time() + sizes.drain_seconds
    if pending:
        await asyncio.wait(set(pending), timeout=sizes.drain_seconds)
    while len(ledger.delivered) < len(ledger.acked) and (remaining := deadline - loop.time()) > 0:
        ledger.changed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ledger.changed.wait(), remaining)
    for future in list(pending):
        future.cancel()
    disconnects = sum(1 for s in shoppers + advisors if not s.open_now)
    if disconnects:
        ledger.errors["disconnected"] += disconnects
    rss_end = await settled_rss_kib(pid)
    assert rss_warm is not None
    growth = (rss_end - rss_warm) / rss_warm * 100
    say(f"end: server RSS {rss_end} KiB ({growth:+.1f}% since warm-up)")
    return {"rss_warm_kib": rss_warm, "rss_end_kib": rss_end, "rss_growth_pct": round(growth, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="200 shoppers, 10 advisors, 30 s (for CI)")
    parser.add_argument("--keep", type=Path, metavar="DIR", help="keep the database and server log in DIR")
    parser.add_argument("--seconds", type=float, help="chat for this long instead")
    parser.add_argument("--rate", type=int, help="messages per second (all consultations) instead")
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    if args.seconds:
        sizes = dataclasses.replace(sizes, seconds=args.seconds)
    if args.rate:
        sizes = dataclasses.replace(sizes, rate=args.rate)
    result = asyncio.run(run(sizes, args.keep))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
