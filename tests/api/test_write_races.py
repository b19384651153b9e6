"""Writes released at the same instant (found by a race pass over every write endpoint).

Each request alone was fine; together they answered 500, or stored what no order of running
them one after another could have stored. Each case runs on both databases.
"""

from __future__ import annotations

import contextlib
import threading
import uuid

import pytest
from sqlalchemy import select

from rapportnotes.models import Behaviour, TeamMember, User
from tests.support.problems import assert_problem
from tests.support.race import race

API = "/api/v1"


def _memberships(world, team: str, user: str) -> list[str]:
    return world.run(lambda s: list(s.scalars(select(TeamMember.role).where(
        TeamMember.team_id == uuid.UUID(team), TeamMember.user_id == uuid.UUID(user)))))


def test_the_same_new_behaviour_code_twice_at_once(app, cast, world, monkeypatch):
    """Both requests are held after their "is the code free?" check until the other has made it
    too (or 2 s pass): the second insert then meets the first one's key."""
    import rapportnotes.api.behaviours as view

    held, real = threading.Barrier(2), view.svc.add_behaviour

    def add_then_hold(*args):
        added = real(*args)
        with contextlib.suppress(threading.BrokenBarrierError):
            held.wait(timeout=2)
        return added

    monkeypatch.setattr(view.svc, "add_behaviour", add_then_hold)
    body = {"code": "zz_raced", "label": "Raced", "category": "support", "polarity": "supportive"}
    results = race(app, [lambda c: c.post(f"{API}/behaviours", json=body, headers=cast.admin.headers)] * 2)
    assert sorted(r.status_code for r in results) == [201, 409]
    for r in results:
        if r.status_code == 409:
            assert_problem(r, 409, "code")
    assert world.count(Behaviour, code="zz_raced") == 1


def test_the_same_new_membership_four_times_at_once(app, cast, world):
    url = f"{API}/teams/{cast.team}/members/{cast.lone_coach.id}"
    results = race(app, [lambda c: c.put(url, json={"role": "coach"}, headers=cast.admin.headers)] * 4)
    assert [r.status_code for r in results] == [200] * 4
    assert _memberships(world, cast.team, cast.lone_coach.id) == ["coach"]
    assert all(cast.lone_coach.id in {m["user_id"] for m in r.get_json()["members"]} for r in results)


def test_removing_one_membership_four_times_at_once(app, cast, world):
    url = f"{API}/teams/{cast.team}/members/{cast.coach2.id}"
    results = race(app, [lambda c: c.delete(url, headers=cast.admin.headers)] * 4)
    assert sorted(r.status_code for r in results) == [204, 404, 404, 404]
    assert _memberships(world, cast.team, cast.coach2.id) == []
    assert world.audit_actions(cast.org).count(("team.member_delete", 204)) == 1


@pytest.mark.parametrize("attempt", range(2))
def test_putting_and_removing_one_membership_at_once(app, cast, world, attempt):
    url = f"{API}/teams/{cast.team}/members/{cast.coach2.id}"
    put, gone = race(app, [lambda c: c.put(url, json={"role": "coach"}, headers=cast.admin.headers),
                           lambda c: c.delete(url, headers=cast.admin.headers)])
    assert put.status_code == 200 and gone.status_code in (204, 404), (put.status_code, gone.status_code)
    assert _memberships(world, cast.team, cast.coach2.id) in ([], ["coach"])


@pytest.fixture
def held_at_role_checks(monkeypatch):
    """Hold each request at its role check (taken after its lock, if any) until the other
    arrives or 2 s pass: without the lock, both check the old state and both write."""
    import rapportnotes.api.teams as teams_view
    import rapportnotes.api.users as users_view

    held = threading.Barrier(2)

    def holding(real):
        def hold(*args):
            with contextlib.suppress(threading.BrokenBarrierError):
                held.wait(timeout=2)
            return real(*args)
        return hold

    monkeypatch.setattr(users_view, "_check_memberships", holding(users_view._check_memberships))
    monkeypatch.setattr(teams_view, "may_hold_membership", holding(teams_view.may_hold_membership))


