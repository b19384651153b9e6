"""Login, refresh rotation with reuse detection, logout, /me and password change."""

from __future__ import annotations

from rapportnotes.services import passwords
from tests.support.problems import assert_problem

LOGIN = "/api/v1/auth/login"


def login(client, email, password):
    return client.post(LOGIN, json={"email": email, "password": password})


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def test_login_success_shape_and_audit(client, world):
    org = world.org()
    u = world.user(org, "coach", login=False)
    r = login(client, u.email.upper(), u.password)
    body = r.get_json()
    assert r.status_code == 200 and set(body) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert body["token_type"] == "Bearer" and body["expires_in"] == 900
    assert world.audit_actions(org) == [("auth.login", 200)]


def test_wrong_password_unknown_email_and_inactive_user_look_the_same(client, world):
    org = world.org()
    u = world.user(org, "coach", login=False)
    off = world.user(org, "coach", is_active=False, login=False)
    bodies = []
    for email, pw in (
        (u.email, "wrong-password-123"),
        ("nobody@example.org", "whatever-123456"),
        (off.email, off.password),
    ):
        body = assert_problem(login(client, email, pw), 401)
        bodies.append((body["title"], body["detail"], body["type"]))
    assert len(set(bodies)) == 1
    # Failures for known emails are audited; the unknown one belongs to no organisation.
    assert world.audit_actions(org) == [("auth.login", 401), ("auth.login", 401)]


def test_unknown_email_still_costs_one_password_verification(client, world, monkeypatch):
    calls = []
    real = passwords.verify_password

    def spy(stored, pw):
        calls.append(stored)
        return real(stored, pw)

    monkeypatch.setattr("rapportnotes.api.auth.passwords.verify_password", spy)
    assert_problem(login(client, "ghost@example.org", "some-password-1"), 401)
    assert calls == [None]  # verified against the dummy hash


def test_login_rehashes_when_parameters_change(client, world):
    org = world.org()
    u = world.user(org, "coach", login=False)
    from sqlalchemy import select

    from rapportnotes.models import User

    before = world.run(lambda s: s.scalar(select(User.password_hash).where(User.email == u.email)))
    passwords.configure(time_cost=2, memory_cost=2048)
    try:
        assert login(client, u.email, u.password).status_code == 200
    finally:
        passwords.configure(time_cost=1, memory_cost=1024)
    after = world.run(lambda s: s.scalar(select(User.password_hash).where(User.email == u.email)))
    assert after != before and "t=2" in after and "m=2048" in after


def test_a_rehash_at_login_never_undoes_a_reset_made_meanwhile(client, world, monkeypatch):
    """Found by a race pass: the login rehashed over the row it had read, so an admin's reset
    committed in between was lost and the old password worked again."""
    import uuid

    from sqlalchemy import select

    from rapportnotes.models import User

    org = world.org()
    u = world.user(org, "coach", login=False)
    real = passwords.hash_password
    reset = real("the-admins-reset-password-1")

    def reset_meanwhile(password):
        world.run(lambda s: setattr(s.get(User, (uuid.UUID(org), uuid.UUID(u.id))), "password_hash", reset))
        return real(password)

    passwords.configure(time_cost=2, memory_cost=2048)
    monkeypatch.setattr(passwords, "hash_password", reset_meanwhile)
    try:
        assert login(client, u.email, u.password).status_code == 200
    finally:
        monkeypatch.undo()
        passwords.configure(time_cost=1, memory_cost=1024)
    assert world.run(lambda s: s.scalar(select(User.password_hash).where(User.email == u.email))) == reset
    assert_problem(login(client, u.email, u.password), 401)
    assert login(client, u.email, "the-admins-reset-password-1").status_code == 200


def test_refresh_rotates_and_reuse_revokes_the_family(client, world):
    org = world.org()
    u = world.user(org, "coach", login=False)
    first = login(client, u.email, u.password).get_json()
    r = client.post("/api/v1/auth/refresh", headers=bearer(first["refresh_token"]))
    assert r.status_code == 200
    second = r.get_json()
    assert second["refresh_token"] != first["refresh_token"]
    assert client.get("/api/v1/me", headers=bearer(second["access_token"])).status_code == 200
    # The spent token is presented again: 401, and its descendant dies too.
    assert_problem(client.post("/api/v1/auth/refresh", headers=bearer(first["refresh_token"])), 401)
    assert_problem(client.post("/api/v1/auth/refresh", headers=bearer(second["refresh_token"])), 401)
    assert ("auth.refresh_reuse", 401) in world.audit_actions(org)
    # Another login is a separate family and is unaffected.
    other = login(client, u.email, u.password).get_json()
    assert client.post("/api/v1/auth/refresh", headers=bearer(other["refresh_token"])).status_code == 200


