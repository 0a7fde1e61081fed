"""The payment provider interface and its two implementations.

``StripeProvider`` talks to Stripe (PaymentIntents, refunds) through the official SDK with our
own idempotency keys; ``SandboxProvider`` is the offline stand-in used when no Stripe keys are
set, so the demo works end to end. The shopper's card never passes through livedesk with
either: Stripe's Payment Element sends it straight to Stripe, and the sandbox takes no card at
all (the shopper picks an outcome on a page labelled "test mode").
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import stripe
from aiohttp import web

from livedesk.kit import money
from livedesk.kit.errors import AppError
from livedesk.kit.logging import get_logger
from livedesk.models import PaymentProviderName, RefundStatus
from livedesk.settings import Settings

log = get_logger("livedesk.payments")


class ProviderError(AppError):
    """The provider refused or could not be reached; nothing was changed on our side."""

    status = 502
    code = "payment_provider_error"


@dataclass(frozen=True)
class Intent:
    ref: str
    client_secret: str | None


@dataclass(frozen=True)
class RefundOutcome:
    ref: str
    status: RefundStatus


@dataclass(frozen=True)
class RefundFact:
    """What the provider says about one of its refunds (a Stripe Refund object, read)."""

    ref: str
    amount_minor: int
    status: RefundStatus
    created: datetime | None = None
    failure_reason: str | None = None


@dataclass(frozen=True)
class PaymentSnapshot:
    """The provider's current truth about one payment: its PaymentIntent's status and every
    refund made of it. Fetched when an event may have arrived before what it refers to."""

    ref: str
    intent_status: str
    refunds: tuple[RefundFact, ...]


# Stripe's refund statuses; requires_action is still waiting on the customer (pending to us).
STRIPE_REFUND_STATUS = {
    "succeeded": RefundStatus.SUCCEEDED,
    "pending": RefundStatus.PENDING,
    "requires_action": RefundStatus.PENDING,
    "failed": RefundStatus.FAILED,
    "canceled": RefundStatus.CANCELED,
}


def refund_fact(obj: Mapping[str, Any]) -> RefundFact | None:
    """A Stripe Refund object (from an event or the API) read into a RefundFact; None when
    it is not one (no ``re_`` id, no amount, an unknown status)."""
    ref = obj.get("id")
    amount = obj.get("amount")
    status = STRIPE_REFUND_STATUS.get(str(obj.get("status") or ""))
    if not isinstance(ref, str) or not ref or not isinstance(amount, int) or amount < 0 or status is None:
        return None
    created = obj.get("created")
    reason = obj.get("failure_reason")
    return RefundFact(
        ref=ref[:128],
        amount_minor=amount,
        status=status,
        created=datetime.fromtimestamp(created, UTC) if isinstance(created, int) else None,
        failure_reason=str(reason)[:64] if reason else None,
    )


class PaymentProvider(Protocol):
    name: PaymentProviderName
    # Shown to everyone as "test mode": no real money moves.
    test_mode: bool
    publishable_key: str

    async def create_intent(
        self,
        *,
        amount_minor: int,
        currency: str,
        metadata: dict[str, str],
        idempotency_key: str,
        hold: bool = False,
    ) -> Intent:
        """A payment object for the shopper to pay; ``hold``: authorise only (manual capture)."""
        ...

    async def capture(self, *, ref: str, idempotency_key: str) -> None:
        """Take the money of a held (authorised) payment."""
        ...

    async def release(self, *, ref: str, idempotency_key: str) -> None:
        """Give a held payment back (cancel the authorisation), or drop an unpaid one."""
        ...

    async def refund(
        self, *, ref: str, amount_minor: int, currency: str, metadata: dict[str, str], idempotency_key: str
    ) -> RefundOutcome: ...

    async def snapshot(self, ref: str) -> PaymentSnapshot | None:
        """The provider's current state of payment ``ref`` and its refunds (None: the provider
        sends no events, so there is nothing to reconcile)."""
        ...


class SandboxProvider:
    """No network, no card: intents and refunds are made up here, and the shopper's page
    chooses success, a decline or an extra authentication step (see service.sandbox_act)."""

    name = PaymentProviderName.SANDBOX
    test_mode = True
    publishable_key = ""

    async def create_intent(
        self,
        *,
        amount_minor: int,
        currency: str,
        metadata: dict[str, str],
        idempotency_key: str,
        hold: bool = False,
    ) -> Intent:
        money.stripe_amount(amount_minor, currency)
        # Derived from the idempotency key, like Stripe: the same request makes the same intent.
        return Intent(ref=f"sbx_pi_{uuid.uuid5(uuid.NAMESPACE_URL, idempotency_key).hex}", client_secret=None)

    async def capture(self, *, ref: str, idempotency_key: str) -> None:
        return None

    async def release(self, *, ref: str, idempotency_key: str) -> None:
        return None

    async def refund(
        self, *, ref: str, amount_minor: int, currency: str, metadata: dict[str, str], idempotency_key: str
    ) -> RefundOutcome:
        ref_id = uuid.uuid5(uuid.NAMESPACE_URL, idempotency_key).hex
        return RefundOutcome(ref=f"sbx_re_{ref_id}", status=RefundStatus.SUCCEEDED)

    async def snapshot(self, ref: str) -> PaymentSnapshot | None:
        # The sandbox decides at once and sends no webhooks: nothing can arrive out of order.
        return None


class StripeProvider:
    """Stripe through the official SDK. The SDK is synchronous here (its HTTP client is
    requests-like), so each call runs in a worker thread; calls are few and short."""

    name = PaymentProviderName.STRIPE
    test_mode: bool
    publishable_key: str

    def __init__(self, secret_key: str, publishable_key: str, api_base: str = "") -> None:
        self.publishable_key = publishable_key
        self.test_mode = secret_key.startswith("sk_test_")
        options: dict[str, Any] = {"max_network_retries": 2}
        if api_base:
            options["base_addresses"] = {"api": api_base.rstrip("/")}
        self.client = stripe.StripeClient(secret_key, **options)

    async def create_intent(
        self,
        *,
        amount_minor: int,
        currency: str,
        metadata: dict[str, str],
        idempotency_key: str,
        hold: bool = False,
    ) -> Intent:
        params: dict[str, Any] = {
            "amount": money.stripe_amount(amount_minor, currency),
            "currency": money.stripe_currency(currency),
            "metadata": metadata,
            # Cards only: the Payment Element then shows the card form and nothing that would
            # need a redirect away from the call.
            "payment_method_types": ["card"],
        }
        if hold:
            # Authorise now, take later (or never): a card hold lasts about 7 days at Stripe.
            params["capture_method"] = "manual"
        intent = await self._call(
            self.client.v1.payment_intents.create, params=params, options={"idempotency_key": idempotency_key}
        )
        return Intent(ref=intent.id, client_secret=intent.client_secret)

    async def refund(
        self, *, ref: str, amount_minor: int, currency: str, metadata: dict[str, str], idempotency_key: str
    ) -> RefundOutcome:
        params: dict[str, Any] = {
            "payment_intent": ref,
            "amount": money.stripe_amount(amount_minor, currency),
            "metadata": metadata,
        }
        refund = await self._call(
            self.client.v1.refunds.create, params=params, options={"idempotency_key": idempotency_key}
        )
        return RefundOutcome(
            ref=refund.id, status=STRIPE_REFUND_STATUS.get(refund.status or "", RefundStatus.PENDING)
        )

    async def capture(self, *, ref: str, idempotency_key: str) -> None:
        await self._call(
            self.client.v1.payment_intents.capture, ref, options={"idempotency_key": idempotency_key}
        )

    async def release(self, *, ref: str, idempotency_key: str) -> None:
        await self._call(
            self.client.v1.payment_intents.cancel, ref, options={"idempotency_key": idempotency_key}
        )

    async def snapshot(self, ref: str) -> PaymentSnapshot | None:
        """The PaymentIntent and all its refunds as Stripe holds them now (two GETs; a
        payment with more than 100 refunds is read page by page)."""
        intent = await self._call(self.client.v1.payment_intents.retrieve, ref)
        facts: list[RefundFact] = []
        params: dict[str, Any] = {"payment_intent": ref, "limit": 100}
        while True:
            page = await self._call(self.client.v1.refunds.list, params=params)
            for item in page.data:
                fact = refund_fact(item.to_dict())
                if fact is not None:
                    facts.append(fact)
            if not page.has_more or not page.data:
                break
            params = {**params, "starting_after": page.data[-1].id}
        return PaymentSnapshot(ref=ref, intent_status=str(intent.status), refunds=tuple(facts))

    async def _call(self, method: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await asyncio.to_thread(method, *args, **kwargs)
        except stripe.CardError as exc:
            raise ProviderError(exc.user_message or "The card was declined", code="card_declined") from None
        except stripe.InvalidRequestError as exc:
            log.warning("stripe refused a request", error=str(exc.user_message or exc))
            raise ProviderError(
                f"Stripe refused the request: {exc.user_message or 'invalid request'}", code="payment_refused"
            ) from None
        except stripe.StripeError as exc:
            log.warning("stripe call failed", error=str(exc))
            raise ProviderError("The payment service could not be reached; try again") from None


def make_provider(settings: Settings) -> PaymentProvider:
    """Stripe when both keys are set, otherwise the sandbox."""
    secret = settings.stripe_secret_key.get_secret_value()
    if secret and settings.stripe_publishable_key:
        return StripeProvider(secret, settings.stripe_publishable_key, settings.stripe_api_base)
    return SandboxProvider()


PROVIDER = web.AppKey("payment_provider", PaymentProvider)


def setup_provider(app: web.Application, settings: Settings) -> None:
    app[PROVIDER] = make_provider(settings)
