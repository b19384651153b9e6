"""services.audit: events join the caller's transaction; the table is append-only."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from rapportnotes.models import AuditEvent
from rapportnotes.services.audit import Actor, list_events_query, record_event


def _actor(org_id: str) -> Actor:
    return Actor(uuid.UUID(org_id), "user", "u-1", request_id="r-1", ip="10.0.0.1")


def test_record_event_joins_the_callers_transaction(app, world):
    from rapportnotes.extensions import db

    org = world.org()
    with app.app_context():
        record_event(db.session, _actor(org), "thing.do")
        db.session.rollback()  # the caller's change fails: its event goes with it
        db.session.remove()
    assert world.count(AuditEvent) == 0


def test_record_event_fills_every_field(world):
    org = world.org()
    target = uuid.uuid4()
    world.run(lambda s: record_event(s, _actor(org), "thing.do", target_type="thing", target_id=target))
    world.run(lambda s: record_event(s, _actor(org), "thing.make", status=201))
    rows = world.run(lambda s: [
        (e.organisation_id, e.actor_type, e.actor_id, e.action, e.target_type, e.target_id, e.status,
         e.request_id, e.ip, e.at) for e in s.scalars(select(AuditEvent).order_by(AuditEvent.at))])
    assert [r[:9] for r in rows] == [
        (uuid.UUID(org), "user", "u-1", "thing.do", "thing", str(target), 200, "r-1", "10.0.0.1"),
        (uuid.UUID(org), "user", "u-1", "thing.make", None, None, 201, "r-1", "10.0.0.1"),
    ]
    assert all(r[9].tzinfo is not None and datetime.now(UTC) - r[9] < timedelta(seconds=30) for r in rows)


def test_list_events_query_scopes_filters_and_orders(world):
    org, other = world.org(), world.org()
    base = datetime(2025, 5, 1, tzinfo=UTC)

    def seed(s):
        for i in range(6):
            s.add(AuditEvent(organisation_id=uuid.UUID(org), id=uuid.uuid4(), at=base + timedelta(hours=i),
                             actor_type="user", action=f"a.{i % 2}", target_id=f"t{i % 3}", status=200))
        s.add(AuditEvent(organisation_id=uuid.UUID(other), id=uuid.uuid4(), at=base, actor_type="user",
                         action="a.0", status=200))

    world.run(seed)

    def ask(**kw):
        return world.run(lambda s: [(e.action, e.target_id, e.at) for e in s.scalars(
            list_events_query(uuid.UUID(org), **kw))])

    everything = ask()
    assert [e[2] for e in everything] == [base + timedelta(hours=i) for i in range(5, -1, -1)]
    assert [e[0] for e in ask(action="a.1")] == ["a.1"] * 3
    assert len(ask(target_id="t0")) == 2
    assert ask(actor_id="nobody") == []
    assert [e[2] for e in ask(since=base + timedelta(hours=4))] == [base + timedelta(hours=5),
                                                                    base + timedelta(hours=4)]
    assert len(ask(until=base + timedelta(hours=1))) == 1  # exclusive upper bound
    assert len(ask(limit=2)) == 2


def test_audit_table_is_append_only_on_every_database(app, world):
    """SPEC §4: append-only. PostgreSQL refuses UPDATE and DELETE with a trigger (0001), SQLite
    with two (0005): through raw SQL and through the ORM alike."""
    from rapportnotes.extensions import db

    org = world.org()
    world.run(lambda s: record_event(s, _actor(org), "thing.do"))
    statements = ["UPDATE audit_events SET action = 'forged'", "DELETE FROM audit_events"]
    with app.app_context():
        for sql in statements:
            with pytest.raises(DBAPIError, match="append-only"):
                db.session.execute(text(sql))
            db.session.rollback()
        event = db.session.scalar(select(AuditEvent))
        event.action = "forged"
        with pytest.raises(DBAPIError, match="append-only"):
            db.session.commit()
        db.session.rollback()
        db.session.delete(db.session.scalar(select(AuditEvent)))
        with pytest.raises(DBAPIError, match="append-only"):
            db.session.commit()
        db.session.rollback()
        assert db.session.scalar(select(func.count()).select_from(AuditEvent)) == 1
        assert db.session.scalar(select(AuditEvent.action)) == "thing.do"
        db.session.remove()


@pytest.mark.sqlite
def test_a_clean_up_failing_midway_leaves_the_append_only_triggers_in_place(app, world):
    """The harness sets SQLite's append-only triggers aside to empty the tables between tests;
    if that fails midway, they must come back with the rollback, or every later test in the session
    would run against an audit table that takes UPDATE and DELETE."""
    from rapportnotes.extensions import db
    from tests.conftest import truncate_all

    def triggers() -> int:
        with app.app_context(), db.engine.connect() as conn:
            return conn.scalar(text("SELECT count(*) FROM sqlite_master WHERE type = 'trigger'"
                                    " AND tbl_name = 'audit_events'"))

    org = world.org()
    world.run(lambda s: record_event(s, _actor(org), "thing.do"))
    with app.app_context(), db.engine.begin() as conn:  # a row the clean-up cannot delete past
        conn.execute(text("CREATE TABLE h7_holds_an_org (org_id CHAR(32) REFERENCES organisations (id))"))
        conn.execute(text("INSERT INTO h7_holds_an_org VALUES (:org)"), {"org": uuid.UUID(org).hex})
    try:
        with pytest.raises(DBAPIError, match="FOREIGN KEY"):
            truncate_all(app)
        assert triggers() == 2
        assert world.count(AuditEvent) == 1  # the clean-up rolled back as a whole
    finally:
        with app.app_context(), db.engine.begin() as conn:
            conn.execute(text("DROP TABLE h7_holds_an_org"))
