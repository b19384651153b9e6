"""Retention: ``rapportnotes purge --older-than DAYS``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from rapportnotes.models import AuditEvent, Contact, ContactBehaviour, IdempotencyRecord


def _contact(client, user, **over):
    b = {
        "peer_ref": "P",
        "occurred_at": "2025-01-01T10:00:00Z",
        "duration_minutes": 5,
        "modality": "phone",
        "behaviours": ["hope"],
    }
    b.update(over)
    return client.post("/api/v1/contacts", json=b, headers=user.headers).get_json()


def test_purge_removes_only_old_tombstones_and_expired_keys_and_is_audited(client, cast, world, runner):
    old = _contact(client, cast.coach)
    recent = _contact(client, cast.coach)
    live = _contact(client, cast.coach)
    client.post(
        "/api/v1/contacts",
        headers={**cast.coach.headers, "Idempotency-Key": "k"},
        json={
            "peer_ref": "P",
            "occurred_at": "2025-01-01T10:00:00Z",
            "duration_minutes": 5,
            "modality": "phone",
        },
    )
    for c in (old, recent):
        assert client.delete(f"/api/v1/contacts/{c['id']}", headers=cast.coach.headers).status_code == 204

    def age(s):
        row = s.get(Contact, (__import__("uuid").UUID(cast.org), __import__("uuid").UUID(old["id"])))
        row.deleted_at = datetime.now(UTC) - timedelta(days=40)
        for rec in s.scalars(select(IdempotencyRecord)):
            rec.expires_at = datetime.now(UTC) - timedelta(hours=1)

    world.run(age)
    before = world.count(Contact)
    result = runner.invoke(args=["purge", "--older-than", "30"])
    assert result.exit_code == 0, result.output
    assert "contacts=1" in result.output and "idempotency_records=1" in result.output
    assert world.count(Contact) == before - 1
    remaining = world.run(lambda s: {str(i) for i in s.scalars(select(Contact.id))})
    assert old["id"] not in remaining and {recent["id"], live["id"]} <= remaining
    tags = world.run(lambda s: {str(c) for c in s.scalars(select(ContactBehaviour.contact_id))})
    assert old["id"] not in tags  # tags go with the contact
    events = world.run(
        lambda s: [
            (e.action, e.actor_type, e.target_id)
            for e in s.scalars(select(AuditEvent).where(AuditEvent.action == "contacts.purge"))
        ]
    )
    assert events == [("contacts.purge", "system", "count=1")]


@pytest.mark.parametrize("args", [["--older-than", "-1"], [], ["--older-than", "36501"],
                                  ["--older-than", "800000"], ["--older-than", "999999999999"]])
def test_purge_rejects_an_age_out_of_range(runner, world, args):
    result = runner.invoke(args=["purge", *args])
    assert result.exit_code == 2, result.output  # a usage error, not a crash
    assert "Traceback" not in result.output


@pytest.mark.postgres
@pytest.mark.parametrize("command", [["purge", "--older-than", "30"], ["db", "upgrade"]])
def test_operator_commands_are_not_cut_short_by_the_request_statement_timeout(database_url, app, command,
                                                                            monkeypatch):
    """A purge over years of tombstones, or a migration building an index on a large table, runs
    longer than a request may (``DB_STATEMENT_TIMEOUT_MS``); requests keep that limit."""
    from sqlalchemy import event, text
    from sqlalchemy.exc import OperationalError

    from rapportnotes.extensions import db
    from tests.conftest import make_app

    quick = make_app(database_url, DB_STATEMENT_TIMEOUT_MS=100)
    with quick.app_context():
        def slow(connection, cursor, statement, *_args):
            if not connection.info.get("slept") and not statement.startswith("SET"):
                connection.info["slept"] = True  # once per connection: a long statement
                cursor.execute("SELECT pg_sleep(0.3)")

        event.listen(db.engine, "before_cursor_execute", slow)
        try:
            result = quick.test_cli_runner().invoke(args=command)
            assert result.exit_code == 0, result.output
            with db.engine.connect() as conn:  # a request's connection still has the limit
                conn.info["slept"] = True
                assert conn.execute(text("SHOW statement_timeout")).scalar() == "100ms"
                with pytest.raises(OperationalError):
                    conn.exec_driver_sql("SELECT pg_sleep(0.3)")
        finally:
            event.remove(db.engine, "before_cursor_execute", slow)
            db.engine.dispose()


def test_purge_reads_the_tombstones_not_the_history(app, world, backend):
    """``purge`` finds an organisation's old tombstones through ``ix_contacts_org_tombstones``:
    its work follows the tombstones, not years of live contacts (it scanned every contact)."""
    import json
    import uuid

    from sqlalchemy import event, text

    from rapportnotes.extensions import db
    from rapportnotes.services.retention import purge
    from tests.support.statements import plan_nodes

    org = world.org()
    coach = world.user(org, "coach")
    then = datetime(2020, 1, 1, tzinfo=UTC)
    rows = [{"organisation_id": uuid.UUID(org), "id": uuid.uuid4(), "coach_id": uuid.UUID(coach.id),
             "peer_ref": "P", "occurred_at": then + timedelta(hours=i), "local_date": then.date(),
             "duration_minutes": 5, "modality": "phone", "setting": None, "notes": None, "peer_rating": None,
             "external_id": None, "created_at": then, "updated_at": then, "version": 1,
             "deleted": i % 500 == 0, "deleted_at": then if i % 500 == 0 else None} for i in range(3000)]
    world.run(lambda s: s.connection().execute(Contact.__table__.insert(), rows))
    seen = []

    def spy(conn, cursor, statement, params, context, executemany):
        if statement.lstrip().upper().startswith("SELECT") and "FROM contacts" in statement:
            seen.append((statement, params))

    with app.app_context():
        db.session.execute(text("ANALYZE contacts"))
        db.session.commit()
        event.listen(db.engine, "before_cursor_execute", spy)
        try:
            assert purge(db.session, 30)["contacts"] == 6
            db.session.rollback()  # keep the rows: the plan is explained against them below
        finally:
            event.remove(db.engine, "before_cursor_execute", spy)
        statement, params = next((s, p) for s, p in seen if "deleted_at" in s)
        with db.engine.connect() as conn:
            if backend == "postgresql":
                plan = conn.exec_driver_sql("EXPLAIN (ANALYZE, FORMAT JSON) " + statement, params).scalar()
                nodes, shown = list(plan_nodes(plan[0]["Plan"])), json.dumps(plan)
                assert any(n.get("Index Name") == "ix_contacts_org_tombstones" for n in nodes), shown
                assert not any(n["Node Type"] == "Seq Scan" for n in nodes), shown
            else:
                plan = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params).all()
                shown = " ".join(r[-1] for r in plan)
                assert "ix_contacts_org_tombstones" in shown, shown
