"""Every setting is checked when the process starts, and the error names the variable
(issue 21, item 4). Before, ``LIVEDESK_CHAT_RATE_LIMIT=banana`` started fine and then every
chat send failed with ``internal``."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from pydantic import ValidationError

from livedesk.settings import Settings

RATE_LIMITS = sorted(name for name in Settings.model_fields if name.endswith("_rate_limit"))

BAD = [
    *((name, "banana") for name in RATE_LIMITS),
    ("chat_rate_limit", "30/fortnight"),
    ("chat_rate_limit", ""),
    ("trusted_proxies", ["10.0.0.0/33"]),
    ("metrics_allow", ["localhost"]),
    ("webhook_allow_networks", "10.0.0.0/8,intranet"),
    ("payment_currency", "XYZ"),
    ("mail_from", "nobody"),
    ("public_url", "shop.example"),
    ("database_url", "mysql://db/livedesk"),
    ("redis_url", "localhost:6379"),
]


def test_every_rate_limit_setting_is_checked() -> None:
    # A new *_rate_limit setting is covered by the same check without being listed here.
    assert len(RATE_LIMITS) >= 12


@pytest.mark.parametrize(("field", "value"), BAD)
def test_a_bad_value_is_refused_naming_its_variable(field: str, value: object) -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(**{field: value})  # type: ignore[arg-type]
    assert f"LIVEDESK_{field.upper()}" in str(caught.value)


def test_good_values_pass_and_are_normalised() -> None:
    settings = Settings(
        chat_rate_limit="5/second;100/hour",
        webhook_allow_networks="10.0.0.0/8, 192.168.0.0/16",
        trusted_proxies=[" 10.0.0.1 "],
        payment_currency="usd",
        mail_from="Hanami <desk@hanami.example>",
        public_url="https://desk.example/",
        database_url="postgresql+asyncpg://desk@db/livedesk",
        redis_url="redis://redis:6379/0",
    )
    assert (settings.payment_currency, settings.public_url) == ("USD", "https://desk.example")
    assert settings.trusted_proxies == ["10.0.0.1"]


def test_serve_refuses_to_start_and_says_which_variable(tmp_path: object) -> None:
    env = {
        **os.environ,
        "LIVEDESK_CHAT_RATE_LIMIT": "banana",
        "LIVEDESK_SECRET_KEY": "x" * 40,
        "LIVEDESK_DATA_DIR": str(tmp_path),
    }
    done = subprocess.run(
        [sys.executable, "-m", "livedesk", "serve", "--port", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert "LIVEDESK_CHAT_RATE_LIMIT" in done.stderr
    assert "Traceback" not in done.stderr
