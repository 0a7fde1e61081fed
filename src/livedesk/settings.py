"""Typed settings, read from ``LIVEDESK_*`` environment variables.

Every setting is listed, with its default, in the README's settings table; a test keeps the
two in step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LIVEDESK_", extra="ignore", frozen=True)

    data_dir: Path = Field(
        Path("./livedesk-data"), description="Where the embedded database, uploads and recordings live."
    )
    host: str = Field("127.0.0.1", description="Address the HTTP server binds to.")
    port: int = Field(8080, ge=0, le=65535, description="Port the HTTP server listens on.")
    public_url: str = Field(
        "", description="Public base URL (for links in mails and the widget); default http://HOST:PORT."
    )
    database_url: str = Field("", description="SQLAlchemy async URL; default SQLite in the data directory.")
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
    max_body_bytes: int = Field(1_048_576, ge=1024, description="Largest JSON request body accepted.")
    shop_signing_secret: SecretStr = Field(
        SecretStr(""),
        description="Shared secret the shop signs its customer ids with (HMAC-SHA256); empty = not accepted.",
    )
    visitor_token_hours: int = Field(24, ge=1, description="How long a shopper's visitor token stays valid.")
    offer_timeout_seconds: float = Field(
        30.0, gt=0, description="An unanswered offer moves to the next advisor after this."
    )
    max_chats_per_advisor: int = Field(
        3, ge=1, description="Chats an advisor may hold at once (calls: always one)."
    )
    presence_grace_seconds: float = Field(
        10.0, ge=0, description="An advisor whose last tab closed goes offline after this grace period."
    )
    queue_leave_grace_seconds: float = Field(
        20.0, ge=0, description="A waiting shopper with no open page for this long has left the queue."
    )
    queue_max_wait_seconds: int = Field(
        900, ge=10, description="A queued shopper no advisor took is marked missed after this."
    )
    chat_rate_limit: str = Field("30/10seconds", description="Chat messages one party may send.")
    queue_rate_limit: str = Field("5/minute", description="Queue joins one shopper may make.")
    upload_max_bytes: int = Field(10_485_760, ge=1024, description="Largest chat file accepted.")
    unsent_file_hours: int = Field(
        24, ge=0, description="A chat file uploaded but never sent is deleted after this; 0 = kept."
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
        description="Proxy addresses (JSON list) whose X-Forwarded-For is believed, for the client address.",
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
    allowed_origins: list[str] = Field(
        default_factory=list, description="Extra browser origins allowed to open staff sockets (JSON list)."
    )

    @field_validator("public_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'livedesk.sqlite3').resolve()}"

    @property
    def effective_public_url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"
