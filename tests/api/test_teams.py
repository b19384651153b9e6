"""Teams: admins manage them and their members; supervisors read the teams they supervise."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from rapportnotes.models import Team, TeamMember
from tests.support.problems import assert_problem

URL = "/api/v1/teams"


@pytest.fixture()
def admin(world):
    """A lone admin: cheaper than the full cast for input-validation tests."""
    return world.user(world.org(), "admin")


def members(world, org_id, team_id):
    return world.run(lambda s: {(str(m.user_id), m.role) for m in s.scalars(
        select(TeamMember).where(TeamMember.organisation_id == uuid.UUID(org_id),
                                 TeamMember.team_id == uuid.UUID(team_id)))})


def team_names(world, org_id):
    return world.run(lambda s: sorted(s.scalars(
        select(Team.name).where(Team.organisation_id == uuid.UUID(org_id)))))


# --- create -------------------------------------------------------------------------------

def test_admin_creates_a_team(client, cast, world):
    r = client.post(URL, json={"name": "Night shift"}, headers=cast.admin.headers)
    assert r.status_code == 201
    out = r.get_json()
    assert set(out) == {"id", "name", "members", "created_at"}
    assert (out["name"], out["members"]) == ("Night shift", [])
    assert r.headers["Location"] == f"{URL}/{out['id']}"
    assert client.get(r.headers["Location"], headers=cast.admin.headers).get_json() == out
    assert "Night shift" in team_names(world, cast.org)
    assert world.audit_actions(cast.org)[-1] == ("team.create", 201)


def test_duplicate_name_in_the_org_is_409_but_fine_in_another_org(client, cast, world):
    before = team_names(world, cast.org)
    assert_problem(client.post(URL, json={"name": "Team A"}, headers=cast.admin.headers), 409, "name")
    assert team_names(world, cast.org) == before
    r = client.post(URL, json={"name": "Team A"}, headers=cast.admin_b.headers)
    assert r.status_code == 201
    assert team_names(world, cast.org_b) == ["Team A", "Team B"]


@pytest.mark.parametrize(("field", "payload"), [
    ("name", {}), ("name", {"name": ""}), ("name", {"name": "x" * 201}), ("name", {"name": None}),
    ("name", {"name": 5}), ("name", {"name": "bad\x00name"}), ("name", {"name": "bad\x1bname"}),
    ("id", {"name": "Ok", "id": str(uuid.uuid4())}), ("members", {"name": "Ok", "members": []}),
])
def test_bad_team_body_is_422(client, admin, world, field, payload):
    assert_problem(client.post(URL, json=payload, headers=admin.headers), 422, field)
    assert team_names(world, admin.org_id) == []


# --- list and read --------------------------------------------------------------------------

def _names(client, user, query=""):
    r = client.get(f"{URL}?{query}", headers=user.headers)
    assert r.status_code == 200, r.get_json()
    return [t["name"] for t in r.get_json()["items"]]


def test_listing_by_role(client, cast):
    assert _names(client, cast.admin) == ["Team A", "Team A2"]
    assert _names(client, cast.supervisor) == ["Team A"]
    assert _names(client, cast.other_supervisor) == ["Team A2"]
    assert _names(client, cast.admin_b) == ["Team B"]
    assert_problem(client.get(URL, headers=cast.coach.headers), 403)
    assert_problem(client.get(URL), 401)


def test_a_coach_member_who_is_a_supervisor_user_does_not_see_that_team(client, cast, world):
    world.team(cast.org, "Mixed", coaches=[cast.supervisor])
    assert _names(client, cast.supervisor) == ["Team A"]


def test_team_listing_pages_cover_every_team_once(client, cast, world):
    for name in ["b", "a", "c", "a2", "Z", "é"]:
        world.team(cast.org, name)
    expected = _names(client, cast.admin, "limit=200")
    assert len(expected) == 8
    seen, url = [], f"{URL}?limit=3"
    while url:
        r = client.get(url, headers=cast.admin.headers)
        page = r.get_json()
        seen += [t["name"] for t in page["items"]]
        url = r.headers["Link"][1:r.headers["Link"].index(">")] if page["next_cursor"] else None
    assert seen == expected


def test_team_listing_costs_the_same_statements_for_one_team_or_many(app, client, cast, world):
    """Every team's members come in one query for the page, not one query per team."""
    from sqlalchemy import event

    from rapportnotes.extensions import db

    seen: list[str] = []

    def count() -> int:
        seen.clear()
        r = client.get(URL, headers=cast.admin.headers)
        assert r.status_code == 200
        return len(seen)

    with app.app_context():
        engine = db.engine
    listener = lambda *args: seen.append(args[2])  # noqa: E731
    event.listen(engine, "before_cursor_execute", listener)
    try:
        few = count()
        for i in range(5):
            world.team(cast.org, f"Extra {i}", coaches=[cast.coach])
        many = count()
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    assert many == few


