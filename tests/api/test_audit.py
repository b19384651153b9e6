"""The audit trail: one event per admin change, never a secret, and ``GET /audit`` for admins."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from rapportnotes.models import AuditEvent, User
from tests.support.problems import assert_problem
from tests.support.statements import assert_deep_page_starts_at_its_cursor

URL = "/api/v1/audit"
NEW_PASSWORD = "an-entirely-new-secret-77"


@pytest.fixture()
def admin(world):
    """A lone admin: cheaper than the full cast for input-validation tests."""
    return world.user(world.org(), "admin")


def events(world, org_id):
    return world.run(lambda s: [
        {c.name: getattr(e, c.name) for c in AuditEvent.__table__.columns}
        for e in s.scalars(select(AuditEvent).where(AuditEvent.organisation_id == uuid.UUID(org_id))
                           .order_by(AuditEvent.at, AuditEvent.id))
    ])


# Each admin change: (name, request(client, cast, headers), action, target_type, target(cast, resp), status)
CHANGES = [
    ("create user", lambda c, k, h: c.post("/api/v1/users", headers=h, json={
        "email": "n@example.org", "display_name": "N", "role": "coach", "password": NEW_PASSWORD}),
     "user.create", "user", lambda k, r: r.get_json()["id"], 201),
    ("rename user", lambda c, k, h: c.patch(f"/api/v1/users/{k.coach.id}", headers=h,
                                            json={"display_name": "Renamed"}),
     "user.update", "user", lambda k, r: k.coach.id, 200),
    ("change role", lambda c, k, h: c.patch(f"/api/v1/users/{k.lone_coach.id}", headers=h,
                                            json={"role": "supervisor"}),
     "user.role_change", "user", lambda k, r: k.lone_coach.id, 200),
    ("deactivate", lambda c, k, h: c.patch(f"/api/v1/users/{k.coach.id}", headers=h,
                                           json={"is_active": False}),
     "user.deactivate", "user", lambda k, r: k.coach.id, 200),
    ("reset password", lambda c, k, h: c.patch(f"/api/v1/users/{k.coach.id}", headers=h,
                                               json={"password": NEW_PASSWORD, "is_active": False}),
     "user.password_reset", "user", lambda k, r: k.coach.id, 200),
    ("create team", lambda c, k, h: c.post("/api/v1/teams", headers=h, json={"name": "New"}),
     "team.create", "team", lambda k, r: r.get_json()["id"], 201),
    ("rename team", lambda c, k, h: c.patch(f"/api/v1/teams/{k.team}", headers=h, json={"name": "T"}),
     "team.update", "team", lambda k, r: k.team, 200),
    ("add member", lambda c, k, h: c.put(f"/api/v1/teams/{k.team}/members/{k.lone_coach.id}",
                                         headers=h, json={"role": "coach"}),
     "team.member_put", "team_member", lambda k, r: f"{k.team}/{k.lone_coach.id}", 200),
    ("remove member", lambda c, k, h: c.delete(f"/api/v1/teams/{k.team}/members/{k.coach.id}", headers=h),
     "team.member_delete", "team_member", lambda k, r: f"{k.team}/{k.coach.id}", 204),
]


@pytest.mark.parametrize("change", CHANGES, ids=[c[0] for c in CHANGES])
def test_each_admin_change_writes_exactly_one_event(client, cast, world, change):
    _name, do, action, target_type, target, status = change
    before, before_b = events(world, cast.org), events(world, cast.org_b)
    r = do(client, cast, {**cast.admin.headers, "X-Request-ID": "req-42"})
    assert r.status_code in (200, 201, 204), r.get_json()
    new = events(world, cast.org)[len(before):]
    assert len(new) == 1, new
    e = new[0]
    assert (e["action"], e["target_type"], e["target_id"], e["status"]) == (
        action, target_type, target(cast, r), status)
    assert (e["actor_type"], e["actor_id"]) == ("user", cast.admin.id)
    assert (e["request_id"], e["ip"]) == ("req-42", "127.0.0.1")
    assert datetime.now(UTC) - e["at"] < timedelta(minutes=1)
    assert events(world, cast.org_b) == before_b


def test_rejected_changes_write_no_event(client, cast, world):
    before = events(world, cast.org)
    h = cast.admin.headers
    demote = client.patch(f"/api/v1/users/{cast.admin.id}", json={"role": "coach"}, headers=h)
    assert demote.status_code == 409
    assert client.post("/api/v1/users", json={"email": "bad"}, headers=h).status_code == 422
    assert client.post("/api/v1/teams", json={"name": "Team A"}, headers=h).status_code == 409
    assert client.get(f"/api/v1/users/{cast.coach_b.id}", headers=h).status_code == 404
    assert events(world, cast.org) == before


def test_no_audit_row_ever_holds_a_password_hash_or_token(client, cast, world):
    secrets = {cast.admin.password, NEW_PASSWORD, "yet-another-password-99"}
    tokens = set()
    h = cast.admin.headers
    client.post("/api/v1/users", headers=h, json={"email": "s@example.org", "display_name": "S",
                                                  "role": "coach", "password": NEW_PASSWORD})
    client.patch(f"/api/v1/users/{cast.coach.id}", headers=h, json={"password": "yet-another-password-99"})
    client.post("/api/v1/auth/login", json={"email": cast.coach.email, "password": "wrong-password-000"})
    secrets.add("wrong-password-000")
    r = client.post("/api/v1/auth/login", json={"email": "s@example.org", "password": NEW_PASSWORD})
    pair = r.get_json()
    tokens |= {pair["access_token"], pair["refresh_token"]}
    r = client.post("/api/v1/auth/refresh", headers={"Authorization": f"Bearer {pair['refresh_token']}"})
    fresh = r.get_json()
    tokens |= {fresh["access_token"], fresh["refresh_token"]}
    r = client.post("/api/v1/me/password", headers={"Authorization": f"Bearer {fresh['access_token']}"},
                    json={"current_password": NEW_PASSWORD, "new_password": "my-own-new-password-5"})
    secrets.add("my-own-new-password-5")
    tokens |= {r.get_json()["access_token"], r.get_json()["refresh_token"]}
    client.post("/api/v1/auth/logout", headers={"Authorization": f"Bearer {r.get_json()['access_token']}"},
                json={"refresh_token": r.get_json()["refresh_token"]})
    tokens |= {cast.admin.access_token, cast.admin.refresh_token}
    hashes = set(world.run(lambda s: list(s.scalars(select(User.password_hash)))))
    rows = events(world, cast.org)
    actions = {e["action"] for e in rows}
    assert {"user.create", "user.password_reset", "auth.login", "auth.refresh",
            "user.password_change", "auth.logout"} <= actions
    needles = secrets | tokens | hashes
    # Token pieces too: a header or signature segment alone is no better.
    needles |= {part for t in tokens for part in t.split(".")[1:]}
    for row in rows:
        for column, value in row.items():
            for needle in needles:
                assert needle not in str(value), (column, row["action"])


# --- GET /audit -------------------------------------------------------------------------------

def test_only_admins_read_the_audit_trail_of_their_own_org(client, cast):
    for user in (cast.coach, cast.supervisor):
        assert_problem(client.get(URL, headers=user.headers), 403)
    assert_problem(client.get(URL), 401)
    client.patch(f"/api/v1/users/{cast.coach.id}", json={"display_name": "A"}, headers=cast.admin.headers)
    client.patch(f"/api/v1/users/{cast.coach_b.id}", json={"display_name": "B"}, headers=cast.admin_b.headers)
    a = client.get(URL, headers=cast.admin.headers).get_json()["items"]
    b = client.get(URL, headers=cast.admin_b.headers).get_json()["items"]
    assert [e["target_id"] for e in a] == [cast.coach.id]
    assert [e["target_id"] for e in b] == [cast.coach_b.id]
    assert set(a[0]) == {"id", "at", "actor_type", "actor_id", "action", "target_type", "target_id",
                         "status", "request_id", "ip"}
    assert a[0]["at"].endswith("Z") and a[0]["actor_id"] == cast.admin.id
    # Filtering on another organisation's ids finds nothing.
    r = client.get(f"{URL}?actor_id={cast.admin_b.id}", headers=cast.admin.headers)
    assert r.get_json()["items"] == []
    r = client.get(f"{URL}?target_id={cast.coach_b.id}", headers=cast.admin.headers)
    assert r.get_json()["items"] == []


def _insert(world, org_id, rows):
    """Insert events with chosen fields (at, action, actor_id, target_id); returns their ids."""
    def add(s):
        ids = []
        for row in rows:
            e = AuditEvent(organisation_id=uuid.UUID(org_id), id=uuid.uuid4(), actor_type="user",
                           status=200, **{"action": "x.y", **row})
            s.add(e)
            ids.append(str(e.id))
        return ids
    return world.run(add)


def _all(client, headers, query):
    out, url = [], f"{URL}?{query}"
    while url:
        r = client.get(url, headers=headers)
        assert r.status_code == 200, r.get_json()
        page = r.get_json()
        out += page["items"]
        url = r.headers["Link"][1:r.headers["Link"].index(">")] if page["next_cursor"] else None
    return out


def test_pagination_is_newest_first_and_exactly_once_with_ties(client, world):
    org = world.org()
    admin = world.user(org, "admin")
    base = datetime(2025, 3, 1, 12, tzinfo=UTC)
    ats = [base + timedelta(seconds=i // 3) for i in range(20)]  # groups of three share an instant
    ids = _insert(world, org, [{"at": at} for at in ats])
    want = [i for _, i in sorted(zip(ats, ids, strict=True), key=lambda p: (p[0], uuid.UUID(p[1])),
                                 reverse=True)]
    for limit in (1, 2, 3, 7, 20, 200):
        got = [e["id"] for e in _all(client, admin.headers, f"limit={limit}")]
        assert got == want, limit


def test_filters(client, world):
    org = world.org(timezone="America/New_York")  # UTC-5 in January
    admin = world.user(org, "admin")
    actor, target = str(uuid.uuid4()), str(uuid.uuid4())
    t = lambda s: datetime.fromisoformat(s)  # noqa: E731
    ids = _insert(world, org, [
        {"at": t("2025-01-10T04:59:59.999999+00:00"), "action": "user.create"},  # Jan 9, local
        {"at": t("2025-01-10T05:00:00+00:00"), "action": "user.update", "actor_id": actor},  # Jan 10
        {"at": t("2025-01-11T04:59:59.999999+00:00"), "target_id": target},  # Jan 10, last µs
        {"at": t("2025-01-11T05:00:00+00:00"), "action": "user.update", "target_id": target},  # Jan 11
    ])
    q = lambda query: [e["id"] for e in _all(client, admin.headers, query)][::-1]  # noqa: E731
    assert q("from=2025-01-10&to=2025-01-10") == ids[1:3]
    assert q("from=2025-01-10") == ids[1:]
    assert q("to=2025-01-10") == ids[:3]
    assert q("from=2025-01-10T05:00:00Z&to=2025-01-11T04:59:59.999999Z") == ids[1:3]
    assert q("from=2025-01-10T00:00:00-05:00&to=2025-01-10T23:59:59.999999-05:00") == ids[1:3]
    assert q("from=2025-01-10T05:00:00Z&to=2025-01-10T05:00:00Z") == [ids[1]]  # both inclusive
    assert q(f"actor_id={actor}") == [ids[1]]
    assert q(f"actor_id={actor.upper()}") == [ids[1]]
    assert q("action=user.update") == [ids[1], ids[3]]
    assert q(f"target_id={target}&action=user.update") == [ids[3]]
    assert q(f"target_id={target}&to=2025-01-10") == [ids[2]]
    assert q("action=nothing") == []
    assert q(f"target_id={target}&limit=1") == [ids[2], ids[3]]


def test_a_day_the_zone_skips_is_an_empty_day_not_a_reversed_range(client, world):
    """Samoa skipped 30 December 2011 (it moved across the date line): that day starts where 31
    December does, so its bounds as instants are equal, and ``from=to=`` it was a 422."""
    org = world.org(timezone="Pacific/Apia")
    admin = world.user(org, "admin")
    t = lambda s: datetime.fromisoformat(s)  # noqa: E731
    ids = _insert(world, org, [
        {"at": t("2011-12-30T09:59:59+00:00")},  # 23:59:59 on 29 December (UTC-10)
        {"at": t("2011-12-30T10:00:00+00:00")},  # 00:00 on 31 December (UTC+14)
    ])
    q = lambda query: [e["id"] for e in _all(client, admin.headers, query)][::-1]  # noqa: E731
    assert q("from=2011-12-30&to=2011-12-30") == []
    assert q("from=2011-12-29&to=2011-12-30") == ids[:1]
    assert q("from=2011-12-30&to=2011-12-31") == ids[1:]
    for query in ("from=2011-12-31&to=2011-12-30", "from=2011-12-30&to=2011-12-29",
                  "from=2011-12-30&to=2011-12-30T09:59:59Z"):
        assert_problem(client.get(f"{URL}?{query}", headers=admin.headers), 422, "from")


@pytest.mark.parametrize(("query", "field"), [
    ("limit=0", "limit"), ("limit=201", "limit"), ("limit=ten", "limit"),
    ("from=2025-13-01", "from"), ("to=2025-02-30", "to"), ("from=yesterday", "from"),
    ("from=2025-01-10T05:00:00", "from"), ("to=2025-01-10 05:00", "to"),
    ("from=2025-01-11&to=2025-01-10", "from"), ("from=2025-01-10T05:00:01Z&to=2025-01-10T05:00:00Z", "from"),
    ("cursor=abc", "cursor"), ("cursor=WyJ4IiwieSJd", "cursor"),
    # A naive instant inside an otherwise well-formed cursor.
    ("cursor=WyIyMDI1LTAxLTAxVDAwOjAwOjAwIiwiMDAwMDAwMDAtMDAwMC0wMDAwLTAwMDAtMDAwMDAwMDAwMDAwIl0", "cursor"),
    ("order=at", "order"), ("action=a%00b", "action"), ("action=a&action=b", "action"),
])
def test_bad_parameters_are_422(client, admin, query, field):
    assert_problem(client.get(f"{URL}?{query}", headers=admin.headers), 422, field)


@pytest.mark.postgres
def test_a_deep_audit_page_reads_from_its_cursor_not_from_the_start(app, client, cast, world):
    """The audit trail grows with every read: page k must not re-read pages 1..k-1 (the keyset is
    a row comparison the index ranges over, as for contacts)."""
    base = datetime(2024, 1, 1, tzinfo=UTC)
    _insert(world, cast.org, [{"at": base + timedelta(seconds=i)} for i in range(3000)])
    assert_deep_page_starts_at_its_cursor(app, client, f"{URL}?limit=200", cast.admin.headers,
                                          "audit_events")
