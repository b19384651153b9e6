"""``rapportnotes set-timezone``: an organisation's zone changes and reports follow it."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from rapportnotes.models import AuditEvent, Contact, Organisation
from rapportnotes.services.audit import Actor
from rapportnotes.services.timezones import local_date


def _system(org: str) -> Actor:
    return Actor(uuid.UUID(org), "system", "test")

# Instants whose calendar date differs between New York and London (and UTC), around midnight
# and across both 2025 daylight-saving changes of each zone.
INSTANTS = [
    datetime(2025, 3, 9, 3, 30, tzinfo=UTC),   # 22:30 NY on 8 Mar, 03:30 London on 9 Mar
    datetime(2025, 3, 9, 7, 30, tzinfo=UTC),   # NY just after its spring-forward
    datetime(2025, 3, 30, 0, 30, tzinfo=UTC),  # London's spring-forward night
    datetime(2025, 3, 30, 23, 30, tzinfo=UTC),  # 00:30 London (BST) on 31 Mar
    datetime(2025, 10, 26, 0, 30, tzinfo=UTC),  # London's fall-back night
    datetime(2025, 11, 2, 4, 30, tzinfo=UTC),  # NY's fall-back night
    datetime(2025, 6, 1, 12, 0, tzinfo=UTC),   # same date everywhere
]


def _log(client, coach, instant):
    r = client.post("/api/v1/contacts", headers=coach.headers, json={
        "peer_ref": "TZ-1", "occurred_at": instant.isoformat().replace("+00:00", "Z"),
        "duration_minutes": 10, "modality": "phone", "behaviours": ["empathy"]})
    assert r.status_code == 201, r.get_json()
    return uuid.UUID(r.get_json()["id"])


def _stored(world, org_id):
    return world.run(lambda s: {c.id: (c.occurred_at, c.local_date) for c in s.scalars(
        select(Contact).where(Contact.organisation_id == uuid.UUID(org_id)))})


def _daily(client, headers, coach_id):
    r = client.get(f"/api/v1/coaches/{coach_id}/report?from=2025-03-01&to=2025-11-30&bucket=day",
                   headers=headers)
    assert r.status_code == 200, r.get_json()
    return {b["start"]: b["contacts"] for b in r.get_json()["series"] if b["contacts"]}


def test_set_timezone_redates_every_contact_and_reports_follow(runner, world, client):
    org = world.org(timezone="America/New_York")
    coach = world.user(org, "coach")
    ids = [_log(client, coach, t) for t in INSTANTS]
    other_org = world.org(timezone="America/New_York")
    other_coach = world.user(other_org, "coach")
    other_id = _log(client, other_coach, INSTANTS[0])
    before = _stored(world, org)
    assert all(day == local_date(t, "America/New_York") for t, day in before.values())
    ny_days = _daily(client, coach.headers, coach.id)

    result = runner.invoke(args=["set-timezone", org, "Europe/London"])
    assert result.exit_code == 0, result.output
    after = _stored(world, org)
    expected = {cid: local_date(t, "Europe/London") for cid, (t, _) in before.items()}
    assert {cid: day for cid, (_, day) in after.items()} == expected
    moved = sum(1 for cid in ids if before[cid][1] != expected[cid])
    assert moved >= 4 and f"contacts_redated={moved}" in result.output
    assert world.run(lambda s: s.get(Organisation, uuid.UUID(org)).timezone) == "Europe/London"
    # The other organisation is untouched.
    assert _stored(world, other_org)[other_id][1] == date(2025, 3, 8)

    london_days = _daily(client, coach.headers, coach.id)
    assert london_days != ny_days
    want: dict[str, int] = {}
    for t in INSTANTS:
        key = local_date(t, "Europe/London").isoformat()
        want[key] = want.get(key, 0) + 1
    assert london_days == want
    # A contact logged after the change gets a London date at once.
    late = _log(client, coach, datetime(2025, 3, 9, 3, 30, tzinfo=UTC))
    assert _stored(world, org)[late][1] == date(2025, 3, 9)
    events = world.run(lambda s: [(e.action, e.actor_type, e.status) for e in s.scalars(
        select(AuditEvent).where(AuditEvent.organisation_id == uuid.UUID(org),
                                 AuditEvent.action == "organisation.update"))])
    assert events == [("organisation.update", "system", 200)]


def test_set_timezone_works_in_batches(app, world, client):
    from rapportnotes.extensions import db
    from rapportnotes.services.organisations import change_timezone

    org = world.org(timezone="America/New_York")
    coach = world.user(org, "coach")
    start = datetime(2025, 1, 1, 2, 0, tzinfo=UTC)  # 21:00 NY the day before: every date moves
    for i in range(7):
        _log(client, coach, start + timedelta(days=i))
    with app.app_context():
        changed = change_timezone(db.session, uuid.UUID(org), "UTC", _system(org), batch_size=2)
    assert changed == 7
    assert all(day == t.date() for t, day in _stored(world, org).values())
    with app.app_context():  # running it again finds nothing to move
        assert change_timezone(db.session, uuid.UUID(org), "UTC", _system(org), batch_size=2) == 0


@pytest.mark.parametrize("host_ahead", [False, pytest.param(True, marks=pytest.mark.postgres)],
                         ids=["same_clock", "host_ahead_of_database"])
def test_contacts_written_while_it_runs_get_the_second_pass(app, world, client, monkeypatch, host_ahead):
    """A request that read the old zone and wrote after the switch is redated too. Also with
    this host's clock an hour ahead of PostgreSQL's, which stamps creates (their transaction
    start): the second pass looked only past the change's start by the host's clock, above the
    create's stamp, and left it in the old zone for good."""
    from rapportnotes.extensions import db
    from rapportnotes.services import organisations

    org = world.org(timezone="America/New_York")
    coach = world.user(org, "coach")
    cid = _log(client, coach, INSTANTS[0])  # written moments ago: inside the settle window
    real = organisations._recompute_local_dates

    def first_pass_then_a_stale_write(session, org_id, tz, batch_size, since):
        n = real(session, org_id, tz, batch_size, since)
        if since is None:  # between the passes, a write computed with the old zone lands
            world.run(lambda s: s.execute(Contact.__table__.update().where(Contact.id == cid)
                                          .values(local_date=date(2025, 3, 8))))
        return n

    if host_ahead:
        ahead = datetime.now(UTC) + timedelta(hours=1)
        monkeypatch.setattr(organisations, "utcnow", lambda: ahead)
    monkeypatch.setattr(organisations, "_recompute_local_dates", first_pass_then_a_stale_write)
    with app.app_context():
        organisations.change_timezone(db.session, uuid.UUID(org), "Europe/London", _system(org))
    assert _stored(world, org)[cid][1] == date(2025, 3, 9)