@pytest.mark.parametrize(("query", "field"), [
    ("limit=0", "limit"), ("limit=201", "limit"), ("limit=x", "limit"), ("cursor=%%%", "cursor"),
    ("cursor=WyJhIl0", "cursor"), ("cursor=WyJhIiwibm90LWEtdXVpZCJd", "cursor"), ("name=x", "name"),
])
def test_bad_team_list_parameters_are_422(client, admin, query, field):
    assert_problem(client.get(f"{URL}?{query}", headers=admin.headers), 422, field)


def test_get_one_team(client, cast):
    r = client.get(f"{URL}/{cast.team}", headers=cast.supervisor.headers)
    assert r.status_code == 200
    out = r.get_json()
    assert out["name"] == "Team A"
    assert {(m["user_id"], m["role"]) for m in out["members"]} == {
        (cast.supervisor.id, "supervisor"), (cast.coach.id, "coach"), (cast.coach2.id, "coach")}
    assert_problem(client.get(f"{URL}/{cast.other_team}", headers=cast.supervisor.headers), 404)
    assert_problem(client.get(f"{URL}/{cast.team_b}", headers=cast.supervisor.headers), 404)
    assert_problem(client.get(f"{URL}/{cast.team_b}", headers=cast.admin.headers), 404)
    assert_problem(client.get(f"{URL}/{cast.team}", headers=cast.coach.headers), 403)
    assert_problem(client.get(f"{URL}/nope", headers=cast.admin.headers), 404)


# --- rename ---------------------------------------------------------------------------------

def test_rename(client, cast, world):
    r = client.patch(f"{URL}/{cast.team}", json={"name": "Team Alpha"}, headers=cast.admin.headers)
    assert r.status_code == 200 and r.get_json()["name"] == "Team Alpha"
    assert team_names(world, cast.org) == ["Team A2", "Team Alpha"]
    # Keeping its own name is not a conflict.
    assert client.patch(f"{URL}/{cast.team}", json={"name": "Team Alpha"},
                        headers=cast.admin.headers).status_code == 200
    assert_problem(client.patch(f"{URL}/{cast.team}", json={"name": "Team A2"},
                                headers=cast.admin.headers), 409, "name")
    assert_problem(client.patch(f"{URL}/{cast.team}", json={"name": ""},
                                headers=cast.admin.headers), 422, "name")
    assert_problem(client.patch(f"{URL}/{cast.team}", json={"members": []},
                                headers=cast.admin.headers), 422, "members")
    assert team_names(world, cast.org) == ["Team A2", "Team Alpha"]
    assert_problem(client.patch(f"{URL}/{cast.team_b}", json={"name": "Mine"},
                                headers=cast.admin.headers), 404)
    assert team_names(world, cast.org_b) == ["Team B"]


# --- membership ------------------------------------------------------------------------------

def put(client, admin, team, user, role):
    return client.put(f"{URL}/{team}/members/{user}", json={"role": role}, headers=admin.headers)


def test_add_and_change_a_member(client, cast, world):
    r = put(client, cast.admin, cast.team, cast.lone_coach.id, "coach")
    assert r.status_code == 200
    assert {"user_id": cast.lone_coach.id, "role": "coach"} in r.get_json()["members"]
    assert (cast.lone_coach.id, "coach") in members(world, cast.org, cast.team)
    # A supervisor user may be a coach member, then be made a supervisor member.
    assert put(client, cast.admin, cast.team, cast.other_supervisor.id, "coach").status_code == 200
    r = put(client, cast.admin, cast.team, cast.other_supervisor.id, "supervisor")
    assert r.status_code == 200
    got = members(world, cast.org, cast.team)
    assert (cast.other_supervisor.id, "supervisor") in got and (cast.other_supervisor.id, "coach") not in got
    assert len(got) == 5
    # An admin may be a supervisor member.
    assert put(client, cast.admin, cast.team, cast.admin.id, "supervisor").status_code == 200


