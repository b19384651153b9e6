"""Contacts over HTTP: create, validation, visibility, ETags, soft delete, audit."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from rapportnotes.models import AuditEvent, Contact, ContactBehaviour
from tests.support.callers import deactivate, make_admin, move_generation, revoke_token
from tests.support.problems import assert_problem
from tests.support.statements import Statements, assert_pool_back_in_transactions

URL = "/api/v1/contacts"


def body(**over):
    b = {
        "peer_ref": "PEER-001",
        "occurred_at": (datetime.now(UTC) - timedelta(hours=2)).isoformat(),
        "duration_minutes": 30,
        "modality": "in_person",
        "behaviours": ["empathy", "active_listening"],
    }
    b.update(over)
    return b


def post(client, user, **over):
    return client.post(URL, json=body(**over), headers=user.headers)


def test_create_returns_201_location_etag_and_full_body(client, cast, world):
    r = post(
        client,
        cast.coach,
        notes="Talked about work.\nFelt heard.",
        peer_rating=9,
        setting="community",
        external_id="CASE-1",
    )
    assert r.status_code == 201
    c = r.get_json()
    assert r.headers["Location"] == f"{URL}/{c['id']}"
    assert r.headers["ETag"] == '"1"'
    assert c["coach_id"] == cast.coach.id and c["version"] == 1 and c["deleted"] is False
    assert c["behaviours"] == ["active_listening", "empathy"]
    assert c["occurred_at"].endswith("Z") and c["created_at"].endswith("Z")
    assert c["notes"] == "Talked about work.\nFelt heard." and c["peer_rating"] == 9
    assert world.count(Contact) == 1 and world.count(ContactBehaviour) == 2
    got = client.get(r.headers["Location"], headers=cast.coach.headers)
    assert got.status_code == 200 and got.get_json() == c and got.headers["ETag"] == '"1"'


def test_nulls_on_create_mean_absent_and_behaviours_default_empty(client, cast):
    b = body(setting=None, notes=None, peer_rating=None, external_id=None, behaviours=None)
    r = client.post(URL, json=b, headers=cast.coach.headers)
    assert r.status_code == 201, r.get_json()
    c = r.get_json()
    assert c["behaviours"] == [] and c["setting"] is None and c["notes"] is None
    b.pop("behaviours")
    assert client.post(URL, json=b, headers=cast.coach.headers).get_json()["behaviours"] == []


def test_local_date_uses_the_organisation_time_zone(client, world):
    org = world.org(timezone="America/New_York")
    coach = world.user(org, "coach")
    # 03:30 UTC on the 2nd is still the evening of the 1st in New York.
    r = client.post(URL, json=body(occurred_at="2025-03-02T03:30:00Z"), headers=coach.headers)
    assert r.status_code == 201
    from sqlalchemy import select

    d = world.run(lambda s: s.scalar(select(Contact.local_date)))
    assert d.isoformat() == "2025-03-01"


@pytest.mark.parametrize("zone, instants", [
    # Zones whose clocks change at local midnight, so a DST change moves the date itself.
    ("America/Santiago", ["2025-04-06T02:30:00Z", "2025-04-06T03:30:00Z", "2025-09-07T03:30:00Z",
                          "2025-09-07T04:30:00Z"]),
    ("America/Havana", ["2025-03-09T04:30:00Z", "2025-03-09T05:30:00Z", "2025-11-02T04:30:00Z",
                        "2025-11-02T05:30:00Z"]),
    ("Europe/London", ["2025-03-29T23:59:59Z", "2025-03-30T00:00:00Z", "2025-10-25T23:30:00Z",
                       "2025-10-26T00:30:00Z"]),
    # Also an abbreviation to PostgreSQL (fixed +01:00), a zone with summer time to Python.
    ("CET", ["2025-07-01T22:30:00Z", "2025-01-01T22:30:00Z", "2025-03-29T23:30:00Z"]),
])
def test_local_date_matches_the_python_definition_around_dst_changes(client, world, zone, instants):
    """Every create path stores the date ``services.timezones.local_date`` gives (PostgreSQL's
    own AT TIME ZONE would read ``CET`` as a fixed offset and get July wrong)."""
    from sqlalchemy import select

    from rapportnotes.services.timezones import local_date

    coach = world.user(world.org(timezone=zone), "coach")
    for at in instants:
        assert client.post(URL, json=body(occurred_at=at), headers=coach.headers).status_code == 201
    stored = world.run(lambda s: sorted(s.execute(select(Contact.occurred_at, Contact.local_date)).all()))
    assert [d for _, d in stored] == [local_date(at, zone) for at, _ in stored]
    assert len({d for _, d in stored}) > 1


BAD = [
    ({"extra": 1}, "extra"),
    ({"id": str(uuid.uuid4())}, "id"),
    ({"version": 3}, "version"),
    ({"created_at": "2025-01-01T00:00:00Z"}, "created_at"),
    ({"organisation_id": str(uuid.uuid4())}, "organisation_id"),
    ({"coach_id": str(uuid.uuid4())}, "coach_id"),
    ({"coach_id": "not-a-uuid"}, "coach_id"),
    ({"occurred_at": "2025-01-01T10:00:00"}, "occurred_at"),
    ({"occurred_at": "2025-01-01"}, "occurred_at"),
    ({"occurred_at": "yesterday"}, "occurred_at"),
    ({"occurred_at": (datetime.now(UTC) + timedelta(minutes=10)).isoformat()}, "occurred_at"),
    ({"occurred_at": None}, "occurred_at"),
    ({"occurred_at": "0001-01-01T00:30:00+01:00"}, "occurred_at"),
    ({"occurred_at": "1899-12-31T23:59:59Z"}, "occurred_at"),
    ({"occurred_at": "2025-01-01T23:59:60Z"}, "occurred_at"),
    ({"duration_minutes": 1.9}, "duration_minutes"),
    ({"duration_minutes": 30.0}, "duration_minutes"),
    ({"duration_minutes": "45"}, "duration_minutes"),
    ({"duration_minutes": True}, "duration_minutes"),
    ({"duration_minutes": -1}, "duration_minutes"),
    ({"duration_minutes": 1441}, "duration_minutes"),
    ({"modality": "carrier_pigeon"}, "modality"),
    ({"modality": None}, "modality"),
    ({"peer_ref": ""}, "peer_ref"),
    ({"peer_ref": "x" * 65}, "peer_ref"),
    ({"peer_ref": "Jane Doe"}, "peer_ref"),
    ({"peer_ref": "abc\u0000"}, "peer_ref"),
    ({"peer_ref": 12}, "peer_ref"),
    ({"setting": "x" * 65}, "setting"),
    ({"setting": "ward\u0007"}, "setting"),
    ({"notes": "x" * 10_001}, "notes"),
    ({"notes": "null byte \u0000 here"}, "notes"),
    ({"notes": "escape \u001b[31m"}, "notes"),
    ({"notes": "a lone\rcarriage return"}, "notes"),
    ({"notes": "ends in a carriage return\r"}, "notes"),
    ({"notes": "lone \ud800 surrogate"}, "notes"),
    ({"peer_rating": 11}, "peer_rating"),
    ({"peer_rating": -1}, "peer_rating"),
    ({"peer_rating": 5.5}, "peer_rating"),
    ({"external_id": "x" * 129}, "external_id"),
    ({"behaviours": ["nope"]}, "behaviours"),
    ({"behaviours": ["empathy", "empathy"]}, "behaviours"),
    ({"behaviours": ["empathy"] * 21}, "behaviours"),
    ({"behaviours": "empathy"}, "behaviours"),
    ({"behaviours": [1]}, "behaviours"),
]


@pytest.mark.parametrize(("over", "field"), BAD, ids=[f"{f}-{i}" for i, (_, f) in enumerate(BAD)])
def test_bad_input_is_422_naming_the_field_and_stores_nothing(client, cast, world, over, field):
    r = post(client, cast.coach, **over)
    assert_problem(r, 422, field)
    assert world.count(Contact) == 0 and world.count(ContactBehaviour) == 0


def test_notes_keep_tabs_and_newlines_lf_or_crlf(client, cast):
    notes = "Line one\n\tindented\r\nline three"
    r = post(client, cast.coach, notes=notes)
    assert r.status_code == 201, r.get_json()
    assert client.get(r.headers["Location"], headers=cast.coach.headers).get_json()["notes"] == notes


def test_missing_required_fields_are_named(client, cast, world):
    r = client.post(URL, json={}, headers=cast.coach.headers)
    assert_problem(r, 422, "peer_ref", "occurred_at", "duration_minutes", "modality")
    assert world.count(Contact) == 0


def test_more_than_twenty_distinct_behaviours_is_422(client, cast, world):
    for i in range(21):
        world.run(
            lambda s, i=i: __import__("rapportnotes.services.behaviours", fromlist=["x"]).add_behaviour(
                s,
                uuid.UUID(cast.org),
                {
                    "code": f"extra_{i}",
                    "label": "x",
                    "description": "",
                    "category": "extra",
                    "polarity": "supportive",
                },
            )
        )
    r = post(client, cast.coach, behaviours=[f"extra_{i}" for i in range(21)])
    assert_problem(r, 422, "behaviours")
    assert post(client, cast.coach, behaviours=[f"extra_{i}" for i in range(20)]).status_code == 201


def test_own_coach_id_is_accepted(client, cast):
    assert post(client, cast.coach, coach_id=cast.coach.id).status_code == 201


def test_retired_code_cannot_be_used_on_new_contacts(client, cast, world):
    r = client.patch("/api/v1/behaviours/fixing", json={"active": False}, headers=cast.admin.headers)
    assert r.status_code == 200 and r.get_json()["active"] is False
    assert_problem(post(client, cast.coach, behaviours=["fixing"]), 422, "behaviours")
    assert world.count(Contact) == 0


def test_retired_code_stays_on_old_contacts_and_edits_may_keep_but_not_add_it(client, cast):
    c = post(client, cast.coach, behaviours=["fixing", "empathy"]).get_json()
    c2 = post(client, cast.coach, behaviours=["empathy"]).get_json()
    client.patch("/api/v1/behaviours/fixing", json={"active": False}, headers=cast.admin.headers)
    got = client.get(f"{URL}/{c['id']}", headers=cast.coach.headers).get_json()
    assert got["behaviours"] == ["empathy", "fixing"]
    r = client.patch(f"{URL}/{c['id']}", json={"behaviours": ["fixing", "hope"]}, headers=cast.coach.headers)
    assert r.status_code == 200 and r.get_json()["behaviours"] == ["fixing", "hope"]
    r = client.patch(f"{URL}/{c2['id']}", json={"behaviours": ["fixing"]}, headers=cast.coach.headers)
    assert_problem(r, 422, "behaviours")


def test_external_id_unique_within_org_only(client, cast, world):
    assert post(client, cast.coach, external_id="EXT-1").status_code == 201
    assert_problem(post(client, cast.coach2, external_id="EXT-1"), 409, "external_id")
    assert world.count(Contact) == 1
    assert post(client, cast.coach_b, external_id="EXT-1").status_code == 201


def test_admin_cannot_log_contacts(client, cast, world):
    assert_problem(post(client, cast.admin), 403)
    assert world.count(Contact) == 0


def test_supervisor_logs_their_own(client, cast):
    r = post(client, cast.supervisor)
    assert r.status_code == 201 and r.get_json()["coach_id"] == cast.supervisor.id


def test_unauthenticated_is_401(client):
    assert_problem(client.post(URL, json=body()), 401)
    assert_problem(client.get(URL), 401)


# --- visibility -------------------------------------------------------------------------------


def _ids(resp):
    return {c["id"] for c in resp.get_json()["items"]}


def test_visibility_matrix(client, cast):
    own = post(client, cast.coach).get_json()["id"]
    peer = post(client, cast.coach2).get_json()["id"]
    lone = post(client, cast.lone_coach).get_json()["id"]
    sup_own = post(client, cast.supervisor).get_json()["id"]
    other_org = post(client, cast.coach_b).get_json()["id"]
    every = {own, peer, lone, sup_own}
    expect = {
        "coach": {own},
        "supervisor": {own, peer, sup_own},
        "other_supervisor": {lone},
        "admin": every,
        "admin_b": {other_org},
    }
    for who, visible in expect.items():
        user = getattr(cast, who)
        assert _ids(client.get(URL, headers=user.headers)) == visible, who
        for cid in every | {other_org}:
            r = client.get(f"{URL}/{cid}", headers=user.headers)
            if cid in visible:
                assert r.status_code == 200, (who, cid)
            else:
                assert_problem(r, 404)


def test_only_the_owner_edits_or_deletes(client, cast, world):
    cid = post(client, cast.coach).get_json()["id"]
    for who, status in (
        ("supervisor", 403),
        ("admin", 403),
        ("coach2", 404),
        ("lone_coach", 404),
        ("admin_b", 404),
        ("other_supervisor", 404),
    ):
        user = getattr(cast, who)
        assert_problem(
            client.patch(f"{URL}/{cid}", json={"duration_minutes": 1}, headers=user.headers), status
        )
        assert_problem(client.delete(f"{URL}/{cid}", headers=user.headers), status)
    got = client.get(f"{URL}/{cid}", headers=cast.coach.headers).get_json()
    assert got["duration_minutes"] == 30 and got["version"] == 1 and not got["deleted"]


@pytest.mark.parametrize("bad", ["nope", "123", str(uuid.uuid4())])
def test_unknown_or_malformed_ids_are_404(client, cast, bad):
    for method in ("get", "patch", "delete"):
        kwargs = {"json": {"duration_minutes": 1}} if method == "patch" else {}
        assert_problem(getattr(client, method)(f"{URL}/{bad}", headers=cast.coach.headers, **kwargs), 404)


# --- edit, concurrency, delete ----------------------------------------------------------------


def test_patch_updates_fields_bumps_version_and_null_clears(client, cast, world):
    c = post(client, cast.coach, notes="n", setting="hospital", peer_rating=4).get_json()
    r = client.patch(
        f"{URL}/{c['id']}",
        json={"setting": None, "notes": None, "duration_minutes": 50, "behaviours": ["hope"]},
        headers=cast.coach.headers,
    )
    assert r.status_code == 200 and r.headers["ETag"] == '"2"'
    got = r.get_json()
    assert got["setting"] is None and got["notes"] is None and got["peer_rating"] == 4
    assert got["duration_minutes"] == 50 and got["behaviours"] == ["hope"] and got["version"] == 2
    assert got["updated_at"] >= c["updated_at"]
    assert world.count(ContactBehaviour) == 1


def test_a_patch_that_changes_nothing_keeps_version_and_updated_at(client, cast, world):
    """SPEC §4: version increases on each change. ``{}`` or every value as it is (the same
    instant in another offset, the same tags in another order) changes nothing: the ETag stays
    valid and sync does not send the contact again. The request is still audited."""
    c = post(client, cast.coach, notes="n", peer_rating=4).get_json()
    url, h = f"{URL}/{c['id']}", cast.coach.headers
    kolkata = timezone(timedelta(hours=5, minutes=30))
    same_instant = datetime.fromisoformat(c["occurred_at"]).astimezone(kolkata)
    for patch in ({}, {"peer_ref": c["peer_ref"], "duration_minutes": 30, "setting": None},
                  {"occurred_at": same_instant.isoformat(), "behaviours": ["active_listening", "empathy"],
                   "notes": "n", "peer_rating": 4}):
        r = client.patch(url, json=patch, headers={**h, "If-Match": '"1"'})
        assert r.status_code == 200 and r.headers["ETag"] == '"1"', patch
        got = r.get_json()
        assert got["version"] == 1 and got["updated_at"] == c["updated_at"], patch
        assert sorted(got["behaviours"]) == ["active_listening", "empathy"] and got["notes"] == "n"
    assert client.get(url, headers=h).get_json() == c
    assert world.count(ContactBehaviour) == 2
    assert world.count(AuditEvent, action="contact.update") == 3
    r = client.patch(url, json={"peer_rating": 5}, headers={**h, "If-Match": '"1"'})  # a change, once
    assert r.status_code == 200 and r.get_json()["version"] == 2 and r.headers["ETag"] == '"2"'
    assert r.get_json()["updated_at"] > c["updated_at"]


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"peer_ref": None}, "peer_ref"),
        ({"coach_id": None}, "coach_id"),
        ({"version": 5}, "version"),
        ({"duration_minutes": 2000}, "duration_minutes"),
    ],
)
def test_bad_patch_is_422_and_changes_nothing(client, cast, over, field):
    c = post(client, cast.coach).get_json()
    assert_problem(client.patch(f"{URL}/{c['id']}", json=over, headers=cast.coach.headers), 422, field)
    assert client.get(f"{URL}/{c['id']}", headers=cast.coach.headers).get_json()["version"] == 1


def test_if_match_mismatch_is_412_and_changes_nothing(client, cast):
    c = post(client, cast.coach).get_json()
    h = {**cast.coach.headers, "If-Match": '"7"'}
    assert_problem(client.patch(f"{URL}/{c['id']}", json={"duration_minutes": 5}, headers=h), 412)
    assert_problem(client.delete(f"{URL}/{c['id']}", headers=h), 412)
    weak = {**cast.coach.headers, "If-Match": 'W/"1"'}
    assert_problem(client.patch(f"{URL}/{c['id']}", json={"duration_minutes": 5}, headers=weak), 412)
    got = client.get(f"{URL}/{c['id']}", headers=cast.coach.headers).get_json()
    assert got["duration_minutes"] == 30 and got["version"] == 1
    ok = {**cast.coach.headers, "If-Match": '"1"'}
    assert client.patch(f"{URL}/{c['id']}", json={"duration_minutes": 5}, headers=ok).status_code == 200


def test_delete_is_soft_and_hides_the_contact(client, cast, world):
    c = post(client, cast.coach).get_json()
    assert client.delete(f"{URL}/{c['id']}", headers=cast.coach.headers).status_code == 204
    assert_problem(client.get(f"{URL}/{c['id']}", headers=cast.coach.headers), 404)
    assert_problem(client.delete(f"{URL}/{c['id']}", headers=cast.coach.headers), 404)
    assert client.get(URL, headers=cast.coach.headers).get_json()["items"] == []
    assert world.count(Contact, deleted=True) == 1  # the tombstone is kept
    listed = client.get(f"{URL}?include_deleted=true", headers=cast.coach.headers).get_json()["items"]
    assert [(i["id"], i["deleted"], i["version"]) for i in listed] == [(c["id"], True, 2)]


# --- audit ------------------------------------------------------------------------------------


def test_every_contact_operation_is_audited_once(client, cast, world):
    c = post(client, cast.coach).get_json()
    client.get(f"{URL}/{c['id']}", headers=cast.coach.headers)
    client.get(URL, headers=cast.coach.headers)
    client.patch(f"{URL}/{c['id']}", json={"duration_minutes": 3}, headers=cast.coach.headers)
    client.delete(f"{URL}/{c['id']}", headers=cast.coach.headers)
    actions = [a for a in world.audit_actions(cast.org) if a[0].startswith("contact.")]
    assert actions == [
        ("contact.create", 201),
        ("contact.read", 200),
        ("contact.list", 200),
        ("contact.update", 200),
        ("contact.delete", 204),
    ]


def test_failed_audit_insert_fails_the_request_and_stores_no_contact(client, cast, world, monkeypatch):
    from rapportnotes.services import audit

    real = audit.event_row

    def broken(*args, **kw):
        return {**real(*args, **kw), "action": None}  # NOT NULL violation in the audit insert

    monkeypatch.setattr(audit, "event_row", broken)
    r = post(client, cast.coach)
    assert_problem(r, 500)
    assert "Traceback" not in r.get_data(as_text=True)
    assert world.count(Contact) == 0 and world.count(ContactBehaviour) == 0


def test_a_failing_one_statement_create_leaves_no_connection_in_autocommit(client, cast, world, app):
    """A taken external_id fails the statement itself (unique index) on the driver path: still
    a clean 409, one contact, and the connection goes back to the pool out of autocommit."""
    assert post(client, cast.coach, external_id="EXT-1").status_code == 201
    assert_problem(post(client, cast.coach, external_id="EXT-1"), 409, "external_id")
    assert world.count(Contact) == 1
    assert_pool_back_in_transactions(app)


def test_create_is_one_statement_outside_a_transaction_block_on_postgresql(client, cast, world, app,
                                                                            backend):
    assert post(client, cast.coach).status_code == 201  # the first create looks the zone up
    with Statements(app, backend) as seen:
        r = post(client, cast.coach)
    assert r.status_code == 201
    if backend == "postgresql":
        # Caller check, contact, tags and audit row in one statement; no BEGIN/COMMIT.
        assert seen == [("WITH", True)]
    else:  # caller, write lock (stamps in commit order), taxonomy check, contact, the zone once
        # more, tags, audit row: one transaction
        assert [s for s, _ in seen] == ["SELECT", "UPDATE", "SELECT", "INSERT", "SELECT", "INSERT",
                                        "INSERT"]
    assert world.count(ContactBehaviour) == 4
    assert ("contact.create", 201) in world.audit_actions(cast.org)
    assert_pool_back_in_transactions(app)
    with Statements(app, backend) as seen:
        assert client.get(f"{URL}/{r.get_json()['id']}", headers=cast.coach.headers).status_code == 200
    assert seen and all(autocommit in (False, None) for _, autocommit in seen)


def test_create_with_an_idempotency_key_keeps_its_transaction(client, cast, app, backend):
    headers = {**cast.coach.headers, "Idempotency-Key": str(uuid.uuid4())}
    with Statements(app, backend) as seen:
        r = client.post(URL, json=body(), headers=headers)
    assert r.status_code == 201
    assert all(autocommit in (False, None) for _, autocommit in seen)
    assert "INSERT" in [s for s, _ in seen]  # the idempotency record, in the same transaction


@pytest.mark.parametrize("change, status", [(deactivate, 401), (move_generation, 401),
                                            (revoke_token, 401), (make_admin, 403)])
@pytest.mark.parametrize("valid", [True, False], ids=["valid-body", "invalid-body"])
def test_create_rechecks_the_caller_in_the_database(client, cast, world, change, status, valid):
    """On PostgreSQL the insert statement itself is the caller check (no lookup before it), so
    this is what proves it: a token that no longer holds stores nothing and gets the same
    refusal as elsewhere, before any complaint about the body."""
    assert post(client, cast.coach).status_code == 201  # the process now knows the org's zone
    world.run(change, cast.coach)
    r = post(client, cast.coach, **({} if valid else {"duration_minutes": -1}))
    assert_problem(r, status)
    if status == 401:
        assert r.headers["WWW-Authenticate"].startswith('Bearer error="invalid_token"')
    assert world.count(Contact) == 1 and world.count(ContactBehaviour) == 2
    assert world.audit_actions(cast.org).count(("contact.create", 201)) == 1


def test_a_refused_caller_hears_401_before_an_oversized_body(client, cast, world):
    assert post(client, cast.coach).status_code == 201
    world.run(deactivate, cast.coach)
    r = client.post(URL, data="x" * (2 * 1024 * 1024),
                    headers={**cast.coach.headers, "Content-Type": "application/json"})
    assert_problem(r, 401)


def test_a_changed_organisation_zone_is_picked_up_at_once(client, world):
    """The create statement checks the zone the process remembered; after a change it stores
    nothing, the ordinary lookup refreshes the zone and the retry stores the right date."""
    from sqlalchemy import select

    from rapportnotes.models import Organisation

    org = world.org(timezone="America/New_York")
    coach = world.user(org, "coach")
    at = "2025-03-02T03:30:00Z"
    assert client.post(URL, json=body(occurred_at=at), headers=coach.headers).status_code == 201
    world.run(lambda s: setattr(s.get(Organisation, uuid.UUID(org)), "timezone", "Europe/London"))
    r = client.post(URL, json=body(occurred_at=at, peer_ref="P-2"), headers=coach.headers)
    assert r.status_code == 201
    days = world.run(lambda s: dict(s.execute(select(Contact.peer_ref, Contact.local_date)).all()))
    assert {k: d.isoformat() for k, d in days.items()} == {"PEER-001": "2025-03-01", "P-2": "2025-03-02"}


def test_a_token_naming_another_organisation_stores_nothing(client, cast, world):
    """The token names the organisation; a coach of org B with org A's id in a (validly signed)
    token matches no user, so nothing is stored anywhere."""
    from tests.api.test_tokens_security import claims, token

    forged = token(claims(cast.coach_b, org=cast.org))
    r = client.post(URL, json=body(), headers={"Authorization": f"Bearer {forged}"})
    assert_problem(r, 401)
    assert world.count(Contact) == 0


def test_a_code_that_slips_past_the_check_is_never_stored(client, cast, world, monkeypatch, backend):
    """The statement itself re-checks the codes on PostgreSQL (and the foreign key everywhere):
    with the separate check switched off, an unknown code still stores nothing."""
    import rapportnotes.services.contacts as svc

    monkeypatch.setattr(svc, "check_codes", lambda *a, **kw: None)
    r = post(client, cast.coach, behaviours=["empathy", "no_such_code"])
    if backend == "postgresql":
        assert_problem(r, 409)
        assert "taxonomy changed" in r.get_json()["detail"]
    else:
        assert_problem(r, 500)  # the foreign key refuses it
    assert world.count(Contact) == 0 and world.count(ContactBehaviour) == 0
    assert ("contact.create", 201) not in world.audit_actions(cast.org)


def test_notes_never_reach_the_logs_or_audit(client, cast, world, caplog):
    import logging

    marker = "SECRET-NOTE-MARKER-42"
    logger = logging.getLogger("rapportnotes")
    logger.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.DEBUG, logger="rapportnotes"):
            c = post(client, cast.coach, notes=marker).get_json()
            client.get(f"{URL}/{c['id']}", headers=cast.coach.headers)
            client.get(f"{URL}?peer_ref=PEER-001", headers=cast.coach.headers)
    finally:
        logger.removeHandler(caplog.handler)
    assert caplog.records, "expected request log lines"
    assert marker not in caplog.text
    from sqlalchemy import select

    from rapportnotes.models import AuditEvent

    rows = world.run(lambda s: [repr(e.__dict__) for e in s.scalars(select(AuditEvent))])
    assert rows and not any(marker in r for r in rows)


@pytest.mark.postgres
def test_a_stored_contact_is_never_answered_503_by_the_lookup_connection(client, cast, world, app,
                                                                         monkeypatch):
    """Found by an outage pass: when the organisation's zone was not cached yet, the caller was
    looked up in the session, the contact stored on a connection of its own, and the session
    committed last: a connection lost then answered 503 for a stored contact."""
    from sqlalchemy.exc import OperationalError

    from rapportnotes import security
    from rapportnotes.extensions import db

    monkeypatch.setattr(security, "_zones", {})  # as in a process that has not seen the organisation

    def lost(*_args, **_kwargs):
        raise OperationalError("COMMIT", {}, Exception("server closed the connection unexpectedly"))

    with app.app_context():
        session_class = type(db.session())
    with monkeypatch.context() as m:
        m.setattr(session_class, "commit", lost)
        r = post(client, cast.coach)
    assert r.status_code == 201, r.get_json()
    assert world.count(Contact) == 1


def test_a_duplicate_sent_while_the_first_is_still_running_is_409(client, cast, world, app):
    """SPEC §8: a second request with a key whose first request is still running gets 409; once
    the first has finished, the same request replays its response."""
    from sqlalchemy.orm import Session

    from rapportnotes.extensions import db
    from rapportnotes.services import idempotency

    key = str(uuid.uuid4())
    headers = {**cast.coach.headers, "Idempotency-Key": key}
    with app.app_context():
        first = Session(db.engine)  # stands for the first request: its own connection and transaction
    try:
        release = idempotency.claim(first, uuid.UUID(cast.org), cast.coach.id, key)
        try:
            assert_problem(client.post(URL, json=body(), headers=headers), 409)
            other = client.post(URL, json=body(), headers={**headers, "Idempotency-Key": key + "-2"})
            assert other.status_code == 201  # another key is not held
        finally:
            release()
    finally:
        first.close()  # PostgreSQL: ends the transaction, releasing the advisory lock
    assert world.count(Contact) == 1
    again = body(peer_ref="PEER-002")
    r1 = client.post(URL, json=again, headers=headers)
    r2 = client.post(URL, json=again, headers=headers)
    assert r1.status_code == r2.status_code == 201 and r1.get_json()["id"] == r2.get_json()["id"]
    assert world.count(Contact) == 2