@pytest.mark.parametrize("args", [
    ["not-a-uuid", "Europe/London"],
    [str(uuid.uuid4()), "Europe/London"],
    ["{org}", "Mars/Olympus_Mons"],
    ["{org}", "localtime"],
    ["{org}", ""],
])
def test_set_timezone_rejects_bad_input_and_changes_nothing(runner, world, client, args):
    org = world.org(timezone="America/New_York")
    coach = world.user(org, "coach")
    _log(client, coach, INSTANTS[0])
    before = _stored(world, org)
    result = runner.invoke(args=["set-timezone", *[a.format(org=org) for a in args]])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert world.run(lambda s: s.get(Organisation, uuid.UUID(org)).timezone) == "America/New_York"
    assert _stored(world, org) == before
    assert world.count(AuditEvent, action="organisation.update") == 0


def test_the_zone_change_commits_with_its_audit_row_even_if_the_recompute_fails(
        runner, world, client, monkeypatch):
    """The recompute runs after the change is committed; if it stops midway, the change is
    still audited (and running the command again finishes the recompute)."""
    from rapportnotes.services import organisations

    org = world.org(timezone="America/New_York")
    coach = world.user(org, "coach")
    _log(client, coach, INSTANTS[0])

    def broken(*args, **kwargs):
        raise RuntimeError("recompute interrupted")

    monkeypatch.setattr(organisations, "_recompute_local_dates", broken)
    result = runner.invoke(args=["set-timezone", org, "Europe/London"])
    assert result.exit_code != 0
    assert world.run(lambda s: s.get(Organisation, uuid.UUID(org)).timezone) == "Europe/London"
    assert world.count(AuditEvent, action="organisation.update") == 1
    monkeypatch.undo()
    assert runner.invoke(args=["set-timezone", org, "Europe/London"]).exit_code == 0
    assert _stored(world, org)[next(iter(_stored(world, org)))][1] == date(2025, 3, 9)


@pytest.fixture
def zone_moves_mid_request(world, monkeypatch):
    """The first ``local_date`` a request computes triggers ``set-timezone`` (New York to London)
    first: the request goes on with the zone it loaded, as one that began just before would."""
    from rapportnotes.services import contacts, organisations

    moved = []

    def first_moves_the_zone(instant, tz):
        if not moved:
            moved.append(tz)
            world.run(lambda s: organisations.change_timezone(s, uuid.UUID(moved_org[0]), "Europe/London",
                                                              _system(moved_org[0])))
        return local_date(instant, tz)

    moved_org: list[str] = []
    monkeypatch.setattr(contacts, "local_date", first_moves_the_zone)
    return moved_org


