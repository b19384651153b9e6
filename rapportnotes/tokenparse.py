"""flask-jwt-extended's ``JWTManager``, parsing a token once to verify it instead of three times.

To verify a token the library first decodes it twice without checking anything (its claims, then
its header), only to hand both to the decode-key loader, and then decodes it a third time to
verify it. Each parse walks every character of the token (PyJWT checks each segment's alphabet
in Python), which made token handling the largest single CPU cost of a request that does little
else (a coach report, a contact create). We register no decode-key loader: the key is always
``JWT_SECRET_KEY``, so the first two parses are only waste. This subclass skips them and runs the
library's own verifying decode with the same settings; anything else (a registered key loader,
an expired token, whose error must carry the header and claims) takes the library's own path.
``tests/test_tokenparse.py`` holds the two paths to the same answers.
"""

from __future__ import annotations

from flask_jwt_extended import JWTManager as _LibraryJWTManager
from flask_jwt_extended.config import config
from flask_jwt_extended.default_callbacks import default_decode_key_callback
from flask_jwt_extended.tokens import _decode_jwt
from jwt import ExpiredSignatureError


class JWTManager(_LibraryJWTManager):
    def _decode_jwt_from_config(self, encoded_token: str, csrf_value: str | None = None,
                                allow_expired: bool = False) -> dict:
        if allow_expired or self._decode_key_callback is not default_decode_key_callback:
            return super()._decode_jwt_from_config(encoded_token, csrf_value, allow_expired)
        try:
            return _decode_jwt(
                algorithms=config.decode_algorithms,
                allow_expired=False,
                audience=config.decode_audience,
                csrf_value=csrf_value,
                encoded_token=encoded_token,
                identity_claim_key=config.identity_claim_key,
                issuer=config.decode_issuer,
                leeway=config.leeway,
                secret=config.decode_key,
                verify_aud=config.decode_audience is not None,
                verify_sub=config.verify_sub,
            )
        except ExpiredSignatureError:  # raised again by the library, with what its handler reads
            return super()._decode_jwt_from_config(encoded_token, csrf_value, allow_expired)
