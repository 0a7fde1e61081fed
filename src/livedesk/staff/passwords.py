"""Password hashing with argon2id (argon2-cffi's defaults follow RFC 9106)."""

from __future__ import annotations

from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()

# Verifying against this when the account does not exist keeps the response time the same,
# so login timing does not tell which e-mail addresses have accounts.
_DUMMY_HASH = _hasher.hash("livedesk-timing-equaliser")


@dataclass(frozen=True)
class Checked:
    valid: bool
    rehashed: str | None = None  # a fresh hash to store, when the stored one is weaker than today's


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def check_password(password_hash: str | None, password: str) -> Checked:
    """Verify, and rehash when the stored parameters are out of date: both argon2, so both in
    the one worker-thread call the sign-in makes (never on the event loop)."""
    if not verify_password(password_hash, password):
        return Checked(valid=False)
    assert password_hash is not None  # verify_password is False without a stored hash
    return Checked(valid=True, rehashed=hash_password(password) if needs_rehash(password_hash) else None)


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)
