"""Users (admin only): create, list, read, update; resets and deactivation end sessions."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from rapportnotes.models import AuditEvent, TeamMember, User
from tests.support import paging
from tests.support.problems import assert_problem

URL = "/api/v1/users"
GOOD_PASSWORD = "a-brand-new-password-42"
USER_KEYS = {"id", "email", "display_name", "role", "is_active", "created_at"}


@pytest.fixture()
def admin(world):
    """A lone admin: cheaper than the full cast for input-validation tests."""
    return world.user(world.org(), "admin")


def body(**over):
    b = {"email": "New.Person@Example.ORG", "display_name": "New Person", "role": "coach",
         "password": GOOD_PASSWORD}
    b.update(over)
    return {k: v for k, v in b.items() if v is not ...}


def stored_user(world, org_id, user_id):
    return world.run(lambda s: _row(s.get(User, (uuid.UUID(org_id), uuid.UUID(user_id)))))


def _row(u):
    return None if u is None else {c: getattr(u, c) for c in (
        "email", "display_name", "role", "is_active", "password_hash", "token_generation")}


def login(client, email, password):
    return client.post("/api/v1/auth/login", json={"email": email, "password": password})


# --- create -------------------------------------------------------------------------------

def test_admin_creates_a_user_who_can_log_in(client, cast, world):
    r = client.post(URL, json=body(), headers=cast.admin.headers)
    assert r.status_code == 201, r.get_json()
    out = r.get_json()
    assert set(out) == USER_KEYS
    assert out["email"] == "new.person@example.org"
    assert (out["display_name"], out["role"], out["is_active"]) == ("New Person", "coach", True)
    assert out["created_at"].endswith("Z")
    assert r.headers["Location"] == f"{URL}/{out['id']}"
    text = r.get_data(as_text=True)
    assert GOOD_PASSWORD not in text and "argon2" not in text and "hash" not in text
    row = stored_user(world, cast.org, out["id"])
    assert row["email"] == "new.person@example.org"
    assert row["password_hash"].startswith("$argon2id$") and GOOD_PASSWORD not in row["password_hash"]
    assert login(client, "NEW.person@example.org", GOOD_PASSWORD).status_code == 200
    assert client.get(r.headers["Location"], headers=cast.admin.headers).get_json() == out


@pytest.mark.parametrize("password", ["x" * 12, "é" * 256])
def test_password_length_bounds_are_inclusive(client, admin, password):
    r = client.post(URL, json=body(password=password), headers=admin.headers)
    assert r.status_code == 201
    assert login(client, "new.person@example.org", password).status_code == 200


def test_inactive_user_can_be_created_and_cannot_log_in(client, cast):
    r = client.post(URL, json=body(is_active=False), headers=cast.admin.headers)
    assert r.status_code == 201 and r.get_json()["is_active"] is False
    assert_problem(login(client, "new.person@example.org", GOOD_PASSWORD), 401)


@pytest.mark.parametrize("which", ["same_org", "other_org"])
def test_email_is_unique_across_the_deployment_case_insensitively(client, cast, world, which):
    taken = cast.coach.email if which == "same_org" else cast.coach_b.email
    before = world.count(User)
    r = client.post(URL, json=body(email=taken.upper()), headers=cast.admin.headers)
    assert_problem(r, 409, "email")
    assert world.count(User) == before


BAD_CREATE = [
    ("email", {"email": "not-an-email"}),
    ("email", {"email": ""}),
    ("email", {"email": "a@b"}),
    ("email", {"email": "x" * 250 + "@b.org"}),
    ("email", {"email": 42}),
    ("email", {"email": None}),
    ("email", {"email": ...}),
    ("role", {"role": "owner"}),
    ("role", {"role": "Admin"}),
    ("role", {"role": None}),
    ("role", {"role": ...}),
    ("password", {"password": "x" * 11}),
    ("password", {"password": "x" * 257}),
    ("password", {"password": ""}),
    ("password", {"password": 123456789012345}),
    ("password", {"password": "twelve-chars\x00-nul"}),
    ("password", {"password": ...}),
    ("display_name", {"display_name": ""}),
    ("display_name", {"display_name": "x" * 201}),
    ("display_name", {"display_name": "bell\x07char"}),
    ("display_name", {"display_name": "nul\x00char"}),
    ("display_name", {"display_name": "new\nline"}),
    ("display_name", {"display_name": "lone \ud800 surrogate"}),
    ("display_name", {"display_name": 7}),
    ("display_name", {"display_name": ...}),
    ("is_active", {"is_active": "true"}),
    ("is_active", {"is_active": 1}),
    ("is_active", {"is_active": None}),
    ("id", {"id": str(uuid.uuid4())}),
    ("organisation_id", {"organisation_id": str(uuid.uuid4())}),
    ("password_hash", {"password_hash": "$argon2id$x"}),
    ("token_generation", {"token_generation": 0}),
    ("created_at", {"created_at": "2025-01-01T00:00:00Z"}),
]


@pytest.mark.parametrize(("field", "over"), BAD_CREATE,
                         ids=[f"{f}-{i}" for i, (f, _) in enumerate(BAD_CREATE)])
def test_every_bad_create_is_422_naming_the_field_and_stores_nothing(client, admin, world, field, over):
    before = world.count(User)
    r = client.post(URL, json=body(**over), headers=admin.headers)
    assert_problem(r, 422, field)
    assert world.count(User) == before
    assert world.audit_actions(admin.org_id) == []


def test_body_must_be_a_json_object(client, admin, world):
    before = world.count(User)
    h = admin.headers
    assert_problem(client.post(URL, data="{", headers={**h, "Content-Type": "application/json"}), 400)
    assert_problem(client.post(URL, data="email=x", headers={**h, "Content-Type": "text/plain"}), 415)
    assert_problem(client.post(URL, json=[body()], headers=h), 422)
    assert world.count(User) == before


def test_a_failing_audit_insert_fails_the_request_and_stores_no_user(client, cast, world, monkeypatch):
    from rapportnotes.api import users as users_api

    def broken(session, *args, **kwargs):
        raise RuntimeError("audit store unavailable")

    monkeypatch.setattr(users_api, "record_event", broken)
    before = world.count(User)
    r = client.post(URL, json=body(), headers=cast.admin.headers)
    problem = assert_problem(r, 500)
    assert "audit store" not in r.get_data(as_text=True) and problem["request_id"]
    assert world.count(User) == before


def test_an_invalid_audit_row_rolls_the_user_back(client, cast, world, monkeypatch):
    from rapportnotes.api import users as users_api

    def invalid_row(session, actor, action, **kwargs):
        session.add(AuditEvent(organisation_id=actor.organisation_id, actor_type="user",
                               action=None, status=201))  # NOT NULL violation at commit

    monkeypatch.setattr(users_api, "record_event", invalid_row)
    before = world.count(User)
    r = client.post(URL, json=body(), headers=cast.admin.headers)
    assert_problem(r, 500)
    text = r.get_data(as_text=True).lower()
    assert "insert" not in text and "audit_events" not in text and "null" not in text
    assert world.count(User) == before
    assert world.count(User, email="new.person@example.org") == 0


# --- list ---------------------------------------------------------------------------------

def _walk(client, headers, query=""):
    items, pages = paging.walk(client, f"{URL}?{query}", headers)
    return [u["email"] for u in items], pages


def test_listing_covers_every_user_of_the_org_exactly_once(client, cast, world):
    for i in range(7):
        world.user(cast.org, "coach", email=f"zz{i}@example.org", login=False)
    expected = sorted(world.run(lambda s: [u.email for u in s.scalars(
        select(User).where(User.organisation_id == uuid.UUID(cast.org)))]))
    n = len(expected)
    assert n == 13  # the cast's six and seven more
    for limit in (1, 3, 12, 13, 200):
        seen, pages = _walk(client, cast.admin.headers, f"limit={limit}")
        assert seen == expected, limit
        assert pages == -(-n // limit)  # no empty trailing page
    assert cast.coach_b.email not in expected


def test_listing_filters_by_role(client, cast):
    seen, _ = _walk(client, cast.admin.headers, "role=supervisor&limit=1")
    assert sorted(seen) == sorted([cast.supervisor.email, cast.other_supervisor.email])
    seen, _ = _walk(client, cast.admin.headers, "role=admin")
    assert seen == [cast.admin.email]


@pytest.mark.parametrize(("query", "field"), [
    ("limit=0", "limit"), ("limit=201", "limit"), ("limit=abc", "limit"), ("limit=1.5", "limit"),
    ("limit=-1", "limit"), ("limit=", "limit"), ("limit=1&limit=2", "limit"),
    ("cursor=!!!", "cursor"), ("cursor=WzFd", "cursor"), ("cursor=eyJhIjoxfQ", "cursor"),
    ("role=owner", "role"), ("sort=email", "sort"), ("role=coach%00", "role"),
])
def test_bad_list_parameters_are_422(client, admin, query, field):
    assert_problem(client.get(f"{URL}?{query}", headers=admin.headers), 422, field)


# --- read ---------------------------------------------------------------------------------

def test_get_one_user(client, cast):
    r = client.get(f"{URL}/{cast.coach.id}", headers=cast.admin.headers)
    assert r.status_code == 200
    assert r.get_json()["email"] == cast.coach.email and set(r.get_json()) == USER_KEYS
    # The same id in upper case is the same user.
    assert client.get(f"{URL}/{cast.coach.id.upper()}", headers=cast.admin.headers).status_code == 200


@pytest.mark.parametrize("which", ["other_org", "missing", "malformed"])
def test_unknown_or_foreign_user_is_404(client, cast, which):
    uid = {"other_org": cast.coach_b.id, "missing": str(uuid.uuid4()), "malformed": "not-an-id"}[which]
    assert_problem(client.get(f"{URL}/{uid}", headers=cast.admin.headers), 404)
    assert_problem(client.patch(f"{URL}/{uid}", json={"display_name": "X"},
                                headers=cast.admin.headers), 404)


def test_patching_another_orgs_user_changes_nothing(client, cast, world):
    before = stored_user(world, cast.org_b, cast.coach_b.id)
    r = client.patch(f"{URL}/{cast.coach_b.id}", json={"is_active": False, "password": GOOD_PASSWORD},
                     headers=cast.admin.headers)
    assert_problem(r, 404)
    assert stored_user(world, cast.org_b, cast.coach_b.id) == before
    assert client.get("/api/v1/me", headers=cast.coach_b.headers).status_code == 200


# --- update -------------------------------------------------------------------------------

def test_admin_updates_display_name_and_role(client, cast, world):
    r = client.patch(f"{URL}/{cast.lone_coach.id}", json={"display_name": "Lee", "role": "supervisor"},
                     headers=cast.admin.headers)
    assert r.status_code == 200
    assert (r.get_json()["display_name"], r.get_json()["role"]) == ("Lee", "supervisor")
    row = stored_user(world, cast.org, cast.lone_coach.id)
    assert (row["display_name"], row["role"], row["token_generation"]) == ("Lee", "supervisor", 0)
    # Role comes from the database on each request: the same token now has supervisor rights.
    assert client.get("/api/v1/teams", headers=cast.lone_coach.headers).status_code == 200


@pytest.mark.parametrize(("field", "over"), [
    ("email", {"email": "x@example.org"}), ("role", {"role": "root"}),
    ("is_active", {"is_active": "false"}), ("password", {"password": "short"}),
    ("display_name", {"display_name": None}), ("display_name", {"display_name": ""}),
    ("display_name", {"display_name": "tab\there"}), ("id", {"id": str(uuid.uuid4())}),
    ("password", {"password": "x" * 257}),
])
def test_bad_patch_is_422_and_changes_nothing(client, cast, world, field, over):
    before = stored_user(world, cast.org, cast.coach.id)
    r = client.patch(f"{URL}/{cast.coach.id}", json=over, headers=cast.admin.headers)
    assert_problem(r, 422, field)
    assert stored_user(world, cast.org, cast.coach.id) == before


def test_password_reset_ends_every_token_of_the_user(client, cast, world):
    access, refresh = cast.coach.headers, {"Authorization": f"Bearer {cast.coach.refresh_token}"}
    r = client.patch(f"{URL}/{cast.coach.id}", json={"password": GOOD_PASSWORD}, headers=cast.admin.headers)
    assert r.status_code == 200 and GOOD_PASSWORD not in r.get_data(as_text=True)
    assert_problem(client.get("/api/v1/me", headers=access), 401)
    assert_problem(client.post("/api/v1/auth/refresh", headers=refresh), 401)
    assert_problem(login(client, cast.coach.email, cast.coach.password), 401)
    assert login(client, cast.coach.email, GOOD_PASSWORD).status_code == 200
    # Other users keep their sessions.
    assert client.get("/api/v1/me", headers=cast.coach2.headers).status_code == 200


def test_deactivation_ends_tokens_and_login_fails_like_a_wrong_password(client, cast, world):
    access, refresh = cast.coach.headers, {"Authorization": f"Bearer {cast.coach.refresh_token}"}
    r = client.patch(f"{URL}/{cast.coach.id}", json={"is_active": False}, headers=cast.admin.headers)
    assert r.status_code == 200 and r.get_json()["is_active"] is False
    assert_problem(client.get("/api/v1/me", headers=access), 401)
    assert_problem(client.post("/api/v1/auth/refresh", headers=refresh), 401)
    inactive = login(client, cast.coach.email, cast.coach.password)
    wrong = login(client, cast.coach2.email, "a-wrong-password-123")
    assert_problem(inactive, 401)
    assert_problem(wrong, 401)
    strip = lambda b: {k: v for k, v in b.items() if k != "request_id"}  # noqa: E731
    assert strip(inactive.get_json()) == strip(wrong.get_json())
    assert inactive.headers["WWW-Authenticate"] == wrong.headers["WWW-Authenticate"]
    # Reactivation lets the user log in again, but the old tokens stay dead.
    r = client.patch(f"{URL}/{cast.coach.id}", json={"is_active": True}, headers=cast.admin.headers)
    assert r.status_code == 200
    assert login(client, cast.coach.email, cast.coach.password).status_code == 200
    assert_problem(client.get("/api/v1/me", headers=access), 401)


@pytest.mark.parametrize("change", [{"is_active": False}, {"role": "supervisor"}, {"role": "coach"},
                                    {"display_name": "Me", "role": "coach"}])
def test_admin_cannot_deactivate_or_demote_themself(client, cast, world, change):
    before = stored_user(world, cast.org, cast.admin.id)
    events = world.audit_actions(cast.org)
    r = client.patch(f"{URL}/{cast.admin.id}", json=change, headers=cast.admin.headers)
    assert_problem(r, 409)
    assert stored_user(world, cast.org, cast.admin.id) == before
    assert world.audit_actions(cast.org) == events
    assert client.get("/api/v1/me", headers=cast.admin.headers).status_code == 200


def test_admin_may_rename_themself_and_keep_their_role(client, cast):
    r = client.patch(f"{URL}/{cast.admin.id}", json={"display_name": "Boss", "role": "admin",
                                                      "is_active": True}, headers=cast.admin.headers)
    assert r.status_code == 200 and r.get_json()["display_name"] == "Boss"


def test_another_admin_may_be_demoted(client, cast, world):
    other = world.user(cast.org, "admin")
    r = client.patch(f"{URL}/{other.id}", json={"role": "coach"}, headers=cast.admin.headers)
    assert r.status_code == 200
    assert_problem(client.get(URL, headers=other.headers), 403)


def test_role_change_that_breaks_a_team_membership_is_409(client, cast, world):
    """A supervisor member demoted to coach would hold a role their user role cannot hold."""
    before = stored_user(world, cast.org, cast.supervisor.id)
    r = client.patch(f"{URL}/{cast.supervisor.id}", json={"role": "coach"}, headers=cast.admin.headers)
    assert_problem(r, 409, "role")
    assert stored_user(world, cast.org, cast.supervisor.id) == before
    # A coach member promoted to admin would not be a valid coach member either.
    assert_problem(client.patch(f"{URL}/{cast.coach.id}", json={"role": "admin"},
                                headers=cast.admin.headers), 409, "role")
    # Once the membership is gone the change goes through.
    d = client.delete(f"/api/v1/teams/{cast.team}/members/{cast.supervisor.id}", headers=cast.admin.headers)
    assert d.status_code == 204
    r = client.patch(f"{URL}/{cast.supervisor.id}", json={"role": "coach"}, headers=cast.admin.headers)
    assert r.status_code == 200
    assert world.count(TeamMember, user_id=uuid.UUID(cast.supervisor.id)) == 0


def test_email_taken_by_a_concurrent_request_is_409_not_500(client, cast, world, monkeypatch):
    """The pre-check passes (as if the other request had not committed yet); the unique index
    then refuses the insert, and the answer is still a 409."""
    from rapportnotes.services import organisations

    monkeypatch.setattr(organisations, "email_taken", lambda *a, **k: False)
    before = world.count(User)
    r = client.post(URL, json=body(email=cast.coach_b.email.upper()), headers=cast.admin.headers)
    assert_problem(r, 409, "email")
    assert world.count(User) == before


def test_an_admin_cannot_reset_their_own_password(client, cast, world):
    """SPEC §8: changing a password needs the current one. A reset is for other users; for
    themself an admin uses ``POST /me/password`` (so a stolen admin token cannot take the account
    over by setting its password). Nothing changes, not even the display name sent with it."""
    before = world.count(AuditEvent)
    r = client.patch(f"{URL}/{cast.admin.id}", json={"password": GOOD_PASSWORD, "display_name": "X"},
                     headers=cast.admin.headers)
    assert_problem(r, 409)
    assert "/me/password" in r.get_json()["detail"]
    assert world.count(AuditEvent) == before
    assert client.get("/api/v1/me", headers=cast.admin.headers).get_json()["display_name"] != "X"
    assert login(client, cast.admin.email, GOOD_PASSWORD).status_code == 401


def test_two_admins_demoting_each_other_at_once_leave_one_admin(app, cast, world, monkeypatch):
    """Each request alone only refuses "yourself". Both requests are held just after their
    checks until the other arrives (or 2 s pass): unless the first one's check blocks the
    second, both would pass and the organisation would be left without an admin."""
    import contextlib
    import threading

    import rapportnotes.api.users as view

    other = world.user(cast.org, "admin")
    held = threading.Barrier(2)
    real = view._update_action

    def hold(user, data):
        # Times out when the other request is blocked behind this one's lock: go on alone.
        with contextlib.suppress(threading.BrokenBarrierError):
            held.wait(timeout=2)
        return real(user, data)

    monkeypatch.setattr(view, "_update_action", hold)
    start = threading.Barrier(2)
    results = {}

    def demote(actor, target):
        c = app.test_client()
        start.wait()
        results[actor.id] = c.patch(f"{URL}/{target.id}", json={"role": "coach"}, headers=actor.headers)

    threads = [threading.Thread(target=demote, args=pair)
               for pair in ((cast.admin, other), (other, cast.admin))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    statuses = sorted(r.status_code for r in results.values())
    assert statuses[0] == 200 and statuses[1] in (403, 409, 503), statuses
    admins = world.run(lambda s: s.scalars(
        select(User.id).where(User.organisation_id == uuid.UUID(cast.org), User.role == "admin",
                              User.is_active.is_(True))).all())
    assert len(admins) == 1

