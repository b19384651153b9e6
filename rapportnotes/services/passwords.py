"""Password hashing with argon2id, and the checks that keep login timing flat."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_LENGTH = 12
MAX_LENGTH = 256

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
_dummy_hash: str | None = None


def configure(*, time_cost: int | None = None, memory_cost: int | None = None) -> None:
    """Set argon2 cost (tests use a cheap one). Hashes made with other costs get rehashed."""
    global _hasher, _dummy_hash
    defaults = PasswordHasher()
    _hasher = PasswordHasher(
        time_cost=time_cost or defaults.time_cost,
        memory_cost=memory_cost or defaults.memory_cost,
    )
    _dummy_hash = None


def _dummy() -> str:
    """Verified against when the email is unknown, so every failed login costs one argon2
    verification whatever the reason (no timing oracle for which emails exist)."""
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = _hasher.hash("rapportnotes-dummy-password-for-timing")
    return _dummy_hash


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """Check ``password``; with no stored hash, burn the same time and answer False."""
    try:
        return _hasher.verify(stored_hash or _dummy(), password) and stored_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
    except UnicodeEncodeError:  # a lone surrogate: no stored password can contain one
        _hasher.verify(_dummy(), "rapportnotes-dummy-password-for-timing")  # the same time
        return False


def needs_rehash(stored_hash: str) -> bool:
    """True when the hash was made with older parameters and should be upgraded at login."""
    return _hasher.check_needs_rehash(stored_hash)


def password_problems(password: str) -> list[str]:
    problems = []
    if len(password) < MIN_LENGTH:
        problems.append(f"Must be at least {MIN_LENGTH} characters.")
    if len(password) > MAX_LENGTH:
        problems.append(f"Must be at most {MAX_LENGTH} characters.")
    return problems
