"""The deposits job: every process settles, on the booking jobs' tick, the deposits and prices
of bookings that were cancelled, lapsed, missed or took place (``deposits.settle_due``)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from livedesk.kit.background import BACKGROUND
from livedesk.kit.context import DB, SETTINGS
from livedesk.kit.logging import get_logger
from livedesk.kit.periodic import Periodic, log_job_failure
from livedesk.payments import deposits
from livedesk.payments.providers import PROVIDER

log = get_logger("livedesk.payments.deposit_jobs")


class DepositJobs:
    def __init__(self, app: web.Application) -> None:
        self.app = app
        self._job = Periodic(
            "livedesk-deposit-jobs", self._pass, every=lambda: app[SETTINGS].booking_job_seconds
        )
        # For tests and diagnostics: payments settled here.
        self.settled = 0

    async def kick(self) -> None:
        await self._job.kick()

    async def _pass(self) -> None:
        try:
            self.settled += await deposits.settle_due(self.app[DB], self.app[PROVIDER], self.app[SETTINGS])
        except Exception as exc:  # a failed pass is retried on the next tick
            log_job_failure(log, "deposit jobs pass failed", exc)


DEPOSIT_JOBS = web.AppKey("deposit_jobs", DepositJobs)


def kick_deposits(app: web.Application) -> None:
    if DEPOSIT_JOBS in app:
        app[BACKGROUND].spawn(app[DEPOSIT_JOBS].kick(), name="deposit-jobs-kick")


async def deposit_jobs_ctx(app: web.Application) -> AsyncIterator[None]:
    jobs = DepositJobs(app)
    app[DEPOSIT_JOBS] = jobs
    jobs._job.start()
    yield
    await jobs._job.stop()
