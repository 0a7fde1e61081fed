"""argon2id password hashing: the stored form, verification, and rehash on stronger settings."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher

from livedesk.staff.passwords import hash_password, needs_rehash, verify_password

SECRET = "correct horse battery staple"


@pytest.fixture(scope="module")
def stored() -> str:
    return hash_password(SECRET)


def test_hash_is_salted_argon2id(stored: str) -> None:
    assert stored.startswith("$argon2id$")
    assert SECRET not in stored
    # A fresh salt each time: equal passwords do not give equal hashes.
    assert hash_password(SECRET) != stored


def test_verify_accepts_only_the_password(stored: str) -> None:
    assert verify_password(stored, SECRET) is True
    assert verify_password(stored, SECRET + " ") is False
    assert verify_password(stored, SECRET.upper()) is False
    assert verify_password(stored, "") is False


def test_unknown_account_never_verifies() -> None:
    # Login verifies against a dummy hash when the e-mail is unknown (same timing); that
    # must never count as a match, not even for the dummy's own password.
    assert verify_password(None, SECRET) is False
    assert verify_password(None, "livedesk-timing-equaliser") is False


def test_a_corrupt_hash_is_a_failed_login_not_a_crash() -> None:
    assert verify_password("not a hash", SECRET) is False
    assert verify_password("$argon2id$v=19$m=65536,t=3,p=4$broken", SECRET) is False


def test_weaker_hashes_are_flagged_for_rehash(stored: str) -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(SECRET)
    assert verify_password(weak, SECRET) is True
    assert needs_rehash(weak) is True
    assert needs_rehash(stored) is False