def test_token_kinds_are_not_interchangeable(client, world):
    org = world.org()
    u = world.user(org, "coach")
    body = assert_problem(client.get("/api/v1/me", headers=bearer(u.refresh_token)), 401)
    assert "msg" not in body
    assert_problem(client.post("/api/v1/auth/refresh", headers=bearer(u.access_token)), 401)


def test_logout_revokes_access_and_given_refresh_token(client, world):
    org = world.org()
    u = world.user(org, "coach")
    r = client.post("/api/v1/auth/logout", headers=u.headers, json={"refresh_token": u.refresh_token})
    assert r.status_code == 204
    assert r.data == b"" and "Content-Type" not in r.headers  # no content, no content type
    assert_problem(client.get("/api/v1/me", headers=u.headers), 401)
    assert_problem(client.post("/api/v1/auth/refresh", headers=bearer(u.refresh_token)), 401)
    assert ("auth.logout", 204) in world.audit_actions(org)


def test_logout_refuses_a_refresh_token_that_is_not_yours(client, world):
    org = world.org()
    a, b = world.user(org, "coach"), world.user(org, "coach")
    for bad in (b.refresh_token, "garbage", a.access_token):
        assert_problem(
            client.post("/api/v1/auth/logout", headers=a.headers, json={"refresh_token": bad}),
            422,
            "refresh_token",
        )
    assert client.post("/api/v1/auth/refresh", headers=bearer(b.refresh_token)).status_code == 200
    assert client.get("/api/v1/me", headers=a.headers).status_code == 200


def test_password_change(client, world):
    org = world.org()
    u = world.user(org, "coach")
    other_session = login(client, u.email, u.password).get_json()
    url = "/api/v1/me/password"
    assert_problem(
        client.post(
            url,
            headers=u.headers,
            json={"current_password": "nope-nope-nope", "new_password": "a-brand-new-password"},
        ),
        401,
    )
    assert login(client, u.email, u.password).status_code == 200  # nothing changed
    for bad in ("short", "x" * 257, "has\u0000nul-in-it-xx"):
        assert_problem(
            client.post(url, headers=u.headers, json={"current_password": u.password, "new_password": bad}),
            422,
            "new_password",
        )
    r = client.post(
        url, headers=u.headers, json={"current_password": u.password, "new_password": "a-brand-new-password"}
    )
    assert r.status_code == 200
    fresh = r.get_json()
    assert client.get("/api/v1/me", headers=bearer(fresh["access_token"])).status_code == 200
    for old in (u.access_token, other_session["access_token"]):
        assert_problem(client.get("/api/v1/me", headers=bearer(old)), 401)
    for old in (u.refresh_token, other_session["refresh_token"]):
        assert_problem(client.post("/api/v1/auth/refresh", headers=bearer(old)), 401)
    assert_problem(login(client, u.email, u.password), 401)
    assert login(client, u.email, "a-brand-new-password").status_code == 200


def test_role_and_organisation_come_from_the_database(client, world):
    org = world.org()
    admin = world.user(org, "admin")
    keeper = world.user(org, "admin")
    assert client.get("/api/v1/users", headers=admin.headers).status_code == 200
    r = client.patch(f"/api/v1/users/{admin.id}", json={"role": "coach"}, headers=keeper.headers)
    assert r.status_code == 200
    assert_problem(client.get("/api/v1/users", headers=admin.headers), 403)  # same token, new role


def test_the_bearer_scheme_is_case_insensitive(client, world):
    """RFC 9110 section 11.1: ``bearer``, ``BEARER`` and ``Bearer`` name the same scheme."""
    org = world.org()
    u = world.user(org, "coach")
    for scheme in ("bearer", "BEARER", "bEaReR"):
        r = client.get("/api/v1/me", headers={"Authorization": f"{scheme} {u.access_token}"})
        assert r.status_code == 200, (scheme, r.get_json())
    assert_problem(client.get("/api/v1/me", headers={"Authorization": f"Basic {u.access_token}"}), 401)


def test_an_authorization_list_with_a_blank_item_is_a_401_not_a_500(client, world):
    """flask-jwt-extended reads ``s.split()[0]`` of every comma-separated item: a blank one
    (``, , x``) raised IndexError, a 500 on every authenticated endpoint."""
    u = world.user(world.org(), "coach")
    for header in (", , x", "x, , y", ",\t,"):
        assert_problem(client.get("/api/v1/me", headers={"Authorization": header}), 401)
        r = client.post("/api/v1/me/password", json={}, headers={"Authorization": header})
        assert_problem(r, 401)
    r = client.get("/api/v1/me", headers={"Authorization": f", , Bearer {u.access_token}"})
    assert r.status_code == 200