@pytest.mark.parametrize("key", [None, "tz-race-1"])
def test_a_contact_logged_while_the_zone_moves_is_dated_in_the_new_zone(client, world, key,
                                                                        zone_moves_mid_request):
    """Found by a race pass: on SQLite the create read the zone before its write transaction,
    so a contact written just after ``set-timezone``'s passes kept its old-zone date."""
    org = world.org(timezone="America/New_York")
    coach = world.user(org, "coach")
    zone_moves_mid_request.append(org)
    headers = dict(coach.headers, **({"Idempotency-Key": key} if key else {}))
    r = client.post("/api/v1/contacts", headers=headers, json={
        "peer_ref": "TZ-1", "occurred_at": "2025-03-09T03:30:00Z", "duration_minutes": 10,
        "modality": "phone"})
    assert r.status_code == 201, r.get_json()
    (_occurred, day), = _stored(world, org).values()
    assert day == local_date(INSTANTS[0], "Europe/London") == date(2025, 3, 9)


def test_an_edit_made_while_the_zone_moves_is_dated_in_the_new_zone(client, world, zone_moves_mid_request):
    from rapportnotes.services import contacts

    org = world.org(timezone="America/New_York")
    coach = world.user(org, "coach")
    real = contacts.local_date
    contacts.local_date = local_date  # log it before the zone moves
    try:
        cid = _log(client, coach, INSTANTS[6])
    finally:
        contacts.local_date = real
    zone_moves_mid_request.append(org)
    r = client.patch(f"/api/v1/contacts/{cid}", headers=coach.headers,
                     json={"occurred_at": "2025-03-09T03:30:00Z"})
    assert r.status_code == 200 and r.get_json()["version"] == 2, r.get_json()
    assert _stored(world, org)[cid][1] == date(2025, 3, 9)  # London; New York would be 8 March


class _AfterCommit:
    """``session``, but ``after(n)`` runs once its ``n``-th commit has finished (no lock held)."""

    def __init__(self, session, after):
        self._session, self._after, self._commits = session, after, 0

    def __getattr__(self, name):
        return getattr(self._session, name)

    def commit(self):
        self._session.commit()
        self._commits += 1
        self._after(self._commits)


def test_a_second_zone_change_while_the_first_redates_has_the_last_word(app, world, client):
    """Two ``set-timezone`` runs overlapping (an operator rerunning one that looked stuck, with
    another zone): the first went on redating its remaining batches in its own zone after the
    second had finished, leaving contacts dated in a zone the organisation no longer has."""
    from rapportnotes.extensions import db
    from rapportnotes.services.organisations import change_timezone

    org = world.org(timezone="America/New_York")
    coach = world.user(org, "coach")
    for t in INSTANTS:
        _log(client, coach, t)

    def second_change(commits):
        if commits == 2:  # the first run's zone change and its first batch have committed
            world.run(lambda s: change_timezone(s, uuid.UUID(org), "Pacific/Pago_Pago", _system(org)))

    with app.app_context():
        change_timezone(_AfterCommit(db.session, second_change), uuid.UUID(org), "Europe/London",
                        _system(org), batch_size=2)
    assert world.run(lambda s: s.get(Organisation, uuid.UUID(org)).timezone) == "Pacific/Pago_Pago"
    stored = _stored(world, org)
    assert {cid: day for cid, (_, day) in stored.items()} == {
        cid: local_date(t, "Pacific/Pago_Pago") for cid, (t, _) in stored.items()}


@pytest.mark.postgres  # on SQLite each batch holds the write lock, so no edit can land inside one
def test_an_edit_inside_a_batch_keeps_its_date_and_is_not_counted(app, world, client, monkeypatch):
    """A batch read a contact, then an edit moved its ``occurred_at`` (dated in the zone already
    switched to): the batch's UPDATE must not put back the old instant's date, and
    ``contacts_redated`` counts what the run changed, not what the batch meant to change."""
    from rapportnotes.extensions import db
    from rapportnotes.services import organisations

    org = world.org(timezone="America/New_York")
    coach = world.user(org, "coach")
    edited = _log(client, coach, INSTANTS[0])  # 8 Mar in New York, 9 Mar in London
    redated = _log(client, coach, INSTANTS[3])  # 30 Mar in New York, 31 Mar in London
    world.run(lambda s: s.execute(Organisation.__table__.update()
                                  .where(Organisation.id == uuid.UUID(org)).values(timezone="Europe/London")))
    moved_to = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
    real, edits = organisations.local_date, []

    def an_edit_lands_meanwhile(instant, zone):
        if not edits:
            edits.append(edited)
            world.run(lambda s: s.execute(Contact.__table__.update().where(Contact.id == edited).values(
                occurred_at=moved_to, local_date=real(moved_to, zone), updated_at=datetime.now(UTC))))
        return real(instant, zone)

    monkeypatch.setattr(organisations, "local_date", an_edit_lands_meanwhile)
    with app.app_context():
        changed = organisations._recompute_local_dates(db.session, uuid.UUID(org), "Europe/London", 100,
                                                       since=None)
    stored = _stored(world, org)
    assert edits and stored[edited] == (moved_to, date(2025, 6, 1))
    assert stored[redated] == (INSTANTS[3], date(2025, 3, 31))
    assert changed == 1