def test_a_role_change_racing_a_membership_it_forbids(app, cast, world, held_at_role_checks):
    """A coach made an admin while being added to a team as a coach: an admin may not be a coach
    member. Run in turn, one of the two is refused; at once, they once both went through."""
    coach = world.user(cast.org, "coach")
    promote, join = race(app, [
        lambda c: c.patch(f"{API}/users/{coach.id}", json={"role": "admin"}, headers=cast.admin.headers),
        lambda c: c.put(f"{API}/teams/{cast.team}/members/{coach.id}", json={"role": "coach"},
                        headers=cast.admin.headers),
    ])
    assert sorted([promote.status_code, join.status_code]) in ([200, 409], [200, 422]), (
        promote.get_json(), join.get_json())
    role = world.run(lambda s: s.scalar(select(User.role).where(User.id == uuid.UUID(coach.id))))
    held = _memberships(world, cast.team, coach.id)
    assert (role, held) in (("admin", []), ("coach", ["coach"]))


def test_two_edits_adding_the_same_tag_to_one_version(app, client, cast, world):
    contact = client.post(f"{API}/contacts", headers=cast.coach.headers, json={
        "peer_ref": "P-1", "occurred_at": "2026-11-01T10:00:00Z", "duration_minutes": 5, "modality": "phone",
        "behaviours": ["empathy"]}).get_json()
    url = f"{API}/contacts/{contact['id']}"
    headers = {**cast.coach.headers, "If-Match": '"1"'}
    edit = {"behaviours": ["empathy", "hope"]}
    results = race(app, [lambda c: c.patch(url, json=edit, headers=headers)] * 4)
    assert sorted(r.status_code for r in results) == [200, 412, 412, 412]
    got = client.get(url, headers=cast.coach.headers).get_json()
    assert got["version"] == 2 and got["behaviours"] == ["empathy", "hope"]


@pytest.mark.parametrize("change", [{"behaviours": ["empathy", "hope"]}, None])
def test_a_patch_that_changes_nothing_against_an_edit_committed_under_it(app, cast, world, monkeypatch,
                                                                         change):
    """The PATCH reads the contact, then its tags: an edit committing in between made its tags the
    new version's, so the request matched what it asked for and was a 200 with the old
    version and ETag (If-Match "1" passed against a contact at version 2), or a 200
    ``deleted: false`` for a contact just deleted. The precondition held for neither: 412.
    (test_two_edits_adding_the_same_tag_to_one_version met this now and then.)"""
    from rapportnotes.services import contacts as svc

    created = app.test_client().post(f"{API}/contacts", headers=cast.coach.headers, json={
        "peer_ref": "P-1", "occurred_at": "2026-11-01T10:00:00Z", "duration_minutes": 5, "modality": "phone",
        "behaviours": ["empathy"]}).get_json()
    url = f"{API}/contacts/{created['id']}"
    inside, go, real = threading.Event(), threading.Event(), svc.codes_for

    def codes_for(*args):
        if not inside.is_set():  # the held PATCH, between reading the row and reading its tags
            inside.set()
            assert go.wait(10)
        return real(*args)

    monkeypatch.setattr(svc, "codes_for", codes_for)
    headers = {**cast.coach.headers, "If-Match": '"1"'}

    def other(c):
        assert inside.wait(10)
        try:
            if change is None:
                return c.delete(url, headers=cast.coach.headers)
            return c.patch(url, json=change, headers=cast.coach.headers)
        finally:
            go.set()

    asked = change or {}  # as the other edit leaves it; or nothing at all, against a delete
    held, first = race(app, [lambda c: c.patch(url, json=asked, headers=headers), other])
    assert first.status_code in (200, 204)
    assert_problem(held, 412)
