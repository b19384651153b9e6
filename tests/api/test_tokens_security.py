"""Forged, incomplete and stale tokens: every one is a 401 problem with a Bearer challenge."""

from __future__ import annotations

import time
import uuid

import jwt
import pytest

from tests.conftest import TEST_SECRET
from tests.support.problems import assert_problem

ISS, AUD = "rapportnotes", "rapportnotes-api"


def claims(user, **over):
    now = int(time.time())
    c = {
        "sub": user.id,
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "jti": uuid.uuid4().hex,
        "type": "access",
        "fresh": False,
        "iss": ISS,
        "aud": AUD,
        "gen": 0,
        "org": user.org_id,
    }
    c.update(over)
    return {k: v for k, v in c.items() if v is not None}


def token(payload, key=TEST_SECRET, alg="HS256"):
    return jwt.encode(payload, key, algorithm=alg)


def get_me(client, tok):
    return client.get("/api/v1/me", headers={"Authorization": f"Bearer {tok}"})


def test_a_well_formed_forged_token_with_the_right_key_works(client, world):
    """Control: the crafted tokens below differ from this one in exactly one way."""
    org = world.org()
    u = world.user(org, "coach")
    assert get_me(client, token(claims(u))).status_code == 200


@pytest.mark.parametrize("missing", ["exp", "iat", "jti", "type", "sub", "gen", "iss", "aud", "org"])
def test_tokens_missing_a_required_claim_are_refused(client, world, missing):
    org = world.org()
    u = world.user(org, "coach")
    body = assert_problem(get_me(client, token(claims(u, **{missing: None}))), 401)
    assert "msg" not in body


@pytest.mark.parametrize(
    "over",
    [
        {"iss": "someone-else"},
        {"aud": "another-api"},
        {"exp": int(time.time()) - 10},
        {"sub": 12345},
        {"sub": str(uuid.uuid4())},
        {"sub": "not-a-uuid"},
        {"org": str(uuid.uuid4())},
        {"org": "not-a-uuid"},
        {"gen": 5},
        {"gen": "0"},
        {"type": "refresh"},
        {"nbf": int(time.time()) + 3600},
        # signed with our key but shaped as we never issue them
        {"type": "id"},
        {"gen": False},
        {"exp": str(int(time.time()) + 600)},
        {"exp": time.time() + 600.5},
        {"exp": 10**20},
        {"jti": "a\u0000b"},
        {"jti": "x" * 65},
        {"org": 12345},
    ],
)
def test_tokens_with_a_wrong_claim_are_refused(client, world, over):
    org = world.org()
    u = world.user(org, "coach")
    r = get_me(client, token(claims(u, **over)))
    assert_problem(r, 401)
    assert 'error="invalid_token"' in r.headers["WWW-Authenticate"]


def test_wrong_key_alg_none_and_other_algorithms_are_refused(client, world):
    org = world.org()
    u = world.user(org, "coach")
    c = claims(u)
    unsigned = jwt.encode(c, None, algorithm="none")
    for tok in (
        token(c, key="another-secret-that-is-long-enough-000000000"),
        unsigned,
        token(c, key=TEST_SECRET * 2, alg="HS512"),
        unsigned.rstrip(".") + ".",
        token(c)[:-4] + "AAAA",
    ):
        assert_problem(get_me(client, tok), 401)


@pytest.mark.parametrize("header", ["Bearer", "Bearer ", "Basic abc", "Bearer a.b.c", "Bearer x y", "token"])
def test_garbage_authorization_headers(client, header):
    r = client.get("/api/v1/me", headers={"Authorization": header})
    assert_problem(r, 401)


def test_missing_header_has_a_plain_challenge(client):
    r = client.get("/api/v1/me")
    assert_problem(r, 401)
    assert r.headers["WWW-Authenticate"] == "Bearer"


def test_inactive_users_tokens_stop_working_at_once(client, world):
    org = world.org()
    admin = world.user(org, "admin")
    u = world.user(org, "coach")
    assert (
        client.patch(f"/api/v1/users/{u.id}", json={"is_active": False}, headers=admin.headers).status_code
        == 200
    )
    assert_problem(client.get("/api/v1/me", headers=u.headers), 401)
    assert_problem(
        client.post("/api/v1/auth/refresh", headers={"Authorization": f"Bearer {u.refresh_token}"}), 401
    )


def test_another_orgs_user_token_sees_only_its_own_org(client, cast):
    r = client.get("/api/v1/me", headers=cast.admin_b.headers)
    assert r.get_json()["organisation"]["id"] == cast.org_b
    assert_problem(client.get(f"/api/v1/users/{cast.coach.id}", headers=cast.admin_b.headers), 404)
