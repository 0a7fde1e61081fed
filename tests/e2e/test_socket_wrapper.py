"""web/shared/socket.js in real Chromium against the real app: acks, LiveError, retries only
for events safe to repeat, and a chat that loses nothing across a dropped connection or a
reload (the outbox in sessionStorage).

The pages are driven with ``page.evaluate`` and a dynamic ``import("/shared/socket.js")`` on
the landing page (a neutral page of the same origin: the shopper and advisor pages are built
elsewhere and may open sockets of their own). Each page keeps its test state in ``window.h``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from playwright.async_api import Page

from tests.e2e.conftest import wait_until

ADVISOR_EMAIL = "sakura.tanaka@hanami.example"

# The shopper: a visitor token from POST /api/v1/visitors (kept in sessionStorage so a
# reloaded page reconnects as the same shopper), then LiveSocket.shopper.
SHOPPER_SETUP = """
async () => {
  const { LiveSocket } = await import("/shared/socket.js");
  let token = sessionStorage.getItem("e2e.token");
  if (!token) {
    const response = await fetch("/api/v1/visitors", {
      method: "POST", headers: {"Content-Type": "application/json"}, body: "{}",
    });
    if (!response.ok) throw new Error(`visitor: HTTP ${response.status}`);
    token = (await response.json()).token;
    sessionStorage.setItem("e2e.token", token);
  }
  const socket = LiveSocket.shopper(token);
  window.h = { socket, states: [], messages: [], pending: [], errors: [] };
  socket.onState((state) => window.h.states.push(state));
  return token;
}
"""

# The advisor: sign in (the session cookie), then LiveSocket.staff; offers are collected.
ADVISOR_SETUP = """
async ([email, password]) => {
  const { LiveSocket } = await import("/shared/socket.js");
  const response = await fetch("/api/v1/auth/login", {
    method: "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify({ email, password }),
  });
  if (!response.ok) throw new Error(`login: HTTP ${response.status}`);
  const socket = LiveSocket.staff();
  window.h = { socket, states: [], offers: [], messages: [], pending: [], errors: [] };
  socket.onState((state) => window.h.states.push(state));
  socket.on("offer.new", (offer) => window.h.offers.push(offer));
}
"""

# Open the consultation's chat channel and record what it delivers.
OPEN_CHAT = """
(id) => {
  const chat = window.h.socket.chat(id);
  window.h.chat = chat;
  chat.onMessage((m) => window.h.messages.push({ seq: m.seq, body: m.body, sender: m.sender }));
  chat.onPending((list) => { window.h.pending = list.map((e) => e.body); });
  chat.onError((error) => window.h.errors.push(error.code));
}
"""


async def js(page: Page, script: str, arg: Any = None, within: float = 20.0) -> Any:
    """page.evaluate with a deadline: it would wait for a page promise forever."""
    return await asyncio.wait_for(page.evaluate(script, arg), within)


async def connected(page: Page) -> None:
    await page.wait_for_function("window.h && window.h.socket.connected", timeout=10_000)


async def start_consultation(
    new_page: Any, server: str, demo_password: str, kind: str = "chat", shopper_media: bool = True
) -> tuple[Page, Page, str]:
    """An advisor signed in and a shopper whose consultation that advisor accepted."""
    advisor = await new_page(server + "/")
    await js(advisor, ADVISOR_SETUP, [ADVISOR_EMAIL, demo_password])
    await connected(advisor)
    # Routing offers only to advisors who are available, which connecting makes them.
    await advisor.wait_for_function(
        """window.h.socket.call("presence.list").then((list) =>
             list.some((p) => p.status === "available"))""",
        timeout=10_000,
    )
    shopper = await new_page(server + "/", media=shopper_media)
    await js(shopper, SHOPPER_SETUP)
    await connected(shopper)
    consultation = await js(shopper, "(kind) => window.h.socket.call('queue.join', { kind })", kind)
    cid = consultation["id"]
    await advisor.wait_for_function(
        "(id) => window.h.offers.some((o) => o.id === id)", arg=cid, timeout=10_000
    )
    accepted = await js(advisor, "(id) => window.h.socket.call('offer.accept', { consultation_id: id })", cid)
    assert accepted["status"] == "active"
    return advisor, shopper, cid


async def bodies(page: Page) -> list[str]:
    result: list[str] = await js(page, "window.h.messages.map((m) => m.body)")
    return result


async def seqs(page: Page) -> list[int]:
    result: list[int] = await js(page, "window.h.messages.map((m) => m.seq)")
    return result


async def test_chat_both_ways_in_seq_order(server: str, new_page: Any, demo_password: str) -> None:
    advisor, shopper, cid = await start_consultation(new_page, server, demo_password)
    for page in (advisor, shopper):
        await js(page, OPEN_CHAT, cid)

    ack = await js(shopper, "window.h.chat.send({ kind: 'text', body: 'Is the serum in stock?' })")
    assert ack["seq"] == 1
    assert ack["duplicate"] is False
    await js(advisor, "window.h.chat.send({ kind: 'text', body: 'Yes, all sizes.' })")
    await js(shopper, "window.h.chat.send({ kind: 'text', body: 'Thanks!' })")

    expected = ["Is the serum in stock?", "Yes, all sizes.", "Thanks!"]
    for page in (advisor, shopper):
        await wait_until(lambda page=page: _has(page, expected))
        assert await seqs(page) == [1, 2, 3]
        assert await js(page, "window.h.pending.length") == 0
    senders = await js(advisor, "window.h.messages.map((m) => m.sender)")
    assert senders == ["shopper", "staff", "shopper"]

    # A handler added late is given the history first, each message once.
    late = await js(
        shopper,
        """() => new Promise((resolve) => {
             const got = [];
             window.h.chat.onMessage((m) => got.push(m.seq));
             setTimeout(() => resolve(got), 0);
           })""",
    )
    assert late == [1, 2, 3]

    # Typing and read receipts reach the other party.
    await js(
        advisor,
        """() => { window.h.typing = []; window.h.reads = [];
                   window.h.chat.onTyping((who, typing) => window.h.typing.push([who, typing]));
                   window.h.chat.onRead((reader, seq) => window.h.reads.push([reader, seq])); }""",
    )
    assert await js(shopper, "window.h.chat.typing(true)") is True
    await advisor.wait_for_function("window.h.typing.some(([who, t]) => who === 'shopper' && t)")
    assert (await js(shopper, "window.h.chat.read(2)"))["seq"] == 2
    await advisor.wait_for_function("window.h.reads.some(([who, seq]) => who === 'shopper' && seq === 2)")


async def _has(page: Page, expected: list[str]) -> bool:
    return await bodies(page) == expected


async def test_outbox_survives_going_offline(server: str, new_page: Any, demo_password: str) -> None:
    advisor, shopper, cid = await start_consultation(new_page, server, demo_password)
    for page in (advisor, shopper):
        await js(page, OPEN_CHAT, cid)
    await js(shopper, "window.h.chat.send({ kind: 'text', body: 'before' })")

    # The network goes away: new connections fail, and the open one is dropped the way a
    # dead network drops it (the transport closes; socket.io-client keeps reconnecting).
    await shopper.context.set_offline(True)
    await js(shopper, "window.h.socket.socket.io.engine.close()")
    await shopper.wait_for_function("window.h.socket.state === 'reconnecting'")
    await js(
        shopper,
        """() => {
             window.h.acks = [];
             for (const body of ['one', 'two', 'three'])
               window.h.chat.send({ kind: 'text', body }).then((ack) => window.h.acks.push(ack.seq));
           }""",
    )
    assert await js(shopper, "window.h.pending") == ["one", "two", "three"]
    stored = await js(shopper, f"JSON.parse(sessionStorage.getItem('livedesk.outbox.shopper.{cid}'))")
    assert [entry["body"] for entry in stored] == ["one", "two", "three"]
    assert await js(shopper, "window.h.socket.connected") is False

    await shopper.context.set_offline(False)
    expected = ["before", "one", "two", "three"]
    for page in (advisor, shopper):
        await wait_until(lambda page=page: _has(page, expected), within=20)
    await shopper.wait_for_function("window.h.acks.length === 3")
    assert await js(shopper, "window.h.acks") == [2, 3, 4]
    assert await seqs(advisor) == [1, 2, 3, 4]
    assert await js(shopper, "window.h.pending") == []
    assert await js(shopper, f"sessionStorage.getItem('livedesk.outbox.shopper.{cid}')") is None
    assert "reconnecting" in await js(shopper, "window.h.states")
    # Stored once each: the server's own history agrees.
    history = await js(
        advisor, "(id) => window.h.socket.call('chat.sync', { consultation_id: id, after_seq: 0 })", cid
    )
    assert [m["body"] for m in history["messages"]] == expected


async def test_reload_resends_the_persisted_outbox(server: str, new_page: Any, demo_password: str) -> None:
    advisor, shopper, cid = await start_consultation(new_page, server, demo_password)
    for page in (advisor, shopper):
        await js(page, OPEN_CHAT, cid)
    await js(advisor, "window.h.chat.send({ kind: 'text', body: 'How can I help?' })")
    await wait_until(lambda: _has(shopper, ["How can I help?"]))

    # Written while the socket is down, then the page reloads before it could go out.
    await js(shopper, "window.h.socket.disconnect()")
    # (send() resolves on the ack, which cannot come now: not awaited.)
    await js(shopper, "() => { window.h.chat.send({ kind: 'text', body: 'written before reload' }); }")
    assert await js(shopper, "window.h.pending") == ["written before reload"]
    await shopper.reload()

    await js(shopper, SHOPPER_SETUP)
    await js(shopper, OPEN_CHAT, cid)
    await connected(shopper)
    expected = ["How can I help?", "written before reload"]
    for page in (advisor, shopper):
        await wait_until(lambda page=page: _has(page, expected))
    assert await seqs(advisor) == [1, 2]
    assert await js(shopper, "window.h.pending") == []
    # A message the advisor sends now arrives once, after the history the sync brought.
    await js(advisor, "window.h.chat.send({ kind: 'text', body: 'Got it.' })")
    await wait_until(lambda: _has(shopper, [*expected, "Got it."]))
    assert await seqs(shopper) == [1, 2, 3]


async def test_a_lost_message_is_fetched_and_duplicates_dropped(
    server: str, new_page: Any, demo_password: str
) -> None:
    advisor, shopper, cid = await start_consultation(new_page, server, demo_password)
    for page in (advisor, shopper):
        await js(page, OPEN_CHAT, cid)
    # The shopper's socket loses the live chat.message of seq 2 and hears seq 3 twice.
    await js(
        shopper,
        """() => { const raw = window.h.socket.socket; const onevent = raw.onevent.bind(raw);
                   window.h.live = [];
                   raw.onevent = (packet) => {
                     const [name, payload] = packet.data ?? [];
                     if (name === "chat.message") {
                       window.h.live.push(payload.seq);
                       if (payload.seq === 2) return;
                       if (payload.seq === 3) onevent({ ...packet, data: [...packet.data] });
                     }
                     onevent(packet);
                   }; }""",
    )
    for body in ("first", "second", "third"):
        await js(advisor, "(body) => window.h.chat.send({ kind: 'text', body })", body)
    await wait_until(lambda: _has(shopper, ["first", "second", "third"]))
    assert await seqs(shopper) == [1, 2, 3]
    assert await js(shopper, "window.h.live") == [1, 2, 3]  # 2 came from a chat.sync


async def test_errors_and_retries(server: str, new_page: Any, demo_password: str) -> None:
    advisor, shopper, cid = await start_consultation(new_page, server, demo_password)

    error = await js(
        shopper,
        """async () => {
             const { LiveError } = await import("/shared/socket.js");
             try { await window.h.socket.call("offer.accept", {}); return null; }
             catch (e) {
               return { name: e.name, code: e.code, transient: e.transient,
                        isLiveError: e instanceof LiveError };
             }
           }""",
    )
    assert error == {"name": "LiveError", "code": "unknown_event", "transient": False, "isLiveError": True}

    invalid = await js(
        shopper,
        """async (id) => {
             const bad = { consultation_id: id, client_id: "no spaces!", body: "x" };
             try { await window.h.socket.call("chat.send", bad); }
             catch (e) { return { code: e.code, details: e.details }; }
           }""",
        cid,
    )
    assert invalid["code"] == "validation_failed"
    assert invalid["details"][0]["field"] == "client_id"

    # Count what actually goes out on the wire.
    await js(
        shopper,
        """() => { const raw = window.h.socket.socket; const emit = raw.emitWithAck.bind(raw);
                   window.h.attempts = {};
                   raw.emitWithAck = (event, ...args) => {
                     window.h.attempts[event] = (window.h.attempts[event] ?? 0) + 1;
                     return emit(event, ...args); }; }""",
    )
    # A refusal is never retried, even for an event that is safe to repeat.
    await js(
        shopper,
        "() => window.h.socket.call('consultation.get', { consultation_id: 'nope' }).catch(() => null)",
    )
    assert await js(shopper, "window.h.attempts['consultation.get']") == 1

    await js(shopper, "window.h.socket.disconnect()")
    # Not safe to repeat: one attempt, then a transient timeout error.
    lost = await js(
        shopper,
        """async (id) => {
             const payload = { consultation_id: id, typing: true };
             try { await window.h.socket.call("chat.typing", payload, { timeoutMs: 200, retries: 5 }); }
             catch (e) { return { code: e.code, transient: e.transient }; }
           }""",
        cid,
    )
    assert lost == {"code": "timeout", "transient": True}
    assert await js(shopper, "window.h.attempts['chat.typing']") == 1

    # Safe to repeat: retried until the socket is back, then answered.
    await js(
        shopper,
        """() => { window.h.current = null;
                   window.h.socket.call("consultation.current", {}, { timeoutMs: 200, retries: 50 })
                     .then((list) => { window.h.current = list; }); }""",
    )
    await shopper.wait_for_function("(window.h.attempts['consultation.current'] ?? 0) >= 2")
    await js(shopper, "window.h.socket.connect()")
    await shopper.wait_for_function("window.h.current !== null")
    assert [c["id"] for c in await js(shopper, "window.h.current")] == [cid]

    # A message the server refuses leaves the outbox and reaches send()'s caller and onError.
    await js(shopper, OPEN_CHAT, cid)
    await js(advisor, "(id) => window.h.socket.call('consultation.end', { consultation_id: id })", cid)
    await js(
        advisor,
        "(id) => window.h.socket.call('consultation.close', { consultation_id: id, notes: 'e2e' })",
        cid,
    )
    refused = await js(
        shopper,
        "() => window.h.chat.send({ kind: 'text', body: 'too late' }).then(() => null, (e) => e.code)",
    )
    assert refused == "chat_closed"
    assert await js(shopper, "window.h.pending") == []
    assert await js(shopper, "window.h.errors") == ["chat_closed"]
    assert await js(shopper, f"sessionStorage.getItem('livedesk.outbox.shopper.{cid}')") is None


async def test_states_and_a_refused_connection(server: str, new_page: Any) -> None:
    page = await new_page(server + "/")
    result = await js(
        page,
        """async () => {
             const { LiveSocket } = await import("/shared/socket.js");
             const socket = LiveSocket.shopper("forged-token");
             const states = [];
             await new Promise((resolve) => socket.onState((state, info) => {
               states.push([state, info.error?.code ?? null]);
               if (state === "disconnected") resolve();
             }));
             return { states, lastError: socket.lastError };
           }""",
    )
    assert result["states"][0] == ["connecting", None]
    assert result["states"][-1][0] == "disconnected"
    assert result["lastError"]["code"] == "token_invalid"


async def test_a_refused_message_is_marked_failed_and_never_blocks_the_outbox(
    server: str, new_page: Any, demo_password: str
) -> None:
    advisor, shopper, cid = await start_consultation(new_page, server, demo_password)
    for page in (advisor, shopper):
        await js(page, OPEN_CHAT, cid)
    await js(
        shopper,
        "() => { window.h.failed = []; window.h.chat.onFailed((list) => { window.h.failed = list; }); }",
    )

    # Broken text (a lone surrogate, which JSON.stringify writes as \ud800) is refused with an
    # error ack naming the field; the message queued behind it goes out.
    outcome = await js(
        shopper,
        """async () => {
             const broken = window.h.chat.send({ kind: 'text', body: 'broken \\uD800 text' })
               .then(() => null, (e) => ({ code: e.code, field: e.details?.[0]?.field }));
             const next = window.h.chat.send({ kind: 'text', body: 'next one' });
             return { broken: await broken, next: (await next).seq };
           }""",
    )
    assert outcome == {"broken": {"code": "validation_failed", "field": "body"}, "next": 1}
    await wait_until(lambda: _has(advisor, ["next one"]))
    assert await js(shopper, "window.h.pending") == []
    failed = await js(shopper, "window.h.failed.map((e) => [e.body, e.error.code])")
    assert failed == [["broken \ud800 text", "validation_failed"]]
    assert await js(shopper, "window.h.errors") == ["validation_failed"]

    # Retrying a message the server still refuses leaves one failed entry, not two.
    broken_id = await js(shopper, "window.h.chat.failed[0].client_id")
    again = await js(shopper, "(id) => window.h.chat.retry(id).then(() => null, (e) => e.code)", broken_id)
    assert again == "validation_failed"
    assert await js(shopper, "window.h.chat.failed.length") == 1
    await js(shopper, "(id) => window.h.chat.discard(id)", broken_id)
    assert await js(shopper, "window.h.failed") == []

    # A refusal that goes away (simulated once on the client): retry sends it, stored once.
    await js(
        shopper,
        """() => { const raw = window.h.socket.socket; const emit = raw.emitWithAck.bind(raw);
                   let refuse = true;
                   raw.emitWithAck = (event, ...args) => {
                     if (event === "chat.send" && refuse) {
                       refuse = false;
                       return Promise.resolve({ ok: false, error: { code: "busy", message: "try later" } });
                     }
                     return emit(event, ...args); }; }""",
    )
    refused = await js(
        shopper, "window.h.chat.send({ kind: 'text', body: 'second try' }).then(() => null, (e) => e.code)"
    )
    assert refused == "busy"
    assert await js(shopper, "window.h.failed.map((e) => e.body)") == ["second try"]
    retry_id = await js(shopper, "window.h.chat.failed[0].client_id")
    ack = await js(shopper, "(id) => window.h.chat.retry(id)", retry_id)
    assert ack["seq"] == 2
    assert await js(shopper, "window.h.failed") == []
    await wait_until(lambda: _has(advisor, ["next one", "second try"]))
    assert await js(shopper, "window.h.pending") == []


async def test_a_message_refused_while_the_database_is_down_stays_queued_and_goes_out(
    server: str, new_page: Any, demo_password: str
) -> None:
    """issue 20 item 4: ``database_unavailable`` (like ``store_unavailable`` and a rate limit
    with retry_after) is "not now", not "no": the message stays in the outbox and is re-sent
    with the back-off until the database is back — never "Not sent…". The refusals are the
    server's own answer during an outage (tests/integration/test_faults.py proves the server
    side); here the socket answers them while the outage lasts, so its length is certain."""
    advisor, shopper, cid = await start_consultation(new_page, server, demo_password)
    for page in (advisor, shopper):
        await js(page, OPEN_CHAT, cid)
    await js(
        shopper,
        """() => { window.h.failed = []; window.h.chat.onFailed((list) => { window.h.failed = list; });
                   window.h.refusals = []; window.h.down = true;
                   const raw = window.h.socket.socket; const emit = raw.emitWithAck.bind(raw);
                   const refusal = (code, details) =>
                     ({ ok: false, error: { code, message: "later", details } });
                   raw.emitWithAck = (event, ...args) => {
                     if (event === "chat.send" && window.h.down) {
                       const n = window.h.refusals.length;
                       const ack = n === 1 ? refusal("rate_limited", { retry_after: 1 })
                         : refusal(n === 2 ? "store_unavailable" : "database_unavailable");
                       window.h.refusals.push(ack.error.code);
                       return Promise.resolve(ack);
                     }
                     return emit(event, ...args); }; }""",
    )
    send = "(body) => { window.h.ack = window.h.chat.send({ kind: 'text', body }); }"
    await js(shopper, send, "sent in the outage")

    async def refused_thrice() -> bool:
        codes: list[str] = await js(shopper, "window.h.refusals")
        return len(codes) >= 4

    await wait_until(refused_thrice, within=30)
    assert (await js(shopper, "window.h.refusals"))[:3] == [
        "database_unavailable",
        "rate_limited",
        "store_unavailable",
    ]
    assert await js(shopper, "window.h.pending") == ["sent in the outage"]
    assert await js(shopper, "window.h.failed") == []
    assert await js(shopper, "window.h.errors") == []
    # The database is back: the back-off re-sends it, stored once, delivered to both.
    await js(shopper, "() => { window.h.down = false; }")
    ack = await js(shopper, "window.h.ack", within=30)
    assert ack["seq"] == 1
    await wait_until(lambda: _has(advisor, ["sent in the outage"]), within=15)
    assert await seqs(advisor) == [1]
    assert await js(shopper, "window.h.pending") == []
    assert await js(shopper, "window.h.failed") == []
