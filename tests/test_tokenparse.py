"""The one-parse token decode (``rapportnotes.tokenparse``) gives exactly the library's answers:
the same claims for a good token, the same exception for every bad one, and for an expired one
the header and claims the library's handler reads; and it gives them again from the tokens it
keeps verified, until the clock says otherwise."""

from __future__ import annotations

import time
import uuid
from datetime import datetime

import jwt
import jwt.api_jwt
import pytest
from flask_jwt_extended import JWTManager as LibraryJWTManager

from rapportnotes import tokenparse
from rapportnotes.extensions import jwt as manager
from rapportnotes.tokenparse import JWTManager, forget_verified_tokens
from tests.conftest import TEST_SECRET
from tests.support.problems import assert_problem

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


def _library(token):
    return LibraryJWTManager._decode_jwt_from_config(manager, token)


@pytest.mark.parametrize("name", list(TOKENS))
def test_the_one_parse_decode_answers_as_the_library_does(app, name):
    """Verified afresh, then again (a good token from the kept ones): the library's answer both
    times."""
    assert isinstance(manager, JWTManager)
    token = TOKENS[name]
    forget_verified_tokens()
    with app.app_context():
        library = _outcome(_library, token)
        fresh = _outcome(manager._decode_jwt_from_config, token)
        again = _outcome(manager._decode_jwt_from_config, token)
    assert fresh == library and again == library
    if name == "expired":  # the handler reads both: they must be there
        assert fresh[0] is jwt.ExpiredSignatureError and all(fresh[1])


@pytest.fixture()
def decodes(monkeypatch):
    """How many times ``tokenparse`` ran the library's verifying decode."""
    calls = []
    real = tokenparse._decode_jwt

    def counting(**kwargs):
        calls.append(kwargs["encoded_token"])
        return real(**kwargs)

    forget_verified_tokens()
    monkeypatch.setattr(tokenparse, "_decode_jwt", counting)
    yield calls
    forget_verified_tokens()


def _shift_clocks(monkeypatch, seconds: float) -> None:
    """Move the wall clock as both this module and PyJWT read it."""
    real_time = time.time

    class Shifted(datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime.fromtimestamp(real_time() + seconds, tz)

    monkeypatch.setattr(tokenparse.time, "time", lambda: real_time() + seconds)
    monkeypatch.setattr(jwt.api_jwt, "datetime", Shifted)


def test_a_token_is_verified_once_and_then_served_from_the_kept_ones(app, decodes):
    with app.app_context():
        first = manager._decode_jwt_from_config(TOKENS["good"])
        second = manager._decode_jwt_from_config(TOKENS["good"])
    assert decodes == [TOKENS["good"]] and second == first


def test_a_bad_token_is_never_kept(app, decodes):
    with app.app_context():
        for _ in range(2):
            with pytest.raises(jwt.InvalidSignatureError):
                manager._decode_jwt_from_config(TOKENS["wrong-key"])
    assert decodes == [TOKENS["wrong-key"]] * 2


def test_each_request_gets_its_own_copy_of_the_claims(app, decodes):
    token = _token(roles=["coach"])  # a nested value too
    with app.app_context():
        first = manager._decode_jwt_from_config(token)
        first["sub"] = "someone else"
        first["roles"].append("admin")
        second = manager._decode_jwt_from_config(token)
    assert second["sub"] != "someone else" and second["roles"] == ["coach"] and len(decodes) == 1


def test_a_kept_token_that_has_since_expired_is_refused_as_the_library_refuses_it(app, decodes, monkeypatch):
    token = _token(exp=int(time.time()) + 60)
    with app.app_context():
        manager._decode_jwt_from_config(token)
        _shift_clocks(monkeypatch, 120)
        ours = _outcome(manager._decode_jwt_from_config, token)
        library = _outcome(_library, token)
    assert ours == library and ours[0] is jwt.ExpiredSignatureError and all(ours[1])


def test_within_the_leeway_a_kept_token_is_still_good(app, decodes, monkeypatch):
    token = _token(exp=int(time.time()) + 60)
    monkeypatch.setitem(app.config, "JWT_DECODE_LEEWAY", 120)
    with app.app_context():
        manager._decode_jwt_from_config(token)
        _shift_clocks(monkeypatch, 90)
        assert manager._decode_jwt_from_config(token)["exp"] == _library(token)["exp"]
    assert len(decodes) == 1


def test_if_the_clock_went_back_the_token_is_verified_afresh(app, decodes, monkeypatch):
    """Its nbf and iat held when it was kept; with the clock earlier than that, they may not."""
    now = int(time.time())
    token = _token(iat=now, nbf=now)
    with app.app_context():
        manager._decode_jwt_from_config(token)
        _shift_clocks(monkeypatch, -3600)
        ours = _outcome(manager._decode_jwt_from_config, token)
        library = _outcome(_library, token)
    assert ours == library and ours[0] is jwt.ImmatureSignatureError


@pytest.mark.parametrize(("settings", "error"), [
    ({"JWT_SECRET_KEY": "another-secret-key-that-is-long-enough-000000"}, jwt.InvalidSignatureError),
    ({"JWT_DECODE_AUDIENCE": "someone-else"}, jwt.InvalidAudienceError),
    ({"JWT_DECODE_ISSUER": "someone-else"}, jwt.InvalidIssuerError),
    ({"JWT_ALGORITHM": "HS512", "JWT_DECODE_ALGORITHMS": ["HS512"]}, jwt.InvalidAlgorithmError),
])
def test_a_kept_token_is_not_served_under_other_decode_settings(app, decodes, monkeypatch, settings, error):
    with app.app_context():
        manager._decode_jwt_from_config(TOKENS["good"])
        for key, value in settings.items():
            monkeypatch.setitem(app.config, key, value)
        ours = _outcome(manager._decode_jwt_from_config, TOKENS["good"])
        library = _outcome(_library, TOKENS["good"])
    assert ours == library and ours[0] is error and len(decodes) == 2


def test_a_kept_token_still_ends_at_logout_and_at_deactivation(client, world, decodes):
    """Revocation is the database's to check on every request, the hot paths' one statement
    included: a token verified (and kept) before is refused after logout, and a user's tokens
    after they are deactivated."""
    org = world.org()
    coach, other, admin = world.user(org, "coach"), world.user(org, "coach"), world.user(org, "admin")
    contact = {"peer_ref": "P-1", "occurred_at": "2026-01-05T10:00:00Z", "duration_minutes": 30,
               "modality": "phone"}
    report = f"/api/v1/coaches/{coach.id}/report?from=2026-01-01&to=2026-01-31"
    for who in (coach, other):
        for _ in range(2):
            assert client.get("/api/v1/me", headers=who.headers).status_code == 200
            assert client.post("/api/v1/contacts", headers=who.headers, json=contact).status_code == 201
        assert client.get(f"/api/v1/coaches/{who.id}/report", headers=who.headers).status_code == 200
    assert client.post("/api/v1/auth/logout", headers=coach.headers).status_code == 204
    off = client.patch(f"/api/v1/users/{other.id}", headers=admin.headers, json={"is_active": False})
    assert off.status_code == 200
    for who in (coach, other):
        assert_problem(client.get("/api/v1/me", headers=who.headers), 401)
        assert_problem(client.post("/api/v1/contacts", headers=who.headers, json=contact), 401)
        assert_problem(client.get(report, headers=who.headers), 401)
    assert len(set(decodes)) >= 2 and len(decodes) < 12  # the tokens were kept, not re-verified


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
