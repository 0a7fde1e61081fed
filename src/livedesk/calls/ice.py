"""ICE servers for browsers: STUN/TURN from settings only — never a public default — with
time-limited TURN credentials in the TURN REST scheme that coturn's use-auth-secret checks:
username "<expiry>:<user>", credential base64(HMAC-SHA1(secret, username))."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any

from livedesk.settings import Settings


def ice_servers(settings: Settings, user: str, now: float | None = None) -> list[dict[str, Any]]:
    servers: list[dict[str, Any]] = []
    if settings.stun_urls:
        servers.append({"urls": list(settings.stun_urls)})
    secret = settings.turn_secret.get_secret_value()
    if settings.turn_urls and secret:
        expiry = int((time.time() if now is None else now) + settings.turn_ttl_seconds)
        username = f"{expiry}:{user}"
        digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
        servers.append(
            {
                "urls": list(settings.turn_urls),
                "username": username,
                "credential": base64.b64encode(digest).decode(),
                "credentialType": "password",
            }
        )
    return servers
