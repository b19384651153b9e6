"""``rapportnotes purge`` run twice at once (a slow run still going when cron starts the next):
each tombstone is removed once, and the audit trail and the output count it once (SPEC §3)."""

from __future__ import annotations

import contextlib
import threading
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from rapportnotes.models import AuditEvent, Contact
from rapportnotes.services import retention
from tests.support.race import in_app_threads


def _tombstones(client, coach, n):
    ids = []
    for _ in range(n):
        r = client.post("/api/v1/contacts", headers=coach.headers, json={
            "peer_ref": "P", "occurred_at": "2025-01-01T10:00:00Z", "duration_minutes": 5,
            "modality": "phone", "behaviours": ["hope"]})
        ids.append(r.get_json()["id"])
        assert client.delete(f"/api/v1/contacts/{ids[-1]}", headers=coach.headers).status_code == 204
    return ids


def test_two_purges_at_once_count_each_tombstone_once(app, client, cast, world, monkeypatch):
    _tombstones(client, cast.coach, 3)
    world.run(lambda s: s.execute(update(Contact).where(Contact.organisation_id == uuid.UUID(cast.org))
                                  .values(deleted_at=datetime.now(UTC) - timedelta(days=40))))
    # Both runs have found the tombstones before either removes them (or a second has passed: a
    # run that waits for the other one never comes).
    both_found, this_run = threading.Barrier(2, timeout=1), threading.local()
    real_delete = retention.delete

    def found_then_delete(*args):  # the first delete of a run comes after its first batch's lookup
        if not getattr(this_run, "found", False):
            this_run.found = True
            with contextlib.suppress(threading.BrokenBarrierError):
                both_found.wait()
        return real_delete(*args)

    monkeypatch.setattr(retention, "delete", found_then_delete)
    def purge_and_commit() -> int:
        from rapportnotes.extensions import db

        count = retention.purge(db.session, 30)["contacts"]
        db.session.commit()
        return count

    counts = in_app_threads(app, purge_and_commit)
    assert sorted(counts, key=str) == [0, 3]
    assert world.count(Contact) == 0
    events = world.run(lambda s: s.scalars(select(AuditEvent.target_id)
                                           .where(AuditEvent.action == "contacts.purge")).all())
    assert events == ["count=3"]