@pytest.mark.parametrize(("who", "role"), [("coach", "supervisor"), ("admin", "coach")])
def test_membership_role_rules(client, cast, world, who, role):
    user = getattr(cast, who)
    before = members(world, cast.org, cast.other_team)
    assert_problem(put(client, cast.admin, cast.other_team, user.id, role), 422, "role")
    assert members(world, cast.org, cast.other_team) == before


@pytest.mark.parametrize(("payload", "field"), [
    ({}, "role"), ({"role": "lead"}, "role"), ({"role": None}, "role"),
    ({"role": "coach", "user_id": "x"}, "user_id"),
])
def test_bad_member_body_is_422(client, cast, world, payload, field):
    before = members(world, cast.org, cast.team)
    r = client.put(f"{URL}/{cast.team}/members/{cast.lone_coach.id}", json=payload,
                   headers=cast.admin.headers)
    assert_problem(r, 422, field)
    assert members(world, cast.org, cast.team) == before


@pytest.mark.parametrize("which", ["other_org", "missing", "malformed"])
def test_member_user_must_be_of_the_org(client, cast, world, which):
    uid = {"other_org": cast.coach_b.id, "missing": str(uuid.uuid4()), "malformed": "x"}[which]
    before = members(world, cast.org, cast.team)
    assert_problem(put(client, cast.admin, cast.team, uid, "coach"), 404)
    assert_problem(client.delete(f"{URL}/{cast.team}/members/{uid}", headers=cast.admin.headers), 404)
    assert members(world, cast.org, cast.team) == before
    assert world.count(TeamMember, user_id=uuid.UUID(cast.coach_b.id)) == 1


def test_delete_member(client, cast, world):
    r = client.delete(f"{URL}/{cast.team}/members/{cast.coach2.id}", headers=cast.admin.headers)
    assert r.status_code == 204 and r.get_data() == b""
    assert members(world, cast.org, cast.team) == {(cast.supervisor.id, "supervisor"),
                                                   (cast.coach.id, "coach")}
    assert_problem(client.delete(f"{URL}/{cast.team}/members/{cast.coach2.id}",
                                 headers=cast.admin.headers), 404)
    assert_problem(client.delete(f"{URL}/{cast.team}/members/{cast.lone_coach.id}",
                                 headers=cast.admin.headers), 404)
    assert world.audit_actions(cast.org)[-1] == ("team.member_delete", 204)


def test_supervisor_visibility_follows_membership_immediately(client, cast):
    sup = cast.supervisor
    report = f"/api/v1/coaches/{cast.lone_coach.id}/report"
    assert_problem(client.get(f"{URL}/{cast.other_team}", headers=sup.headers), 404)
    assert client.get(report, headers=sup.headers).status_code == 404
    assert put(client, cast.admin, cast.other_team, sup.id, "supervisor").status_code == 200
    assert client.get(f"{URL}/{cast.other_team}", headers=sup.headers).status_code == 200
    assert _names(client, sup) == ["Team A", "Team A2"]
    assert client.get(report, headers=sup.headers).status_code == 200
    # Demoted to a coach member: no longer supervises that team.
    assert put(client, cast.admin, cast.other_team, sup.id, "coach").status_code == 200
    assert_problem(client.get(f"{URL}/{cast.other_team}", headers=sup.headers), 404)
    assert client.get(report, headers=sup.headers).status_code == 404
    assert put(client, cast.admin, cast.other_team, sup.id, "supervisor").status_code == 200
    r = client.delete(f"{URL}/{cast.other_team}/members/{sup.id}", headers=cast.admin.headers)
    assert r.status_code == 204
    assert_problem(client.get(f"{URL}/{cast.other_team}", headers=sup.headers), 404)
    assert _names(client, sup) == ["Team A"]
    assert client.get(report, headers=sup.headers).status_code == 404


def test_name_taken_by_a_concurrent_request_is_409_not_500(client, cast, world, monkeypatch):
    from rapportnotes.api import teams as teams_api

    real, calls = teams_api._name_taken, []

    def first_check_misses(*args, **kwargs):  # the other request had not committed yet
        calls.append(args)
        return False if len(calls) == 1 else real(*args, **kwargs)

    monkeypatch.setattr(teams_api, "_name_taken", first_check_misses)
    before = team_names(world, cast.org)
    assert_problem(client.post(URL, json={"name": "Team A"}, headers=cast.admin.headers), 409, "name")
    assert team_names(world, cast.org) == before
    calls.clear()
    r = client.patch(f"{URL}/{cast.team}", json={"name": "Team A2"}, headers=cast.admin.headers)
    assert_problem(r, 409, "name")
    assert team_names(world, cast.org) == before
