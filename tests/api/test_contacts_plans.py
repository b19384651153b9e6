"""Contact listings read an index range of what they return, not the organisation's history.

Each case fills one organisation with a history where the listing asks for a small part of it,
runs ANALYZE, then explains the statement the request sent: on PostgreSQL it must discard few
rows (``Rows Removed by Filter``) and never scan the table; on SQLite the index search must be
constrained by the filtered column.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from rapportnotes.extensions import db
from rapportnotes.models import Contact
from tests.support.statements import analyze_and_capture, plan_nodes

URL = "/api/v1/contacts"
N = 3000


def _history(world, org: str, coaches: list[str]) -> None:
    """``N`` contacts one hour apart, the first coach writing one in twenty, 40 peers."""
    then = datetime(2020, 1, 1, tzinfo=UTC)
    rows = []
    for i in range(N):
        at = then + timedelta(hours=i)
        rows.append({
            "organisation_id": uuid.UUID(org), "id": uuid.uuid4(),
            "coach_id": uuid.UUID(coaches[0] if i % 20 == 0 else coaches[1]),
            "peer_ref": f"P-{i % 40}", "occurred_at": at, "local_date": at.date(),
            "duration_minutes": 30, "modality": "phone", "setting": None, "notes": None,
            "peer_rating": None, "external_id": None, "created_at": at,
            "updated_at": at + timedelta(seconds=1), "version": 1, "deleted": False, "deleted_at": None})
    world.run(lambda s: s.connection().execute(Contact.__table__.insert(), rows))


def _listing_plan(app, client, backend: str, url: str, headers: dict) -> str:
    statement, params = analyze_and_capture(app, client, url, headers, "contacts")
    with app.app_context(), db.engine.connect() as conn:
        if backend == "postgresql":
            plan = conn.exec_driver_sql("EXPLAIN (ANALYZE, FORMAT JSON) " + statement, params).scalar()
            conn.rollback()
            return json.dumps(plan)
        rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params).all()
        return "\n".join(r[-1] for r in rows)


def _removed(plan: str) -> int:
    nodes = list(plan_nodes(json.loads(plan)[0]["Plan"]))
    assert not any(n["Node Type"] == "Seq Scan" for n in nodes), plan
    return sum(n.get("Rows Removed by Filter", 0) for n in nodes)


@pytest.mark.parametrize("case", ["coach_sync", "peer_ref", "old_period", "supervisor", "supervisor_sync"])
def test_a_filtered_listing_reads_only_around_what_it_returns(app, client, cast, world, backend, case,
                                                              monkeypatch):
    monkeypatch.setitem(app.config, "SYNC_SETTLE_SECONDS", 0)
    # The supervisor's coaches (coach, coach2) wrote one contact in twenty: the rest is lone_coach's.
    bulk = cast.lone_coach if case.startswith("supervisor") else cast.coach2
    _history(world, cast.org, [cast.coach.id, bulk.id])
    who, query, sqlite_search = {
        "coach_sync": (cast.coach, "updated_since=2000-01-01T00:00:00Z", "coach_id=? AND updated_at>"),
        "peer_ref": (cast.admin, "peer_ref=P-7", "peer_ref=?"),
        "old_period": (cast.admin, "from=2020-01-10&to=2020-01-11", None),  # SQLite skip-scans by coach
        "supervisor": (cast.supervisor, "include_deleted=false", "coach_id=?"),
        "supervisor_sync": (cast.supervisor, "updated_since=2000-01-01T00:00:00Z", "coach_id=?"),
    }[case]
    plan = _listing_plan(app, client, backend, f"{URL}?limit=20&{query}", who.headers)
    if backend == "postgresql":
        assert _removed(plan) <= 60, plan  # a day either side of a period at most, not the history
    else:
        assert "SCAN contacts" not in plan and (sqlite_search is None or sqlite_search in plan), plan
