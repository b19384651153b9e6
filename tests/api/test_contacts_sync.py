"""Listing, filters, keyset pagination, sync, idempotency and concurrent edits."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rapportnotes.models import Contact, IdempotencyRecord
from tests.support import paging
from tests.support.problems import assert_problem
from tests.support.race import race
from tests.support.statements import assert_deep_page_starts_at_its_cursor

URL = "/api/v1/contacts"
BASE = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def make(client, user, i=0, **over):
    b = {
        "peer_ref": f"P-{i % 3}",
        "occurred_at": (BASE - timedelta(hours=i)).isoformat(),
        "duration_minutes": 10 + i,
        "modality": ["phone", "video"][i % 2],
        "behaviours": ["empathy"] if i % 2 else ["hope", "judging"],
    }
    b.update(over)
    r = client.post(URL, json=b, headers=user.headers)
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def walk(client, user, query="", limit=3):
    return paging.walk(client, f"{URL}?limit={limit}{query}", user.headers)[0]


def test_pages_cover_everything_once_newest_first(client, cast):
    made = [make(client, cast.coach, i) for i in range(8)]
    seen = walk(client, cast.coach)
    assert [c["id"] for c in seen] == [c["id"] for c in made]  # made newest first
    keys = [(c["occurred_at"], c["id"]) for c in seen]
    assert keys == sorted(keys, reverse=True)


def test_filters(client, cast, world):
    made = [make(client, cast.coach, i) for i in range(6)]
    make(client, cast.coach2, 0, peer_ref="P-0")
    h = cast.supervisor.headers

    def ids(q):
        r = client.get(f"{URL}?{q}", headers=h)
        assert r.status_code == 200, r.get_json()
        return {c["id"] for c in r.get_json()["items"]}

    assert ids(f"coach_id={cast.coach.id}") == {c["id"] for c in made}
    assert ids(f"coach_id={cast.coach.id}&peer_ref=P-0") == {made[0]["id"], made[3]["id"]}
    assert ids(f"coach_id={cast.coach.id}&modality=video") == {made[1]["id"], made[3]["id"], made[5]["id"]}
    assert ids(f"coach_id={cast.coach.id}&behaviour=judging") == {made[0]["id"], made[2]["id"], made[4]["id"]}
    assert ids("from=2025-06-01&to=2025-06-01") == {c["id"] for c in made} | ids("coach_id=" + cast.coach2.id)
    assert ids("from=2025-06-02") == set()
    assert ids(f"coach_id={cast.lone_coach.id}") == set()  # not supervised: nothing, no error


def test_date_filters_use_the_organisation_time_zone(client, world):
    org = world.org(timezone="Europe/London")
    coach = world.user(org, "coach")
    # 23:30 UTC on 30 June is 00:30 on 1 July in London (BST).
    c = make(client, coach, occurred_at="2025-06-30T23:30:00Z")
    got = client.get(f"{URL}?from=2025-07-01&to=2025-07-01", headers=coach.headers).get_json()["items"]
    assert [x["id"] for x in got] == [c["id"]]
    assert client.get(f"{URL}?to=2025-06-30", headers=coach.headers).get_json()["items"] == []


def test_bad_query_parameters_are_422(client, cast):
    h = cast.coach.headers
    for q, field in [
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("limit=abc", "limit"),
        ("limit=1.5", "limit"),
        ("cursor=%%%", "cursor"),
        ("cursor=WyJ4Il0", "cursor"),
        ("from=2025-13-01", "from"),
        ("to=yesterday", "to"),
        ("from=2025-02-02&to=2025-02-01", "from"),
        ("modality=fax", "modality"),
        ("updated_since=2025-01-01T00:00:00", "updated_since"),
        ("updated_since=2025-01-01", "updated_since"),
        ("updated_since=9999-12-31T23:59:59-01:00", "updated_since"),
        ("updated_since=0001-01-01T00:30:00%2B01:00", "updated_since"),
        ("include_deleted=yes", "include_deleted"),
        ("coach_id=xyz", "coach_id"),
        ("peer_ref=a%20b", "peer_ref"),
        ("sort=id", "sort"),
        ("limit=5&limit=6", "limit"),
        ("peer_ref=%00", "peer_ref"),
    ]:
        assert_problem(client.get(f"{URL}?{q}", headers=h), 422, field)


def test_tampered_cursor_is_422(client, cast):
    import base64
    import json

    some_id = str(uuid.uuid4())
    for payload in (["x", "y"], ["2025-01-01T00:00:00Z", "not-a-uuid"], [1, 2], {"a": 1},
                    ["2025-01-01T00:00:00", some_id], ["0001-01-01T00:00:00+01:00", some_id],
                    ["9999-12-31T23:59:59-01:00", some_id], ["2025-01-01", some_id]):
        tok = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")
        assert_problem(client.get(f"{URL}?cursor={tok}", headers=cast.coach.headers), 422, "cursor")


def test_sync_returns_changes_in_update_order_with_tombstones(client, cast, app):
    app.config["SYNC_SETTLE_SECONDS"] = 0
    try:
        a = make(client, cast.coach, 1)
        b = make(client, cast.coach, 2)
        client.patch(f"{URL}/{a['id']}", json={"duration_minutes": 99}, headers=cast.coach.headers)
        client.delete(f"{URL}/{b['id']}", headers=cast.coach.headers)
        since = "2000-01-01T00:00:00Z"
        seen = walk(client, cast.coach, f"&updated_since={since}", limit=1)
        assert [(c["id"], c["deleted"]) for c in seen] == [(a["id"], False), (b["id"], True)]
        keys = [(c["updated_at"], c["id"]) for c in seen]
        assert keys == sorted(keys)
        later = seen[-1]["updated_at"]
        assert [c["id"] for c in walk(client, cast.coach, f"&updated_since={later}")] == [b["id"]]
    finally:
        app.config["SYNC_SETTLE_SECONDS"] = 2


def test_sync_holds_back_changes_younger_than_the_settle_window(client, cast, app):
    app.config["SYNC_SETTLE_SECONDS"] = 3600
    try:
        make(client, cast.coach, 1)
        r = client.get(f"{URL}?updated_since=2000-01-01T00:00:00Z", headers=cast.coach.headers)
        assert r.status_code == 200 and r.get_json()["items"] == []
    finally:
        app.config["SYNC_SETTLE_SECONDS"] = 2


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    n=st.integers(0, 12),
    limit=st.integers(1, 5),
    inserts=st.lists(st.integers(0, 40), max_size=4),
    same_instant=st.booleans(),
)
def test_walking_pages_returns_every_contact_exactly_once_even_with_inserts(
    client, world, n, limit, inserts, same_instant
):
    org = world.org()
    coach = world.user(org, "coach")
    existing = [make(client, coach, 0 if same_instant else i, peer_ref=f"E-{i}")["id"] for i in range(n)]
    seen, url, page = [], f"{URL}?limit={limit}", 0
    while url:
        data = client.get(url, headers=coach.headers).get_json()
        seen.extend(c["id"] for c in data["items"])
        if page < len(inserts):  # a new contact arrives between pages
            make(client, coach, inserts[page], peer_ref=f"N-{page}")
        page += 1
        url = f"{URL}?limit={limit}&cursor={data['next_cursor']}" if data["next_cursor"] else None
    assert len(seen) == len(set(seen)), "a contact was returned twice"
    assert set(existing) <= set(seen), "a contact that existed before paging was missed"


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    writers=st.lists(st.integers(0, 2), max_size=14),
    limit=st.integers(1, 5),
    inserts=st.lists(st.integers(0, 2), max_size=4),
    same_instant=st.booleans(),
    sync=st.booleans(),
)
def test_a_supervisor_walks_their_coaches_contacts_once_each_in_order(
    app, client, world, writers, limit, inserts, same_instant, sync
):
    """A supervisor's listing is merged from each coach's first rows (``_first_rows``): walking
    it gives every contact of the supervised coaches once, none of another coach's, in listing
    order (the organisation's listing filtered to them when nothing arrives meanwhile), also
    while contacts arrive between pages."""
    org = world.org()
    admin, sup = world.user(org, "admin"), world.user(org, "supervisor")
    coaches = [world.user(org, "coach") for _ in range(3)]  # the third is in no team of sup
    world.team(org, supervisors=[sup], coaches=coaches[:2])
    mine = {coaches[0].id, coaches[1].id}
    made = [make(client, coaches[w], 0 if same_instant else i) for i, w in enumerate(writers)]
    query = "&updated_since=2000-01-01T00:00:00Z" if sync else ""
    app.config["SYNC_SETTLE_SECONDS"] = 0
    try:
        seen, url, page = [], f"{URL}?limit={limit}{query}", 0
        while url:
            data = client.get(url, headers=sup.headers).get_json()
            seen.extend(data["items"])
            if page < len(inserts):  # a new contact arrives between pages
                make(client, coaches[inserts[page]], page)
            page += 1
            url = f"{URL}?limit={limit}{query}&cursor={data['next_cursor']}" if data["next_cursor"] else None
        everything = walk(client, admin, query, limit=200)
    finally:
        app.config["SYNC_SETTLE_SECONDS"] = 2
    ids = [c["id"] for c in seen]
    assert len(ids) == len(set(ids)), "a contact was returned twice"
    assert all(c["coach_id"] in mine for c in seen), "another coach's contact was listed"
    assert {c["id"] for c in made if c["coach_id"] in mine} <= set(ids), "a contact was missed"
    keys = [(c["updated_at"], c["id"]) if sync else (c["occurred_at"], c["id"]) for c in seen]
    assert keys == sorted(keys, reverse=not sync)
    if not inserts:
        assert ids == [c["id"] for c in everything if c["coach_id"] in mine]


def test_a_supervisor_of_many_coaches_gets_the_same_listing_from_one_statement(client, world, monkeypatch):
    """Past ``MAX_COACHES_MERGED`` coaches the listing is one ``coach_id IN`` statement: the same
    pages, in the same order, as the merged one."""
    from rapportnotes.services import contacts as svc

    org = world.org()
    sup = world.user(org, "supervisor")
    coaches = [world.user(org, "coach") for _ in range(3)]
    world.team(org, supervisors=[sup], coaches=coaches)
    for i in range(9):
        make(client, coaches[i % 3], i // 2)  # some instants shared across coaches
    merged = walk(client, sup, limit=2)
    monkeypatch.setattr(svc, "MAX_COACHES_MERGED", 2)
    assert walk(client, sup, limit=2) == merged and len(merged) == 9


# --- idempotency ------------------------------------------------------------------------------


def test_idempotent_retry_replays_and_creates_nothing(client, cast, world):
    h = {**cast.coach.headers, "Idempotency-Key": "retry-1"}
    body = {
        "peer_ref": "P",
        "occurred_at": "2025-01-01T10:00:00Z",
        "duration_minutes": 5,
        "modality": "phone",
    }
    first = client.post(URL, json=body, headers=h)
    again = client.post(URL, json=body, headers=h)
    assert first.status_code == again.status_code == 201
    assert again.get_json() == first.get_json()
    assert again.headers["Location"] == first.headers["Location"] and again.headers["ETag"] == '"1"'
    assert world.count(Contact) == 1
    assert_problem(client.post(URL, json={**body, "duration_minutes": 6}, headers=h), 422, "Idempotency-Key")
    assert world.count(Contact) == 1
    # Keys are per caller: another coach may use the same key.
    other = client.post(URL, json=body, headers={**cast.coach2.headers, "Idempotency-Key": "retry-1"})
    assert other.status_code == 201 and other.get_json()["id"] != first.get_json()["id"]
    assert world.count(Contact) == 2
    assert ("contact.create", 201) in world.audit_actions(cast.org)


def test_bad_idempotency_keys_are_422(client, cast, world):
    body = {
        "peer_ref": "P",
        "occurred_at": "2025-01-01T10:00:00Z",
        "duration_minutes": 5,
        "modality": "phone",
    }
    for key in ("", "has space", "x" * 256, "caf\u00e9"):
        h = {**cast.coach.headers, "Idempotency-Key": key}
        assert_problem(client.post(URL, json=body, headers=h), 422, "Idempotency-Key")
    assert world.count(Contact) == 0


def test_expired_key_is_treated_as_new(client, cast, world):
    h = {**cast.coach.headers, "Idempotency-Key": "old"}
    body = {
        "peer_ref": "P",
        "occurred_at": "2025-01-01T10:00:00Z",
        "duration_minutes": 5,
        "modality": "phone",
    }
    client.post(URL, json=body, headers=h)

    def expire(s):
        for rec in s.query(IdempotencyRecord):
            rec.expires_at = datetime.now(UTC) - timedelta(seconds=1)

    world.run(expire)
    assert client.post(URL, json=body, headers=h).status_code == 201
    assert world.count(Contact) == 2 and world.count(IdempotencyRecord) == 1


def test_concurrent_duplicate_posts_never_make_two_contacts(app, cast, world):
    body = {
        "peer_ref": "P",
        "occurred_at": "2025-01-01T10:00:00Z",
        "duration_minutes": 5,
        "modality": "phone",
    }
    h = {**cast.coach.headers, "Idempotency-Key": f"race-{uuid.uuid4()}"}
    results = race(app, [lambda c: c.post(URL, json=body, headers=h)] * 4)
    statuses = sorted(r.status_code for r in results)
    assert all(s in (201, 409) for s in statuses), statuses
    assert world.count(Contact) == 1
    ids = {r.get_json()["id"] for r in results if r.status_code == 201}
    assert len(ids) == 1


def test_concurrent_patches_with_the_same_etag_one_wins(app, client, cast, world):
    c = make(client, cast.coach, 1)
    h = {**cast.coach.headers, "If-Match": '"1"'}
    results = race(app, [lambda cl: cl.patch(f"{URL}/{c['id']}", json={"duration_minutes": 77},
                                             headers=h)] * 4)
    statuses = sorted(r.status_code for r in results)
    assert statuses.count(200) == 1 and statuses.count(412) == 3, statuses
    got = client.get(f"{URL}/{c['id']}", headers=cast.coach.headers).get_json()
    assert got["version"] == 2


def _history(world, org: str, coach: str, n: int) -> None:
    """``n`` contacts with distinct occurred_at and updated_at, written directly."""
    from datetime import date

    then = datetime(2024, 1, 1, tzinfo=UTC)
    rows = [
        {"organisation_id": uuid.UUID(org), "id": uuid.uuid4(), "coach_id": uuid.UUID(coach),
         "peer_ref": f"P-{i % 40}", "occurred_at": then + timedelta(minutes=i),
         "local_date": date(2024, 1, 1),
         "duration_minutes": 30, "modality": "phone", "setting": None, "notes": None, "peer_rating": None,
         "external_id": None, "created_at": then, "updated_at": then + timedelta(seconds=i), "version": 1,
         "deleted": False, "deleted_at": None}
        for i in range(n)
    ]
    world.run(lambda s: s.connection().execute(Contact.__table__.insert(), rows))


@pytest.mark.postgres
@pytest.mark.parametrize("query", ["", "&updated_since=2023-01-01T00:00:00Z"])
def test_a_deep_page_reads_from_its_cursor_not_from_the_start(app, client, cast, world, query, monkeypatch):
    """The keyset condition is a row comparison, ``(t, id)`` past the cursor's, which the index
    ranges over directly: the scan starts at the cursor. Written as ``t > a OR (t = a AND id > b)``
    it could not, and page k of a listing or of a sync read and threw away every row of pages
    1..k-1 again."""
    monkeypatch.setitem(app.config, "SYNC_SETTLE_SECONDS", 0)
    _history(world, cast.org, cast.coach.id, 3000)
    assert_deep_page_starts_at_its_cursor(app, client, f"{URL}?limit=200{query}", cast.coach.headers,
                                          "contacts")


@pytest.mark.postgres
def test_a_write_stalled_past_the_settle_window_is_not_skipped_by_sync(app, client, cast, monkeypatch):
    """Found by a data-loss pass: an edit stamped, then held up longer than the settle window
    before committing, landed behind a cursor that had moved past a later change: the client
    never saw it. The sync horizon now also stops short of the oldest open transaction."""
    import threading
    import time

    import rapportnotes.api.contacts as view

    monkeypatch.setitem(app.config, "SYNC_SETTLE_SECONDS", 0.2)
    a = make(client, cast.coach, 1)
    time.sleep(0.3)
    mirror = {c["id"]: c for c in walk(client, cast.admin, "&updated_since=2000-01-01T00:00:00Z")}
    stalled, real = threading.Event(), view.record_event

    def stall(session, actor, action, **kw):
        if action == "contact.update":
            stalled.set()
            time.sleep(1.5)  # a worker paused after stamping updated_at, before its commit
        return real(session, actor, action, **kw)

    monkeypatch.setattr(view, "record_event", stall)
    edit = threading.Thread(target=lambda: app.test_client().patch(
        f"{URL}/{a['id']}", json={"duration_minutes": 77}, headers=cast.coach.headers))
    edit.start()
    assert stalled.wait(5)
    make(client, cast.coach2, 2)  # a later change that commits at once
    time.sleep(0.4)
    mark = max(c["updated_at"] for c in mirror.values())
    mirror |= {c["id"]: c for c in walk(client, cast.admin, f"&updated_since={mark}")}
    edit.join(10)
    time.sleep(0.3)
    mark = max(c["updated_at"] for c in mirror.values())
    mirror |= {c["id"]: c for c in walk(client, cast.admin, f"&updated_since={mark}")}
    assert mirror[a["id"]]["duration_minutes"] == 77 and len(mirror) == 2


def _a_held_create_reaches_sync(app, client, cast, hook, hold) -> None:
    """A contact logged in a thread named "held", which ``hold`` (called with the arguments of
    the point ``hook`` installs a listener at; it returns True once it has held that thread)
    stalls for 1.5 s, past the 0.2 s settle window, while a later contact commits: a sync taken
    meanwhile and one resumed from it afterwards must between them see every contact.
    ``hook(listener)`` installs the listener and returns a function that removes it."""
    import threading
    import time

    make(client, cast.coach2, 0)  # the organisation's zone is known: the create is one statement
    held = threading.Event()

    def listener(*args):
        if threading.current_thread().name == "held" and not held.is_set() and hold(*args):
            held.set()
            time.sleep(1.5)

    unhook = hook(listener)
    try:
        results = []
        create = threading.Thread(name="held", target=lambda: results.append(
            app.test_client().post(URL, json={"peer_ref": "P-W", "occurred_at": BASE.isoformat(),
                                              "duration_minutes": 5, "modality": "phone"},
                                   headers=cast.coach.headers)))
        create.start()
        assert held.wait(5)
        make(client, cast.coach2, 1)  # a later contact that commits at once
        time.sleep(0.4)
        mirror = {c["id"]: c for c in walk(client, cast.admin, "&updated_since=2000-01-01T00:00:00Z")}
        create.join(10)
    finally:
        unhook()
    assert results and results[0].status_code == 201
    time.sleep(0.3)
    mark = max(c["updated_at"] for c in mirror.values())
    mirror |= {c["id"]: c for c in walk(client, cast.admin, f"&updated_since={mark}")}
    assert results[0].get_json()["id"] in mirror and len(mirror) == 3


@pytest.mark.postgres
def test_a_create_waiting_for_a_pooled_connection_is_not_skipped_by_sync(app, client, cast, monkeypatch):
    """Found by a sync pass: the one-statement create stamped ``updated_at`` before it checked a
    connection out of the pool; a wait there (a busy pool waits up to DB_POOL_TIMEOUT_S) is no
    open transaction, so the sync horizon did not hold back for it, and the contact landed
    behind a cursor that a later contact had already moved past."""
    from rapportnotes.extensions import db

    monkeypatch.setitem(app.config, "SYNC_SETTLE_SECONDS", 0.2)
    with app.app_context():
        pool = db.engine.pool
    _a_held_create_reaches_sync(app, client, cast, _event_hook(pool, "checkout"), lambda *_: True)


@pytest.mark.postgres
def test_a_create_paused_just_before_its_statement_is_not_skipped_by_sync(app, client, cast, monkeypatch):
    """Found by a soak with paused workers: the one-statement create stamped ``updated_at`` in
    Python just before sending the statement, which is its own transaction. A pause there
    longer than the settle window (a stopped or starved worker) is no open transaction either,
    and the contact committed behind a cursor already past its stamp. The stamp is now the
    statement's own transaction start, taken by PostgreSQL."""
    from rapportnotes import driver

    monkeypatch.setitem(app.config, "SYNC_SETTLE_SECONDS", 0.2)

    def before_the_statement(listener):  # the statement goes to the driver (rapportnotes.driver)
        run = driver.fetch_autocommit

        def held_then_run(engine, statement, params):
            listener(statement)
            return run(engine, statement, params)

        monkeypatch.setattr(driver, "fetch_autocommit", held_then_run)
        return lambda: monkeypatch.setattr(driver, "fetch_autocommit", run)

    def the_create_statement(statement) -> bool:
        return str(statement).lstrip().upper().startswith(("WITH", "INSERT"))

    _a_held_create_reaches_sync(app, client, cast, before_the_statement, the_create_statement)


def _event_hook(target, event_name: str):
    """A ``hook`` for ``_a_held_create_reaches_sync``: a SQLAlchemy event listener."""
    from sqlalchemy import event

    def install(listener):
        event.listen(target, event_name, listener)
        return lambda: event.remove(target, event_name, listener)

    return install


@pytest.mark.postgres
def test_the_sync_horizon_follows_the_database_clock_when_it_is_behind(app, monkeypatch):
    """Creates are stamped by PostgreSQL: with this host's clock ahead of the database's by more
    than the settle window, a horizon read from the host's clock alone would let a create that
    starts after the page stamp itself below it."""
    from sqlalchemy import text

    from rapportnotes.extensions import db
    from rapportnotes.services import contacts as svc

    ahead = datetime.now(UTC) + timedelta(hours=1)
    monkeypatch.setattr(svc, "utcnow", lambda: ahead)
    with app.app_context():
        horizon = svc.sync_horizon(db.session, timedelta(seconds=2))
        database_now = db.session.execute(text("SELECT clock_timestamp()")).scalar()
        db.session.rollback()
    assert horizon <= database_now - timedelta(seconds=2)


@pytest.mark.sqlite  # PostgreSQL's open transactions hold sync back instead (tests above)
@pytest.mark.parametrize("change", ["create", "edit", "delete"])
def test_a_write_waiting_for_the_sqlite_lock_is_not_skipped_by_sync(app, client, cast, change, monkeypatch):
    """Found by a sync pass: on SQLite a write stamped ``updated_at``, then waited for the write
    lock (up to the 5 s busy timeout, past the settle window) while another writer committed a
    later stamp; a client whose cursor passed that later change never saw this one. The lock
    is now taken before the stamp."""
    import sqlite3
    import threading
    import time

    monkeypatch.setitem(app.config, "SYNC_SETTLE_SECONDS", 0.2)
    first = make(client, cast.coach, 0)
    path = app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///")
    other = sqlite3.connect(path, isolation_level=None, timeout=10, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # another writer holds the lock
    request = {
        "create": lambda c: c.post(URL, json={"peer_ref": "WAITED", "occurred_at": BASE.isoformat(),
                                              "duration_minutes": 5, "modality": "phone"},
                                   headers=cast.coach.headers),
        "edit": lambda c: c.patch(f"{URL}/{first['id']}", json={"duration_minutes": 77},
                                  headers=cast.coach.headers),
        "delete": lambda c: c.delete(f"{URL}/{first['id']}", headers=cast.coach.headers),
    }[change]
    results = []
    waiting = threading.Thread(target=lambda: results.append(request(app.test_client())))
    waiting.start()
    time.sleep(0.3)  # the request is waiting for the lock
    now = datetime.now(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
    org, coach, day = other.execute("SELECT organisation_id, coach_id, local_date FROM contacts").fetchone()
    other.execute("INSERT INTO contacts (organisation_id, id, coach_id, peer_ref, occurred_at, local_date,"
                  " duration_minutes, modality, created_at, updated_at, version, deleted)"
                  " VALUES (?, ?, ?, 'LATER', ?, ?, 5, 'phone', ?, ?, 1, 0)",
                  (org, uuid.uuid4().hex, coach, now, day, now, now))
    other.execute("COMMIT")  # a later change commits first,
    other.execute("BEGIN IMMEDIATE")  # and the lock is taken again before the waiter polls
    releaser = threading.Timer(1.2, lambda: (other.execute("COMMIT"), other.close()))
    releaser.start()
    time.sleep(0.4)
    mirror = {c["id"]: c for c in walk(client, cast.admin, "&updated_since=2000-01-01T00:00:00Z")}
    releaser.join()
    waiting.join(10)
    assert results and results[0].status_code in (201, 200, 204), results
    time.sleep(0.3)
    mark = max(c["updated_at"] for c in mirror.values())
    mirror |= {c["id"]: c for c in walk(client, cast.admin, f"&updated_since={mark}")}
    changed = results[0].get_json()["id"] if change == "create" else first["id"]
    assert changed in mirror
    if change == "edit":
        assert mirror[changed]["duration_minutes"] == 77
    if change == "delete":
        assert mirror[changed]["deleted"] is True
