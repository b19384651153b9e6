"""The one-parse token decode (``rapportnotes.tokenparse``) gives exactly the library's answers:
the same claims for a good token, the same exception for every bad one, and for an expired one
the header and claims the library's handler reads."""

from __future__ import annotations

import time
import uuid

import jwt
import pytest
from flask_jwt_extended import JWTManager as LibraryJWTManager

from rapportnotes.extensions import jwt as manager
from rapportnotes.tokenparse import JWTManager
from tests.conftest import TEST_SECRET

ISS, AUD = "rapportnotes", "rapportnotes-api"


def _claims(**over):
    now = int(time.time())
    c = {"sub": str(uuid.uuid4()), "iat": now, "nbf": now, "exp": now + 600, "jti": str(uuid.uuid4()),
         "type": "access", "fresh": False, "iss": ISS, "aud": AUD, "gen": 0, "org": str(uuid.uuid4())}
    c.update(over)
    return {k: v for k, v in c.items() if v is not None}


def _token(key=TEST_SECRET, alg="HS256", headers=None, **over):
    return jwt.encode(_claims(**over), key, algorithm=alg, headers=headers)


TOKENS = {
    "good": _token(),
    "refresh": _token(type="refresh"),
    "no-type-jti-fresh": _token(type=None, jti=None, fresh=None),
    "expired": _token(exp=int(time.time()) - 3600),
    "not-yet-valid": _token(nbf=int(time.time()) + 3600),
    "wrong-key": _token(key="another-secret-key-that-is-long-enough-000000"),
    "wrong-audience": _token(aud="someone-else"),
    "wrong-issuer": _token(iss="someone-else"),
    "no-subject": _token(sub=None),
    "subject-not-text": _token(sub=12),
    "other-algorithm": _token(key=TEST_SECRET * 2, alg="HS512"),
    "unsigned": jwt.encode(_claims(), None, algorithm="none"),
    "extra-header": _token(headers={"kid": "k1"}),
    "padded": _token() + "=",
    "junk": "not.a.token",
    "two-parts": "abc.def",
    "bad-alphabet": "!!!!." + _token().split(".", 1)[1],
}


def _outcome(fn, token):
    try:
        return "ok", fn(token)
    except Exception as err:  # the exception's type is what the library's handlers dispatch on
        extra = (getattr(err, "jwt_header", None), getattr(err, "jwt_data", None))
        return type(err), extra


@pytest.mark.parametrize("name", list(TOKENS))
def test_the_one_parse_decode_answers_as_the_library_does(app, name):
    assert isinstance(manager, JWTManager)
    token = TOKENS[name]
    with app.app_context():
        ours = _outcome(manager._decode_jwt_from_config, token)
        library = _outcome(lambda t: LibraryJWTManager._decode_jwt_from_config(manager, t), token)
    assert ours == library
    if name == "expired":  # the handler reads both: they must be there
        assert ours[0] is jwt.ExpiredSignatureError and all(ours[1])


def test_a_registered_key_loader_takes_the_librarys_path(app, monkeypatch):
    """With a decode-key loader the unverified parses are the loader's input: not skipped."""
    seen = []

    def loader(header, claims):
        seen.append(claims["sub"])
        return TEST_SECRET

    monkeypatch.setattr(manager, "_decode_key_callback", loader)
    with app.app_context():
        decoded = manager._decode_jwt_from_config(TOKENS["good"])
    assert seen == [decoded["sub"]]
