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
