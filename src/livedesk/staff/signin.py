"""What keeps sign-in floods from costing the rest of the service: budgets counted before any
password is checked, and a cap on the password checks (argon2) one process runs at once.

A check costs tens to hundreds of milliseconds of CPU and 64 MiB on purpose, and runs in a
worker thread so the event loop stays free. The budgets, beside the one per account and
address (``LIVEDESK_LOGIN_RATE_LIMIT``):

- per client address across accounts: a flood of made-up e-mails from one address;
- per account across addresses: one account guessed from many addresses. Several windows make
  the wait grow (back-off); a successful sign-in starts the count again, so only consecutive
  failures add up. It applies to every e-mail, existing or not: a 429 kept for real accounts
  would tell which addresses have one.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from aiohttp import web
from limits import RateLimitItem, parse_many

from livedesk.kit.errors import AppError
from livedesk.kit.ratelimit import RateLimits
from livedesk.settings import Settings
from livedesk.staff.passwords import Checked, check_password

# Sign-ins that may wait for a check, per check slot: at ~0.1-0.3 s a check, a wait of a
# second or two at most; past that the client is told to come back rather than queued longer.
WAITING_PER_SLOT = 8
TOO_MANY = "Too many sign-in attempts; wait a minute"


class SignInBusy(AppError):
    """Every password check slot and its waiting line are taken."""

    status = 503
    code = "sign_in_busy"
    retry_after = 1

    def __init__(self) -> None:
        super().__init__(
            "Too many sign-ins at once; try again in a second", details={"retry_after": self.retry_after}
        )


class PasswordChecks:
    """At most ``slots`` password checks at once in this process (each holds a core and
    64 MiB), and at most ``WAITING_PER_SLOT`` × ``slots`` sign-ins waiting for one."""

    def __init__(self, slots: int) -> None:
        self._slots = asyncio.Semaphore(slots)
        self._room = WAITING_PER_SLOT * slots
        self.waiting = 0
        self.running = 0
        self.peak = 0  # most checks ever running at once (read by tests)
        self.done = 0  # checks finished, unknown e-mails included

    async def check(self, password_hash: str | None, password: str) -> Checked:
        """Verify ``password`` (against a dummy hash when there is no account, so an unknown
        e-mail costs what a known one does); raises ``SignInBusy`` when the line is full."""
        if self._slots.locked() and self.waiting >= self._room:
            raise SignInBusy()
        self.waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self.waiting -= 1
        self.running += 1
        self.peak = max(self.peak, self.running)
        work = asyncio.get_running_loop().run_in_executor(None, check_password, password_hash, password)
        # The slot is given back when the thread's work ends, not when this request does: a
        # cancelled request must not free a slot while its argon2 still runs.
        work.add_done_callback(self._finished)
        return await asyncio.shield(work)

    def _finished(self, _work: asyncio.Future[Checked]) -> None:
        self.running -= 1
        self.done += 1
        self._slots.release()


@dataclass(frozen=True)
class SignInBudgets:
    per_address: Sequence[RateLimitItem]
    per_account: Sequence[RateLimitItem]
    per_account_and_address: str


PASSWORD_CHECKS = web.AppKey("password_checks", PasswordChecks)
SIGN_IN_BUDGETS = web.AppKey("sign_in_budgets", SignInBudgets)


def setup(app: web.Application, settings: Settings) -> None:
    """Parse the budgets once, at start: a malformed one stops the app there, not at a sign-in."""
    app[PASSWORD_CHECKS] = PasswordChecks(settings.login_password_checks)
    app[SIGN_IN_BUDGETS] = SignInBudgets(
        per_address=parse_many(settings.login_address_rate_limit),
        per_account=parse_many(settings.login_account_rate_limit),
        per_account_and_address=settings.login_rate_limit,
    )


def address_key(address: str) -> str:
    """IPv6 by its /64: one host is handed a whole /64 and could otherwise rotate through it."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if parsed.version == 6:
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return address


async def _spend(limits: RateLimits, windows: Sequence[RateLimitItem], *keys: str) -> None:
    """One attempt against several windows, all or none: a refused attempt counts in none, and
    the refusal names the longest wait among the windows that are full. (Across processes on
    Redis two attempts may both pass between the test and the count: a one-off overshoot.)"""
    full = [window for window in windows if not await limits.allows(window, *keys)]
    if full:
        refusals = [await limits.refusal(window, *keys, message=TOO_MANY) for window in full]
        raise max(refusals, key=lambda refusal: refusal.retry_after)
    for window in windows:
        await limits.count(window, *keys)


async def spend_budgets(limits: RateLimits, budgets: SignInBudgets, email: str, address: str) -> None:
    """Count one sign-in attempt, before its password is checked; ``TooManyRequests`` when a
    budget is spent."""
    await _spend(limits, budgets.per_address, "login_address", address_key(address))
    # Per account and address, so one attacker cannot lock a colleague out from elsewhere.
    await limits.hit(budgets.per_account_and_address, "login", email, address, message=TOO_MANY)
    await _spend(limits, budgets.per_account, "login_account", email)


async def signed_in(limits: RateLimits, budgets: SignInBudgets, email: str) -> None:
    """The account's own failures no longer count once its owner has signed in."""
    for window in budgets.per_account:
        await limits.clear(window, "login_account", email)
