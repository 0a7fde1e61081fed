"""The booking jobs: every process runs them on a short tick (and at once after a booking
change): release pending bookings nobody confirmed in time, send due booking mails, and
settle bookings (attended / no-show). Work is claimed
in the database (see ``mails`` and ``joining``), so with several processes each mail goes
out once and each booking is settled once."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from livedesk.booking import confirmation, joining, mails
from livedesk.booking.tokens import BookingTokens
from livedesk.kit.background import BACKGROUND
from livedesk.kit.context import DB, SETTINGS
from livedesk.kit.logging import get_logger
from livedesk.kit.mail import MAILER
from livedesk.kit.periodic import Periodic, log_job_failure

log = get_logger("livedesk.booking.jobs")


class BookingJobs:
    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.tokens = BookingTokens(app[SETTINGS].secret_key.get_secret_value())
        # The tick reads the interval from settings each time (tests shorten it).
        self._job = Periodic(
            "livedesk-booking-jobs", self._pass, every=lambda: app[SETTINGS].booking_job_seconds
        )
        # For tests and diagnostics: passes run, mails sent and bookings settled here.
        self.passes = 0
        self.sent = 0
        self.settled = 0
        self.released = 0

    async def kick(self) -> None:
        """Run a pass now (coalesced: a kick during a pass makes one more pass)."""
        await self._job.kick()

    async def _pass(self) -> None:
        app = self.app
        try:
            async with app[DB].read() as session:
                expired = await confirmation.anything_to_release(session)
                due = await joining.anything_to_settle(session, app[SETTINGS])
            if expired:
                # Unconfirmed holds give their slots back (and their "please confirm" mail,
                # if still unsent, is stale from now on).
                async with app[DB].transaction() as session:
                    self.released += await confirmation.release_unconfirmed(session)
            if due:
                async with app[DB].transaction() as session:
                    self.settled += await joining.settle_bookings(session, app[SETTINGS])
            self.sent += await mails.send_due(
                app[DB], app[MAILER], app[SETTINGS], self.tokens, composers=app.get(mails.MAIL_COMPOSERS)
            )
        except Exception as exc:  # a failed pass is retried on the next tick
            log_job_failure(log, "booking jobs pass failed", exc)
        self.passes += 1

    async def start(self) -> None:
        self._job.start()

    async def stop(self) -> None:
        await self._job.stop()


JOBS = web.AppKey("booking_jobs", BookingJobs)


def kick_soon(app: web.Application) -> None:
    """Send what a change just queued without waiting for the next tick."""
    if JOBS in app:
        app[BACKGROUND].spawn(app[JOBS].kick(), name="booking-jobs-kick")


async def jobs_ctx(app: web.Application) -> AsyncIterator[None]:
    jobs = BookingJobs(app)
    app[JOBS] = jobs
    await jobs.start()
    yield
    await jobs.stop()
