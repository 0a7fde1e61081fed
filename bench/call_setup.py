"""Call set-up time: from the advisor accepting an offer to both browsers connected.

    ../shared/tools/netns-run .venv/bin/python bench/call_setup.py [--quick]

Budget (ARCHITECTURE §9, in docs/architecture.md §5): accept → both browsers connected,
Chromium on one machine, p50 ≤ 150 ms. Each call goes through the real path the pages take:

1. the shopper's page (visitor token) sends ``queue.join`` ``{kind: "video"}``;
2. the advisor's page (signed in) gets ``offer.new``, notes the time and sends
   ``offer.accept``, then starts a ``CallEngine`` (impolite) — camera and microphone opened
   then, ICE servers fetched, offer made;
3. the shopper's page starts its ``CallEngine`` (polite) when ``consultation.updated`` says
   the consultation is active;
4. each page notes when its engine reports "connected"; the figure is the later of the two
   minus the accept time. Both pages are contexts of one Chromium process, so their clocks
   (``performance.timeOrigin + performance.now()``) are the same clock.
5. The advisor hangs up, ends and closes the consultation; the next call starts afresh.

Media is Chromium's fake camera and microphone. The pages run under their real Content
Security Policy (script-src 'self'), so the modules are exercised as shipped. A second
figure, ``warm_*``, repeats the measurement with camera and microphone already open on both
sides before the accept (a shopper waiting with a self-view, an advisor with a preview):
call set-up with the devices out of the picture.

The server is a fresh ``livedesk serve`` subprocess on SQLite in a temp directory, seeded
with the demo data. Real WebRTC between two Chromium pages needs the test network namespace
(Chromium ignores loopback for ICE; no packet may leave the machine), so this refuses to run
outside ``netns-run``. Progress lines start with ``[bench]``; the last stdout line is one JSON
object:

- ``accept_to_connected_p50_ms`` / ``_p90_ms`` / ``_max_ms`` over ``calls`` calls (after a
  few warm-up calls that are not counted), ``mode`` ("quick": 20 calls, "full": 100);
- the medians of the steps: ``accept_ack`` (offer.accept answered), ``shopper_started`` (the
  shopper's page heard the consultation is active), ``advisor_connected`` and
  ``shopper_connected`` — each in ms after the accept;
- the same with ``warm_`` in front for ``warm_calls`` calls with media already open;
- ``budget_p50_ms`` and ``seconds``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _common import percentile, say, start_livedesk

CHROMIUM = os.environ.get("LIVEDESK_CHROMIUM", "/usr/bin/chromium")
ADVISOR_EMAIL = "sakura.tanaka@hanami.example"
BUDGET_P50_MS = 150
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-device-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
]


@dataclass(frozen=True)
class Sizes:
    mode: str
    warmup: int
    calls: int
    warm_calls: int


FULL = Sizes("full", 3, 100, 50)
QUICK = Sizes("quick", 2, 20, 10)

# Both pages: the shared modules, a clock shared by both contexts, and what a page does when
# its call starts. `warm` keeps camera and microphone open between calls (a preview).
PAGE_SETUP = """
async ([role, token]) => {
  const { LiveSocket } = await import("/shared/socket.js");
  const { CallEngine } = await import("/shared/call.js");
  const now = () => performance.timeOrigin + performance.now();
  const socket = role === "shopper" ? LiveSocket.shopper(token) : LiveSocket.staff();
  const b = (window.b = { socket, CallEngine, now, engine: null, current: null, offers: [],
                          connectedAt: null, startedAt: null, preview: null, warm: false });
  b.startCall = (id, polite) => {
    b.startedAt = now();
    const engine = new CallEngine({ socket, consultationId: id, polite });
    b.engine = engine;
    engine.addEventListener("state", (e) => {
      if (e.detail === "connected" && b.connectedAt === null) b.connectedAt = now();
    });
    return engine.start(b.warm ? { stream: b.preview } : { audio: true, video: true });
  };
  socket.on("offer.new", (offer) => b.offers.push(offer.id));
  // The shopper's page starts its side when the consultation becomes active.
  socket.on("consultation.updated", (c) => {
    if (role !== "shopper" || c.id !== b.current || c.status !== "active" || b.engine) return;
    b.startCall(c.id, true);
  });
  await new Promise((resolve) => socket.onState((state) => state === "connected" && resolve()));
}
"""

VISITOR = """
async () => {
  const response = await fetch("/api/v1/visitors", {
    method: "POST", headers: { "Content-Type": "application/json" }, body: "{}" });
  if (!response.ok) throw new Error(`visitor: HTTP ${response.status}`);
  return (await response.json()).token;
}
"""

LOGIN = """
async ([email, password]) => {
  const response = await fetch("/api/v1/auth/login", {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ email, password }) });
  if (!response.ok) throw new Error(`login: HTTP ${response.status}`);
}
"""

# Open (or close) camera and microphone ahead of the call, for the warm measurement.
PREVIEW = """
async (warm) => {
  const b = window.b;
  if (warm && !b.preview) b.preview = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
  if (!warm && b.preview) { b.preview.getTracks().forEach((t) => t.stop()); b.preview = null; }
  b.warm = warm;
}
"""

JOIN = """
async () => {
  const b = window.b;
  Object.assign(b, { engine: null, connectedAt: null, startedAt: null });
  const c = await b.socket.call("queue.join", { kind: "video" });
  b.current = c.id;
  return c.id;
}
"""

ACCEPT = """
async (id) => {
  const b = window.b;
  Object.assign(b, { engine: null, connectedAt: null, startedAt: null, current: id });
  const acceptAt = b.now();
  await b.socket.call("offer.accept", { consultation_id: id });
  const ackAt = b.now();
  b.startCall(id, false);
  return { acceptAt, ackAt };
}
"""

FINISH = """
async (id) => {
  const b = window.b;
  b.engine.hangup();
  await b.socket.call("consultation.end", { consultation_id: id });
  await b.socket.call("consultation.close", { consultation_id: id, notes: "bench" });
}
"""


async def prepare_database(directory: Path) -> str:
    from livedesk.demo.seed import seed_demo
    from livedesk.kit.db import Database
    from livedesk.kit.migrate import upgrade

    os.makedirs(directory, exist_ok=True)
    url = f"sqlite+aiosqlite:///{directory / 'livedesk.sqlite3'}"
    await upgrade(url)
    db = Database(url)
    try:
        await seed_demo(db)
    finally:
        await db.dispose()
    return url


async def one_call(advisor: Any, shopper: Any) -> dict[str, float]:
    cid = await shopper.evaluate(JOIN)
    await advisor.wait_for_function("(id) => window.b.offers.includes(id)", arg=cid, timeout=15_000)
    times = await advisor.evaluate(ACCEPT, cid)
    for page in (advisor, shopper):
        await page.wait_for_function("() => window.b.connectedAt !== null", timeout=20_000)
    advisor_at = await advisor.evaluate("[window.b.connectedAt, window.b.startedAt]")
    shopper_at = await shopper.evaluate("[window.b.connectedAt, window.b.startedAt]")
    await advisor.evaluate(FINISH, cid)
    await shopper.wait_for_function("() => window.b.engine?.state === 'closed'", timeout=10_000)
    accept = times["acceptAt"]
    return {
        "total": max(advisor_at[0], shopper_at[0]) - accept,
        "accept_ack": times["ackAt"] - accept,
        "advisor_connected": advisor_at[0] - accept,
        "shopper_connected": shopper_at[0] - accept,
        "shopper_started": shopper_at[1] - accept,
    }


def summary(prefix: str, samples: list[dict[str, float]]) -> dict[str, Any]:
    """p50/p90/max of accept → both connected, and the medians of the steps on the way."""
    totals = [s["total"] for s in samples]
    out: dict[str, Any] = {
        f"{prefix}accept_to_connected_p50_ms": round(percentile(totals, 50), 1),
        f"{prefix}accept_to_connected_p90_ms": round(percentile(totals, 90), 1),
        f"{prefix}accept_to_connected_max_ms": round(max(totals), 1),
    }
    for key in ("accept_ack", "shopper_started", "advisor_connected", "shopper_connected"):
        out[f"{prefix}{key}_p50_ms"] = round(statistics.median(s[key] for s in samples), 1)
    return out


async def run(sizes: Sizes) -> dict[str, Any]:
    from playwright.async_api import async_playwright

    from livedesk.demo.seed import DEMO_PASSWORD

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="livedesk-call-bench-") as tmp:
        workdir = Path(tmp)
        say("preparing a demo database")
        url = await prepare_database(workdir / "db")
        server = start_livedesk(
            "livedesk",
            workdir,
            url,
            secrets.token_hex(32),
            # One shopper makes every call here; the per-shopper join limit is for people.
            LIVEDESK_QUEUE_RATE_LIMIT="100000/minute",
        )
        try:
            await server.wait_ready("/readyz")
            say(f"server on {server.url} (pid {server.pid})")
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(
                    executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS
                )
                try:
                    pages = []
                    for _ in range(2):
                        context = await browser.new_context(permissions=["camera", "microphone"])
                        page = await context.new_page()
                        page.on("pageerror", lambda error: say(f"page error: {error}"))
                        await page.goto(server.url + "/")
                        pages.append(page)
                    advisor, shopper = pages
                    await advisor.evaluate(LOGIN, [ADVISOR_EMAIL, DEMO_PASSWORD])
                    await advisor.evaluate(PAGE_SETUP, ["advisor", None])
                    token = await shopper.evaluate(VISITOR)
                    await shopper.evaluate(PAGE_SETUP, ["shopper", token])

                    cold: list[dict[str, float]] = []
                    for i in range(sizes.warmup + sizes.calls):
                        sample = await one_call(advisor, shopper)
                        if i >= sizes.warmup:
                            cold.append(sample)
                        note = " (warm-up)" if i < sizes.warmup else ""
                        say(f"call {i + 1}: {sample['total']:.0f} ms{note}")
                    for page in pages:
                        await page.evaluate(PREVIEW, True)
                    warm: list[dict[str, float]] = []
                    for i in range(sizes.warm_calls):
                        sample = await one_call(advisor, shopper)
                        warm.append(sample)
                        say(f"call with media open {i + 1}: {sample['total']:.0f} ms")
                finally:
                    await browser.close()
        finally:
            server.stop()
    result: dict[str, Any] = {**summary("", cold)}
    result.update(summary("warm_", warm))
    result.update(
        {
            "budget_p50_ms": BUDGET_P50_MS,
            "seconds": round(time.monotonic() - started, 1),
            "calls": len(cold),
            "warm_calls": len(warm),
            "mode": sizes.mode,
        }
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls; finishes within a minute")
    args = parser.parse_args()
    if os.environ.get("LIVEDESK_IN_NETNS") != "1":
        print(
            "bench/call_setup.py makes real WebRTC calls between two Chromium pages: run it inside "
            "the test network namespace:\n  ../shared/tools/netns-run .venv/bin/python bench/call_setup.py"
            + (" --quick" if args.quick else ""),
            file=sys.stderr,
        )
        raise SystemExit(2)
    if not Path(CHROMIUM).exists():
        print(f"Chromium not found at {CHROMIUM} (set LIVEDESK_CHROMIUM)", file=sys.stderr)
        raise SystemExit(2)
    result = asyncio.run(run(QUICK if args.quick else FULL))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
