"""Typed settings, read from ``LIVEDESK_*`` environment variables.

Every setting is listed, with its default, in the README's settings table; a test keeps the
two in step.
"""

from __future__ import annotations

import ipaddress
from email.headerregistry import Address
from email.utils import parseaddr
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from limits import parse_many
from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from livedesk.currencies import EXPONENTS

ENV_PREFIX = "LIVEDESK_"


def env_name(field: str) -> str:
    return ENV_PREFIX + field.upper()


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    data_dir: Path = Field(
        Path("./livedesk-data"), description="Where the embedded database, uploads and recordings live."
    )
    host: str = Field("127.0.0.1", description="Address the HTTP server binds to.")
    port: int = Field(8080, ge=0, le=65535, description="Port the HTTP server listens on.")
    public_url: str = Field(
        "", description="Public base URL (for links in mails and the widget); default http://HOST:PORT."
    )
    database_url: str = Field("", description="SQLAlchemy async URL; default SQLite in the data directory.")
    db_max_connections: int = Field(
        20,
        ge=2,
        le=1000,
        description=(
            "PostgreSQL connections one process may hold at most (half for the chat store, half for"
            " everything else); replicas × this must stay below the server's max_connections."
        ),
    )
    db_pool_timeout_seconds: float = Field(
        8.0,
        gt=0,
        le=60,
        description="How long a request waits for a free database connection before it answers 503.",
    )
    redis_url: str = Field(
        "", description="Redis URL for fan-out and shared rate limits between processes; empty = one process."
    )
    redis_channel: str = Field(
        "livedesk", min_length=1, max_length=100, description="Redis pub/sub channel for Socket.IO fan-out."
    )
    secret_key: SecretStr = Field(
        SecretStr(""), description="Signs shopper tokens and links. Required outside the demo."
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", description="Log level.")
    log_format: Literal["json", "console"] = Field(
        "json", description="Structured logs as JSON lines, or readable console lines."
    )
    session_idle_minutes: int = Field(
        30, ge=1, description="A staff login session ends after this long without a request."
    )
    session_absolute_hours: int = Field(
        12, ge=1, description="A staff login session ends this long after login, whatever happens."
    )
    cookie_secure: bool = Field(False, description="Mark the session cookie Secure (set true behind HTTPS).")
    login_rate_limit: str = Field(
        "5/minute", description="Login attempts allowed per account and client address."
    )
    login_address_rate_limit: str = Field(
        "30/minute;300/hour",
        description="Login attempts allowed per client address across accounts; windows split by ';'.",
    )
    login_account_rate_limit: str = Field(
        "10/minute;50/hour",
        description="Login attempts allowed per account across addresses; a success starts the count again.",
    )
    login_password_checks: int = Field(
        1, ge=1, description="Password checks one process runs at once; more sign-ins wait, then get 503."
    )
    max_body_bytes: int = Field(1_048_576, ge=1024, description="Largest JSON request body accepted.")
    shop_signing_secret: SecretStr = Field(
        SecretStr(""),
        description="Shared secret the shop signs its customer ids with (HMAC-SHA256); empty = not accepted.",
    )
    visitor_token_hours: int = Field(24, ge=1, description="How long a shopper's visitor token stays valid.")
    offer_timeout_seconds: float = Field(
        30.0, gt=0, description="An unanswered offer moves to the next advisor after this."
    )
    routing_sweep_seconds: float = Field(
        15.0,
        gt=0,
        description="Routing decides on each change; this slow sweep (one process at a time) catches "
        "what a lost change missed: due offers, stale waits, queue places.",
    )
    max_chats_per_advisor: int = Field(
        3, ge=1, description="Chats an advisor may hold at once (calls: always one)."
    )
    # Whole seconds: Engine.IO tells clients the interval in whole seconds.
    socket_ping_interval_seconds: int = Field(
        25,
        ge=1,
        description="The server pings each Socket.IO connection this often (below a proxy's idle timeout).",
    )
    socket_ping_timeout_seconds: int = Field(
        20, ge=1, description="A connection whose answer to a ping is this late is closed as gone."
    )
    # Hostile clients (docs/security.md, "Hostile clients: memory bounds and long polling").
    socket_queue_bytes: int = Field(
        1_048_576,
        ge=65_536,
        description="Bytes queued for one socket; past it the socket is closed (its reads pause at half).",
    )
    socket_write_stall_seconds: float = Field(
        10.0, gt=0, description="A socket whose write is blocked this long is closed."
    )
    socket_post_seconds: float = Field(
        10.0, gt=0, description="A long-polling POST's body must arrive whole within this."
    )
    drain_delay_seconds: float = Field(
        1.0,
        ge=0,
        le=5,
        description="On SIGTERM, /readyz answers 503 this long before the sockets are drained "
        "(docs/deployment.md, Graceful deploys).",
    )
    chat_sync_page_bytes: int = Field(
        65_536, ge=4096, description="Bytes of messages one chat.sync answer holds (the client asks again)."
    )
    presence_grace_seconds: float = Field(
        10.0, ge=0, description="An advisor whose last tab closed goes offline after this grace period."
    )
    queue_leave_grace_seconds: float = Field(
        20.0, ge=0, description="A waiting shopper with no open page for this long has left the queue."
    )
    consultation_gone_grace_seconds: float = Field(
        60.0,
        ge=0,
        description="An active consultation whose shopper and advisor both have no page open for this "
        "long ends (wrap-up).",
    )
    away_after_missed_offer: bool = Field(
        True, description="An advisor who lets an offer time out is set Away until she says she is back."
    )
    queue_max_wait_seconds: int = Field(
        900, ge=10, description="A queued shopper no advisor took is marked missed after this."
    )
    chat_rate_limit: str = Field("30/10seconds", description="Chat messages one party may send.")
    queue_rate_limit: str = Field("5/minute", description="Queue joins one shopper may make.")
    # Abuse budgets (docs/security.md, "Abuse budgets"): what one client may cost us.
    typing_rate_limit: str = Field("20/10seconds", description="Typing events one party may send.")
    typing_relay_seconds: float = Field(
        1.0, ge=0, description="A socket's typing state is passed on at most once per this (the last wins)."
    )
    read_rate_limit: str = Field("60/10seconds", description="Read receipts one party may send.")
    shopper_sockets_per_token: int = Field(
        10, ge=0, description="Open shopper sockets per shopper (visitor token) in one process; 0 = no cap."
    )
    shopper_sockets_per_address: int = Field(
        100, ge=0, description="Open shopper sockets per client address in one process; 0 = no cap."
    )
    shopper_connect_rate_limit: str = Field(
        "120/minute", description="Shopper socket connections one client address may open."
    )
    queue_address_rate_limit: str = Field(
        "20/minute;100/hour", description="Queue joins from one client address; windows split by ';'."
    )
    queue_network_rate_limit: str = Field(
        "60/minute;300/hour", description="Queue joins from one /24 (IPv4) or /64 (IPv6) network."
    )
    queue_waiting_per_address: int = Field(
        5, ge=0, description="Shoppers one client address may have waiting at once; 0 = no cap."
    )
    queue_waiting_per_network: int = Field(
        15, ge=0, description="Shoppers one /24 or /64 network may have waiting at once; 0 = no cap."
    )
    queue_max_waiting: int = Field(
        300,
        ge=0,
        description="Shoppers waiting in all; past it new joins are refused (queue_full); 0 = no cap.",
    )
    upload_max_bytes: int = Field(10_485_760, ge=1024, description="Largest chat file accepted.")
    upload_consultation_bytes: int = Field(
        52_428_800, ge=1024, description="Bytes of files one consultation may hold (both parties)."
    )
    upload_shopper_bytes_per_day: int = Field(
        104_857_600, ge=1024, description="Bytes of files one shopper may upload in 24 hours."
    )
    upload_disk_high_water_percent: int = Field(
        90,
        ge=1,
        le=100,
        description="Uploads are refused while the files' disk is fuller than this; 100 = off.",
    )
    upload_max_image_pixels: int = Field(
        40_000_000, ge=1, description="Largest image accepted, in pixels (width × height, from its header)."
    )
    unsent_file_minutes: int = Field(
        10, ge=0, description="A chat file uploaded but never sent is deleted after this; 0 = kept."
    )
    stun_urls: list[str] = Field(
        default_factory=list, description="STUN server URLs for browsers (JSON list); none by default."
    )
    turn_urls: list[str] = Field(
        default_factory=list, description="TURN server URLs (JSON list), e.g. coturn."
    )
    turn_secret: SecretStr = Field(
        SecretStr(""), description="coturn static-auth-secret for time-limited TURN credentials."
    )
    turn_ttl_seconds: int = Field(3600, ge=60, description="Lifetime of TURN credentials.")
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Proxies (JSON list of addresses or CIDRs) whose X-Forwarded-For names the client.",
    )
    widget_frame_ancestors: str = Field(
        "*",
        description='CSP frame-ancestors for the shopper pages the widget frames, e.g. "https://shop.example".',
    )
    smtp_host: str = Field("", description="SMTP server for mails; empty = mails off.")
    smtp_port: int = Field(25, ge=1, le=65535, description="SMTP server port.")
    smtp_username: str = Field("", description="SMTP login; empty = no login.")
    smtp_password: SecretStr = Field(SecretStr(""), description="SMTP password.")
    smtp_starttls: bool = Field(False, description="Upgrade the SMTP connection with STARTTLS.")
    smtp_timeout_seconds: float = Field(10.0, gt=0, description="Give up on one SMTP delivery after this.")
    mail_from: str = Field(
        "livedesk <no-reply@livedesk.invalid>", description="From address of the mails livedesk sends."
    )
    booking_reply_to: str = Field(
        "",
        description=(
            "Address booking mails' Reply-To and calendar ORGANIZER use (a desk mailbox); "
            "empty = the booked advisor's own address."
        ),
    )
    mail_outbox: bool = Field(
        False,
        description="Without an SMTP host, keep outgoing mails in <data dir>/outbox/ and list them at "
        "/demo/mail (demos only: anyone who reaches the server reads every mail).",
    )
    booking_slot_step_minutes: int = Field(
        15, ge=5, le=120, description="Bookable start times are this many minutes apart (5 works too)."
    )
    booking_reminder_minutes: list[int] = Field(
        default_factory=lambda: [1440, 60],
        description="Reminder mails go out this many minutes before a booking (JSON list).",
    )
    booking_no_show_grace_minutes: int = Field(
        15, ge=1, description="A booking nobody joined (or no advisor took) is a no-show after this long."
    )
    booking_join_early_minutes: int = Field(
        0, ge=0, description="A shopper may join a booked call this many minutes early (0: at the time)."
    )
    booking_job_seconds: float = Field(
        15.0, gt=0, description="How often each process looks for booking mails to send and no-shows to mark."
    )
    booking_rate_limit: str = Field("20/minute", description="Bookings one client address may make.")
    booking_confirm_by_mail: bool = Field(
        True,
        description="An anonymous shopper's booking stays pending until the link in its mail is opened.",
    )
    booking_pending_minutes: int = Field(
        30, ge=5, le=24 * 60, description="How long a pending booking holds its slot before it is released."
    )
    booking_payment_minutes: int = Field(
        20,
        ge=5,
        le=24 * 60,
        description="How long a booking whose type takes a deposit or price waits for the payment "
        "(pending, holding its slot) before it lapses.",
    )
    booking_refund_on_cancel: bool = Field(
        True,
        description="A cancelled booking's charged deposit or price is refunded (off: kept). A hold "
        "is always released on cancel.",
    )
    booking_link_days: int = Field(
        7, ge=1, le=365, description="Booking links stop working this many days after the booking ends."
    )
    verification_mails_per_day: int = Field(
        5,
        ge=1,
        le=100,
        description="Verification mails (booking confirmations, link codes) one address may get a day.",
    )
    allowed_origins: list[str] = Field(
        default_factory=list, description="Extra browser origins allowed to open staff sockets (JSON list)."
    )
    stripe_secret_key: SecretStr = Field(
        SecretStr(""), description="Stripe secret key; with the publishable key, payments go through Stripe."
    )
    stripe_publishable_key: str = Field(
        "", description="Stripe publishable key for the Payment Element; empty = the sandbox (test mode)."
    )
    stripe_webhook_secret: SecretStr = Field(
        SecretStr(""), description="Stripe webhook signing secret (whsec_…); empty = the webhook answers 404."
    )
    stripe_api_base: str = Field(
        "", description="Another Stripe API address (a local Stripe stand-in in tests); empty = Stripe's."
    )
    payment_currency: str = Field(
        "JPY", description="Currency of new catalogue products when none is given (ISO 4217 code)."
    )
    product_page_url: str = Field(
        "/demo/shop?sku={sku}",
        max_length=500,
        pattern=r"^(/[^/\s]|https://)\S*\{sku\}\S*$",
        description="The shop's product page a chat product card links to; {sku} stands for the SKU.",
    )
    alert_long_wait_seconds: int = Field(
        120, ge=1, description="A shopper waiting longer than this raises a long-wait alert on the board."
    )
    alert_long_call_seconds: int = Field(
        1800, ge=1, description="A call lasting longer than this raises a long-call alert on the board."
    )
    metrics_token: SecretStr = Field(
        SecretStr(""), description="Bearer token that may read /metrics from anywhere; empty = none accepted."
    )
    metrics_allow: list[str] = Field(
        default_factory=lambda: ["127.0.0.1/32", "::1/128"],
        description="Client networks (JSON list of CIDRs) that may read /metrics without a token.",
    )

    webhook_poll_seconds: float = Field(
        1.0, ge=0, description="How often each process looks for webhooks to deliver; 0 = none here."
    )
    webhook_timeout_seconds: float = Field(10.0, gt=0, description="Give up on one webhook post after this.")
    webhook_endpoint_concurrency: int = Field(
        4,
        ge=1,
        le=100,
        description=(
            "Posts in flight to one webhook endpoint per process; a slow endpoint holds only its own slots."
        ),
    )
    webhook_rotation_overlap_hours: float = Field(
        24.0,
        ge=0,
        le=24 * 30,
        description="After a webhook secret rotation, the old secret signs beside the new one this long.",
    )
    webhook_max_attempts: int = Field(
        8, ge=1, description="Tries per webhook delivery before it is marked failed."
    )
    webhook_backoff_seconds: float = Field(
        30.0, ge=0, description="Wait before the first retry of a webhook; doubles each time (capped at 6 h)."
    )
    webhook_allow_networks: str = Field(
        "",
        description=(
            "Private networks webhooks may reach (comma-separated CIDRs); empty = public addresses only."
        ),
    )
    integration_rate_limit: str = Field(
        "600/minute", description="Shop API requests one integration key may make."
    )

    recording_consent_policy: Literal["ask", "announce"] = Field(
        "ask",
        description=(
            "Recording consent: ask every participant first, or announce and record at once"
            " (a refusal stops it)."
        ),
    )
    recording_retention_days: int = Field(
        90, ge=1, description="Recordings are deleted (file and row, audited) this many days after they end."
    )
    recording_retention_check_seconds: float = Field(
        3600.0, ge=0, description="How often each process looks for expired recordings; 0 = none here."
    )
    recording_storage: Literal["local", "s3"] = Field(
        "local", description="Where recordings are kept: the data directory, or S3-compatible storage."
    )
    recording_object_endpoint: str = Field(
        "", description="S3 endpoint URL (e.g. MinIO http://minio:9000); empty = the AWS default."
    )
    recording_object_bucket: str = Field("livedesk-recordings", description="S3 bucket for recordings.")
    recording_object_region: str = Field("us-east-1", description="S3 region.")
    recording_object_access_key: str = Field("", description="S3 access key id.")
    recording_object_secret_key: SecretStr = Field(SecretStr(""), description="S3 secret access key.")
    monitoring_notify: bool = Field(
        True,
        description=(
            "Live call monitoring: tell both parties that a supervisor is listening"
            " (barge-in is always told)."
        ),
    )

    # Every value is checked here, at start, naming its variable: a typo found on first use
    # would otherwise start fine and then fail every request that reads it (or trust nobody).
    @field_validator("trusted_proxies", "metrics_allow")
    @classmethod
    def _are_networks(cls, value: list[str], info: ValidationInfo) -> list[str]:
        for entry in value:
            _network(entry, info)
        return [entry.strip() for entry in value]

    @field_validator("webhook_allow_networks")
    @classmethod
    def _comma_networks(cls, value: str, info: ValidationInfo) -> str:
        for entry in value.split(","):
            if entry.strip():
                _network(entry, info)
        return value

    @field_validator("payment_currency")
    @classmethod
    def _supported_currency(cls, value: str) -> str:
        code = value.strip().upper()
        if code not in EXPONENTS:
            raise ValueError(
                f"LIVEDESK_PAYMENT_CURRENCY: unsupported currency '{value}' "
                f"(supported: {', '.join(sorted(EXPONENTS))})"
            )
        return code

    @field_validator("booking_reply_to")
    @classmethod
    def _reply_address(cls, value: str) -> str:
        _, address = parseaddr(value)
        if value and ("@" not in address or any(c in address for c in " <>\r\n")):
            raise ValueError(f"LIVEDESK_BOOKING_REPLY_TO: '{value}' is not an e-mail address")
        return value

    @field_validator("mail_from")
    @classmethod
    def _mail_address(cls, value: str) -> str:
        _, address = parseaddr(value)
        try:
            Address(addr_spec=address)
            if "@" not in address:
                raise ValueError
        except (ValueError, IndexError):
            raise ValueError(
                f"LIVEDESK_MAIL_FROM: '{value}' is not an address such as 'Shop <no-reply@shop.example>'"
            ) from None
        return value

    @field_validator("public_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError(f"LIVEDESK_PUBLIC_URL: '{value}' must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        if not value:
            return value
        try:
            driver = make_url(value).drivername
        except ArgumentError:
            raise ValueError("LIVEDESK_DATABASE_URL is not a database URL") from None
        if driver not in ("sqlite+aiosqlite", "postgresql+asyncpg"):
            raise ValueError(
                f"LIVEDESK_DATABASE_URL: driver '{driver}' is not supported "
                "(use sqlite+aiosqlite:/// or postgresql+asyncpg://)"
            )
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str) -> str:
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("LIVEDESK_REDIS_URL must start with redis://, rediss:// or unix://")
        return value

    @field_validator("*")
    @classmethod
    def _rate_limits_parse(cls, value: object, info: ValidationInfo) -> object:
        if info.field_name and info.field_name.endswith("_rate_limit") and isinstance(value, str):
            try:
                if not parse_many(value):
                    raise ValueError
            except ValueError:
                raise ValueError(
                    f"{env_name(info.field_name)}: '{value}' is not a rate such as '30/minute' "
                    "or '5/second;100/hour'"
                ) from None
        return value

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'livedesk.sqlite3').resolve()}"

    @property
    def effective_public_url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"

    @property
    def mail_domain(self) -> str:
        """The domain of Message-IDs: the public URL's host (``desk.shop.example``)."""
        host = urlsplit(self.effective_public_url).hostname or ""
        return host if host and ":" not in host else "livedesk.invalid"


def _network(entry: str, info: ValidationInfo) -> None:
    try:
        ipaddress.ip_network(entry.strip(), strict=False)
    except ValueError:
        raise ValueError(
            f"{env_name(info.field_name or '')}: '{entry}' is not an address or CIDR network"
        ) from None
