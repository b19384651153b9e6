"""flask-jwt-extended's ``JWTManager``, verifying a token once per process instead of three times
per request.

To verify a token the library first decodes it twice without checking anything (its claims, then
its header), only to hand both to the decode-key loader, and then decodes it a third time to
verify it. Each parse walks every character of the token (PyJWT checks each segment's alphabet
in Python), which made token handling the largest single CPU cost of a request that does little
else (a coach report, a contact create). We register no decode-key loader: the key is always
``JWT_SECRET_KEY``, so the first two parses are only waste. This subclass skips them and runs the
library's own verifying decode with the same settings; anything else (a registered key loader,
an expired token, whose error must carry the header and claims) takes the library's own path.

A client sends the same access token with every request until it expires, so the verified
claims are also kept, per process, for the last ``VERIFIED_TOKENS_KEPT`` tokens: a later request
with the very same token string, under the very same decode settings (key, algorithms, issuer,
audience, leeway, CSRF value), gets a copy of them without another parse or signature check.
What depends on the time is checked again on every request: a kept token whose ``exp`` has passed
(with the leeway) is refused exactly as the library refuses it, by running the library's path.
Its ``nbf`` and ``iat`` were not in the future when it was verified and cannot move there
as time goes forward; if the clock went back since, the token is verified afresh. Only tokens
that verified are kept: a forged or malformed one is parsed and refused every time, as before,
so an attacker gains nothing from the cache but the cost of a dictionary lookup. Revocation is
not the cache's business: it is checked against the database on every request, as before
(``rapportnotes.security``). ``tests/test_tokenparse.py`` holds this path and the library's to
the same answers, the first time and every time after.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Hashable, Mapping
from datetime import timedelta
from functools import lru_cache
from types import MappingProxyType
from typing import Any

from flask_jwt_extended import JWTManager as _LibraryJWTManager
from flask_jwt_extended.config import config
from flask_jwt_extended.default_callbacks import default_decode_key_callback
from flask_jwt_extended.tokens import _decode_jwt
from jwt import ExpiredSignatureError

# Access tokens live 15 minutes by default: this covers every client active in that time for a
# busy program, at well under a kilobyte each.
VERIFIED_TOKENS_KEPT = 4096


class _Verified:
    """A token's claims as verified, and when (the wall clock, as PyJWT reads it)."""

    __slots__ = ("at", "claims", "nested")

    def __init__(self, claims: Mapping[str, Any], at: float) -> None:
        self.claims = MappingProxyType(dict(claims))
        self.at = at
        # Each request gets its own copy: a deep one if a caller could change a kept value.
        self.nested = any(isinstance(v, dict | list) for v in claims.values())

    def copy(self) -> dict[str, Any]:
        return copy.deepcopy(dict(self.claims)) if self.nested else dict(self.claims)


def _hashable(value: Any) -> Hashable:
    return tuple(value) if isinstance(value, list | tuple | set | frozenset) else value


@lru_cache(maxsize=VERIFIED_TOKENS_KEPT)
def _verify(encoded_token: str, csrf_value: str | None, settings: tuple) -> _Verified:
    """The library's verifying decode; raises as it does, and then nothing is kept."""
    algorithms, audience, identity_claim_key, issuer, leeway, secret, verify_aud, verify_sub = settings
    at = time.time()
    claims = _decode_jwt(
        algorithms=list(algorithms),
        allow_expired=False,
        audience=list(audience) if isinstance(audience, tuple) else audience,
        csrf_value=csrf_value,
        encoded_token=encoded_token,
        identity_claim_key=identity_claim_key,
        issuer=issuer,
        leeway=leeway,
        secret=secret,
        verify_aud=verify_aud,
        verify_sub=verify_sub,
    )
    return _Verified(claims, at)


def _still_valid(verified: _Verified, leeway: float) -> bool:
    """Whether what PyJWT checks against the clock would pass now, as it did at ``verified.at``."""
    now = time.time()
    if now < verified.at:  # the clock went back: nbf and iat are not known to hold any more
        return False
    exp = verified.claims.get("exp")
    return exp is None or int(exp) > now - leeway


def forget_verified_tokens() -> None:
    """Drop every kept token (tests; a process that changed its keys at run time)."""
    _verify.cache_clear()


class JWTManager(_LibraryJWTManager):
    def _decode_jwt_from_config(self, encoded_token: str, csrf_value: str | None = None,
                                allow_expired: bool = False) -> dict:
        if allow_expired or self._decode_key_callback is not default_decode_key_callback:
            return super()._decode_jwt_from_config(encoded_token, csrf_value, allow_expired)
        leeway = config.leeway
        settings = (
            _hashable(config.decode_algorithms),
            _hashable(config.decode_audience),
            config.identity_claim_key,
            config.decode_issuer,
            leeway,
            config.decode_key,
            config.decode_audience is not None,
            config.verify_sub,
        )
        try:
            verified = _verify(encoded_token, csrf_value, settings)
        except ExpiredSignatureError:  # raised again by the library, with what its handler reads
            return super()._decode_jwt_from_config(encoded_token, csrf_value, allow_expired)
        if not _still_valid(verified, leeway.total_seconds() if isinstance(leeway, timedelta) else leeway):
            # Expired since it was kept (or the clock went back): the library decides, and words it.
            return super()._decode_jwt_from_config(encoded_token, csrf_value, allow_expired)
        return verified.copy()
