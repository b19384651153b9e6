"""Reports over HTTP: shape, defaults, validation, who may read, CSV, audit, and the plan."""

from __future__ import annotations

import csv
import io
import re
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import delete, select

from rapportnotes.models import AuditEvent
from rapportnotes.services.timezones import today
from tests.support.callers import deactivate, make_admin, move_generation, revoke_token
from tests.support.problems import assert_problem
from tests.support.statements import Statements, assert_pool_back_in_transactions

MODS = ["in_person", "phone", "video", "text", "other"]


def log(client, user, when, **over):
    b = {
        "peer_ref": "P-1",
        "occurred_at": when,
        "duration_minutes": 30,
        "modality": "phone",
        "behaviours": ["empathy", "judging"],
        "peer_rating": 7,
    }
    b.update(over)
    r = client.post("/api/v1/contacts", json=b, headers=user.headers)
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def coach_url(cid, **q):
    qs = "&".join(f"{k}={v}" for k, v in q.items())
    return f"/api/v1/coaches/{cid}/report" + (f"?{qs}" if qs else "")


def test_coach_report_shape_and_numbers(client, cast):
    log(client, cast.coach, "2025-03-03T10:00:00Z", peer_rating=8)
    log(
        client,
        cast.coach,
        "2025-03-04T10:00:00Z",
        peer_ref="P-2",
        modality="video",
        behaviours=["hope"],
        duration_minutes=45,
        peer_rating=None,
    )
    log(client, cast.coach, "2025-03-12T10:00:00Z", peer_rating=5, behaviours=[])
    gone = log(client, cast.coach, "2025-03-05T10:00:00Z")
    client.delete(f"/api/v1/contacts/{gone['id']}", headers=cast.coach.headers)
    log(client, cast.coach, "2025-02-28T10:00:00Z")  # outside the period
    r = client.get(
        coach_url(cast.coach.id, **{"from": "2025-03-01", "to": "2025-03-14"}),
        headers=cast.supervisor.headers,
    )
    assert r.status_code == 200, r.get_json()
    rep = r.get_json()
    assert rep["coach"]["id"] == cast.coach.id and rep["bucket"] == "week"
    assert (rep["from"], rep["to"]) == ("2025-03-01", "2025-03-14")
    assert rep["totals"] == {
        "contacts": 3,
        "minutes": 105,
        "distinct_peers": 2,
        "behaviour_tags": 3,
        "supportive_tags": 2,
        "counterproductive_tags": 1,
        "rated_contacts": 2,
        "mean_peer_rating": 6.5,
    }
    by = {b["code"]: b for b in rep["behaviours"]}
    assert len(by) == 16 and by["empathy"]["count"] == 1 and by["empathy"]["share"] == 0.3333
    assert by["hope"]["count"] == 1 and by["respect"] == {**by["respect"], "count": 0, "share": 0}
    assert by["judging"]["polarity"] == "counterproductive" and by["judging"]["label"]
    assert rep["modalities"] == [
        {
            "modality": m,
            "contacts": {"phone": 2, "video": 1}.get(m, 0),
            "minutes": {"phone": 60, "video": 45}.get(m, 0),
        }
        for m in MODS
    ]
    # 2025-03-01 is a Saturday: weeks start Mon 24 Feb, 3 Mar, 10 Mar.
    assert [s["start"] for s in rep["series"]] == ["2025-02-24", "2025-03-03", "2025-03-10"]
    assert [s["contacts"] for s in rep["series"]] == [0, 2, 1]
    assert rep["series"][1]["behaviours"]["empathy"] == 1 and rep["series"][0]["behaviours"]["hope"] == 0


def test_month_and_day_buckets_cover_the_period_without_gaps(client, cast):
    log(client, cast.coach, "2025-01-31T12:00:00Z")
    log(client, cast.coach, "2025-03-01T12:00:00Z")
    rep = client.get(
        coach_url(cast.coach.id, **{"from": "2025-01-15", "to": "2025-03-02", "bucket": "month"}),
        headers=cast.coach.headers,
    ).get_json()
    assert [(s["start"], s["contacts"]) for s in rep["series"]] == [
        ("2025-01-01", 1),
        ("2025-02-01", 0),
        ("2025-03-01", 1),
    ]
    rep = client.get(
        coach_url(cast.coach.id, **{"from": "2025-02-27", "to": "2025-03-02", "bucket": "day"}),
        headers=cast.coach.headers,
    ).get_json()
    assert [s["start"] for s in rep["series"]] == ["2025-02-27", "2025-02-28", "2025-03-01", "2025-03-02"]


def test_default_period_is_the_last_30_days_by_week(client, cast):
    rep = client.get(coach_url(cast.coach.id), headers=cast.coach.headers).get_json()
    end = today("UTC")
    assert rep["to"] == end.isoformat() and rep["from"] == (end - timedelta(days=29)).isoformat()
    assert rep["bucket"] == "week" and rep["totals"]["contacts"] == 0
    assert rep["totals"]["mean_peer_rating"] is None
    assert all(b["share"] == 0 for b in rep["behaviours"])


def test_retired_behaviours_appear_only_when_counted(client, cast):
    log(client, cast.coach, "2025-03-03T10:00:00Z", behaviours=["fixing"])
    client.patch("/api/v1/behaviours/fixing", json={"active": False}, headers=cast.admin.headers)
    client.patch("/api/v1/behaviours/dismissing", json={"active": False}, headers=cast.admin.headers)
    rep = client.get(
        coach_url(cast.coach.id, **{"from": "2025-03-01", "to": "2025-03-31"}), headers=cast.coach.headers
    ).get_json()
    codes = [b["code"] for b in rep["behaviours"]]
    assert "fixing" in codes and "dismissing" not in codes and len(codes) == 15


def test_dst_change_days_count_in_local_time(client, world):
    org = world.org(timezone="America/New_York")
    coach = world.user(org, "coach")
    # DST starts 2025-03-09 02:00 local. 04:30Z on the 10th is 00:30 EDT on the 10th;
    # 04:30Z on the 9th is 23:30 EST on the 8th.
    log(client, coach, "2025-03-10T04:30:00Z")
    log(client, coach, "2025-03-09T04:30:00Z")
    rep = client.get(
        coach_url(coach.id, **{"from": "2025-03-08", "to": "2025-03-10", "bucket": "day"}),
        headers=coach.headers,
    ).get_json()
    assert [(s["start"], s["contacts"]) for s in rep["series"]] == [
        ("2025-03-08", 1),
        ("2025-03-09", 0),
        ("2025-03-10", 1),
    ]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"from": "2025-03-02", "to": "2025-03-01"}, "from"),
        ({"from": "2023-01-01", "to": "2025-01-01"}, "to"),
        ({"from": "2025-02-30"}, "from"),
        ({"to": "20250301"}, "to"),
        ({"bucket": "year"}, "bucket"),
        ({"format": "xml"}, "format"),
        ({"coach": "x"}, "coach"),
    ],
)
def test_bad_report_queries_are_422(client, cast, world, query, field):
    before = len(world.audit_actions(cast.org))
    assert_problem(client.get(coach_url(cast.coach.id, **query), headers=cast.coach.headers), 422, field)
    assert len(world.audit_actions(cast.org)) == before


def test_span_of_exactly_731_days_is_allowed(client, cast):
    r = client.get(
        coach_url(cast.coach.id, **{"from": "2023-01-01", "to": "2024-12-31"}), headers=cast.coach.headers
    )
    assert r.status_code == 200 and len(r.get_json()["series"]) == 106  # Mon 2022-12-26 .. Mon 2024-12-30


class _Path:
    """Which way coach reports are served in a test, and what the one statement answered."""

    def __init__(self, mode: str) -> None:
        self.mode, self.answered = mode, []


@pytest.fixture()
def statement_answers(monkeypatch) -> list[bool]:
    """Per coach report pull that reached the one statement: did it answer (True) or refuse?"""
    from rapportnotes.services import reports as svc

    answers: list[bool] = []
    real = svc.checked_coach_report

    def spy(*args, **kwargs):
        report = real(*args, **kwargs)
        answers.append(report is not None)
        return report

    monkeypatch.setattr(svc, "checked_coach_report", spy)
    return answers


@pytest.fixture(params=["one-statement", "step-by-step"])
def report_path(request, monkeypatch, backend, client, cast) -> _Path:
    """Run a test both ways. On PostgreSQL a pull is one self-checking statement once the
    process knows the organisation's zone (``services.reports.checked_coach_statement``), else
    the step-by-step path serves it; both must answer alike. "one-statement" first makes the
    process learn both organisations' zones and records, per pull, whether the statement itself
    answered (True) or refused (False); "step-by-step" keeps every pull off that statement."""
    import rapportnotes.api.reports as api

    path = _Path(request.param)
    if path.mode == "step-by-step":
        monkeypatch.setattr(api, "known_zone", lambda organisation_id: None)
        return path
    assert backend == "postgresql"  # the SQLite combination is deselected (conftest)
    for user in (cast.admin, cast.admin_b):
        assert client.get("/api/v1/me", headers=user.headers).status_code == 200
    path.answered = request.getfixturevalue("statement_answers")
    return path


def test_who_may_read_a_coach_report(client, cast, report_path):
    ok = {
        "coach": [cast.coach],
        "coach2": [cast.coach2],
        "supervisor": [cast.coach, cast.coach2, cast.supervisor],
        "other_supervisor": [cast.lone_coach, cast.other_supervisor],
        "admin": [cast.coach, cast.coach2, cast.lone_coach, cast.supervisor, cast.other_supervisor],
    }
    targets = [
        cast.coach,
        cast.coach2,
        cast.lone_coach,
        cast.supervisor,
        cast.other_supervisor,
        cast.admin,
        cast.coach_b,
    ]
    expected = []
    for who, allowed in ok.items():
        user = getattr(cast, who)
        for t in targets:
            r = client.get(coach_url(t.id), headers=user.headers)
            if t in allowed:
                assert r.status_code == 200, (who, t.role)
                assert r.get_json()["coach"]["id"] == t.id
            else:
                assert_problem(r, 404)
            expected.append(t in allowed)
    assert_problem(client.get(coach_url(cast.coach.id), headers=cast.admin_b.headers), 404)
    assert_problem(client.get(coach_url("not-an-id"), headers=cast.admin.headers), 404)
    assert_problem(client.get(coach_url(cast.coach.id)), 401)
    if report_path.mode == "one-statement":  # the statement itself refused every one of them
        assert report_path.answered == [*expected, False]


def test_team_memberships_give_no_more_than_the_rules_say(client, cast, world, report_path):
    """Only a *supervisor* membership lets a *supervisor* read the team's *coach* members: a coach
    holding a supervisor membership, a fellow supervisor member, an admin listed as a coach
    member and a supervisor listed as a coach member elsewhere read none of them."""
    org = cast.org
    sup1, sup2, sup3 = (world.user(org, "supervisor") for _ in range(3))
    coach_as_sup, x, admin2 = world.user(org, "coach"), world.user(org, "coach"), world.user(org, "admin")
    world.team(org, supervisors=[coach_as_sup], coaches=[x])
    world.team(org, supervisors=[sup1, sup2], coaches=[sup3, admin2])
    world.team(org, coaches=[sup2, x])
    cases = [(coach_as_sup, x, 404), (sup1, sup2, 404), (sup2, sup1, 404), (sup1, sup3, 200),
             (sup1, admin2, 404), (sup2, x, 404), (admin2, admin2, 404), (admin2, x, 200)]
    for reader, subject, status in cases:
        r = client.get(coach_url(subject.id), headers=reader.headers)
        assert r.status_code == status, (reader.role, subject.role, r.get_json())
    if report_path.mode == "one-statement":
        assert report_path.answered == [status == 200 for _, _, status in cases]


@pytest.mark.parametrize("bucket, last_start", [("day", "9999-12-31"), ("week", "9999-12-27"),
                                                ("month", "9999-12-01")])
def test_a_period_may_end_on_the_last_representable_day(client, cast, world, report_path, bucket,
                                                         last_start):
    url = coach_url(cast.coach.id, **{"from": "9999-11-15", "to": "9999-12-31", "bucket": bucket})
    r = client.get(url, headers=cast.admin.headers)
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["series"][-1]["start"] == last_start
    assert world.audit_actions(cast.org).count(("report.coach", 200)) == 1


def test_the_default_period_may_not_start_before_year_one(client, cast, world, report_path):
    r = client.get(coach_url(cast.coach.id, to="0001-01-05"), headers=cast.admin.headers)
    assert_problem(r, 422, "to")
    ok = client.get(coach_url(cast.coach.id, **{"from": "0001-01-01", "to": "0001-01-05"}),
                    headers=cast.admin.headers)
    assert ok.status_code == 200 and ok.get_json()["series"][0]["start"] == "0001-01-01"
    world.run(revoke_token, cast.admin)  # a refused caller still hears 401 first
    assert_problem(client.get(coach_url(cast.coach.id, to="0001-01-05"), headers=cast.admin.headers), 401)
    assert world.audit_actions(cast.org).count(("report.coach", 200)) == 1


def test_team_report_rows_totals_and_access(client, cast):
    log(client, cast.coach, "2025-03-03T10:00:00Z", peer_ref="SHARED", peer_rating=10)
    log(client, cast.coach2, "2025-03-04T10:00:00Z", peer_ref="SHARED", peer_rating=5)
    log(client, cast.lone_coach, "2025-03-04T10:00:00Z")  # another team
    url = f"/api/v1/teams/{cast.team}/report?from=2025-03-01&to=2025-03-31"
    rep = client.get(url, headers=cast.supervisor.headers).get_json()
    assert rep["team"] == {"id": cast.team, "name": "Team A"}
    assert {r["coach"]["id"] for r in rep["coaches"]} == {cast.coach.id, cast.coach2.id}
    assert rep["totals"]["contacts"] == 2 and rep["totals"]["distinct_peers"] == 1
    assert rep["totals"]["mean_peer_rating"] == 7.5 and rep["totals"]["counterproductive_tags"] == 2
    row = next(r for r in rep["coaches"] if r["coach"]["id"] == cast.coach.id)
    assert (
        row["totals"]["contacts"] == 1
        and row["behaviours"]["empathy"] == 1
        and row["behaviours"]["hope"] == 0
    )
    # An empty team still answers, with zero totals.
    empty = client.get(f"/api/v1/teams/{cast.other_team}/report", headers=cast.admin.headers).get_json()
    assert empty["totals"]["contacts"] == 0 and len(empty["coaches"]) == 1
    assert_problem(client.get(url, headers=cast.coach.headers), 403)
    assert_problem(client.get(url, headers=cast.other_supervisor.headers), 404)
    assert_problem(client.get(url, headers=cast.admin_b.headers), 404)
    assert client.get(url, headers=cast.admin.headers).status_code == 200


def test_csv_is_spreadsheet_safe(client, world):
    org = world.org()
    admin = world.user(org, "admin")
    coach = world.user(org, "coach", display_name='=HYPERLINK("http://evil")')
    team = world.team(org, "T", coaches=[coach])
    log(client, coach, "2025-03-03T10:00:00Z")
    r = client.get(
        f"/api/v1/teams/{team}/report?from=2025-03-01&to=2025-03-31&format=csv", headers=admin.headers
    )
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert r.headers["Content-Disposition"].startswith('attachment; filename="team-report-')
    rows = list(csv.reader(io.StringIO(r.get_data(as_text=True))))
    assert rows[0][:3] == ["coach_id", "display_name", "contacts"] and "empathy" in rows[0]
    assert rows[1][1].startswith("'=HYPERLINK") and rows[1][2] == "1"
    assert rows[-1][1] == "team total"
    r = client.get(
        coach_url(coach.id, **{"from": "2025-03-01", "to": "2025-03-16"}),
        headers={**admin.headers, "Accept": "text/csv"},
    )
    rows = list(csv.reader(io.StringIO(r.get_data(as_text=True))))
    assert r.mimetype == "text/csv" and rows[0][:3] == ["start", "contacts", "minutes"]
    assert [row[0] for row in rows[1:]] == ["2025-02-24", "2025-03-03", "2025-03-10"]
    assert rows[2][1] == "1" and rows[2][rows[0].index("judging")] == "1"


def test_team_csv_has_a_column_per_behaviour_even_without_coaches(client, world):
    org = world.org()
    admin = world.user(org, "admin")
    supervisor = world.user(org, "supervisor")
    team = world.team(org, "Supervisors only", supervisors=[supervisor])
    r = client.get(f"/api/v1/teams/{team}/report?from=2025-03-01&to=2025-03-31&format=csv",
                   headers=admin.headers)
    assert r.status_code == 200
    rows = list(csv.reader(io.StringIO(r.get_data(as_text=True))))
    codes = [b["code"] for b in client.get("/api/v1/behaviours", headers=admin.headers).get_json()["items"]]
    assert len(codes) == 16 and rows[0][-16:] == codes
    assert rows[1:] == [["", "team total", "0", "0", "0", "0", "0", "0", "0", "", *["0"] * 16]]


def test_team_rows_are_in_reading_order_on_every_database(client, world):
    org = world.org()
    admin = world.user(org, "admin")
    names = ["zed", "bob", "Zoe", "Émile", "alice", "Alice"]
    team = world.team(org, "T", coaches=[world.user(org, "coach", display_name=n) for n in names])
    url = f"/api/v1/teams/{team}/report?from=2025-03-01&to=2025-03-31"
    want = ["Alice", "alice", "bob", "Émile", "zed", "Zoe"]
    rep = client.get(url, headers=admin.headers).get_json()
    assert [r["coach"]["display_name"] for r in rep["coaches"]] == want
    text = client.get(url + "&format=csv", headers=admin.headers).get_data(as_text=True)
    rows = list(csv.reader(io.StringIO(text)))
    assert [row[1] for row in rows[1:-1]] == want


def test_report_pulls_are_audited(client, cast, world, report_path):
    client.get(coach_url(cast.coach.id), headers=cast.supervisor.headers)
    client.get(f"/api/v1/teams/{cast.team}/report", headers=cast.supervisor.headers)
    client.get(coach_url(cast.lone_coach.id), headers=cast.supervisor.headers)  # 404: not audited as a pull
    client.get(coach_url(cast.coach.id, bucket="year"), headers=cast.supervisor.headers)  # 422: nor this
    actions = [a for a in world.audit_actions(cast.org) if a[0].startswith("report.")]
    assert actions == [("report.coach", 200), ("report.team", 200)]
    events = world.run(lambda s: [(e.actor_id, e.target_type, e.target_id) for e in s.scalars(
        select(AuditEvent).where(AuditEvent.action == "report.coach"))])
    assert events == [(cast.supervisor.id, "user", cast.coach.id)]
    if report_path.mode == "one-statement":
        assert report_path.answered == [True, False]


@pytest.mark.parametrize("change, status", [(deactivate, 401), (move_generation, 401), (revoke_token, 401),
                                            (make_admin, 404)])
def test_a_pull_rechecks_the_caller_in_the_database(client, cast, world, report_path, change, status):
    """A coach's own report after their token stopped holding (or, made an admin, they are no
    longer a coach with a report): the same refusal both ways, and no audit row. On PostgreSQL
    the statement itself is the check (nothing looked the caller up before it)."""
    url = coach_url(cast.coach.id, **{"from": "2025-03-01", "to": "2025-03-31"})
    assert client.get(url, headers=cast.coach.headers).status_code == 200
    world.run(change, cast.coach)
    r = client.get(url, headers=cast.coach.headers)
    assert_problem(r, status)
    if status == 401:
        assert r.headers["WWW-Authenticate"].startswith('Bearer error="invalid_token"')
    assert world.audit_actions(cast.org).count(("report.coach", 200)) == 1
    if report_path.mode == "one-statement":
        assert report_path.answered == [True, False]


def test_a_supervisor_who_no_longer_leads_the_team_is_refused(client, cast, world, report_path):
    from rapportnotes.models import TeamMember

    url = coach_url(cast.coach.id)
    assert client.get(url, headers=cast.supervisor.headers).status_code == 200
    supervisor = uuid.UUID(cast.supervisor.id)
    world.run(lambda s: s.execute(delete(TeamMember).where(TeamMember.user_id == supervisor)))
    assert_problem(client.get(url, headers=cast.supervisor.headers), 404)
    assert client.get(url, headers=cast.admin.headers).status_code == 200
    if report_path.mode == "one-statement":
        assert report_path.answered == [True, False, True]


def test_both_ways_give_the_same_report(client, cast, monkeypatch, backend, statement_answers):
    """The one statement and the step-by-step path build the same document from the same
    contacts, JSON and CSV, for every bucket (retired behaviour counted, one deleted contact)."""
    import rapportnotes.api.reports as api

    log(client, cast.coach, "2025-03-03T10:00:00Z", behaviours=["fixing", "hope"], peer_rating=3)
    log(client, cast.coach, "2025-03-09T23:30:00Z", modality="video", peer_rating=None)
    gone = log(client, cast.coach, "2025-03-05T10:00:00Z")
    client.delete(f"/api/v1/contacts/{gone['id']}", headers=cast.coach.headers)
    client.patch("/api/v1/behaviours/fixing", json={"active": False}, headers=cast.admin.headers)
    client.get("/api/v1/me", headers=cast.admin.headers)  # the process learns the zone
    pulls = [coach_url(cast.coach.id, **{"from": "2025-02-20", "to": "2025-04-02", "bucket": b, "format": f})
             for b in ("day", "week", "month") for f in ("json", "csv")]
    first = [client.get(u, headers=cast.supervisor.headers) for u in pulls]
    monkeypatch.setattr(api, "known_zone", lambda organisation_id: None)
    second = [client.get(u, headers=cast.supervisor.headers) for u in pulls]
    for a, b in zip(first, second, strict=True):
        assert a.status_code == b.status_code == 200
        assert a.get_data() == b.get_data() and a.headers["Content-Type"] == b.headers["Content-Type"]
    assert "fixing" in first[0].get_json()["series"][0]["behaviours"]
    # On PostgreSQL the statement answered every first pull; elsewhere there is no statement.
    assert statement_answers == ([True] * len(pulls) if backend == "postgresql" else [])


def test_a_pull_is_one_statement_outside_a_transaction_block_on_postgresql(client, cast, app, backend):
    url = coach_url(cast.coach.id)
    assert client.get(url, headers=cast.supervisor.headers).status_code == 200  # learns the zone
    with Statements(app, backend) as seen:
        assert client.get(url, headers=cast.supervisor.headers).status_code == 200
    if backend == "postgresql":  # caller, who may read whom, figures, taxonomy, audit row
        assert seen == [("WITH", True)]
    else:  # caller, subject, supervised coaches, figures, taxonomy, audit row: one transaction
        assert [s for s, _ in seen] == ["SELECT", "SELECT", "SELECT", "WITH", "SELECT", "INSERT"]
    assert_pool_back_in_transactions(app)


def test_a_changed_organisation_zone_is_picked_up_at_once(client, world, backend, statement_answers):
    """The statement checks the zone the process remembered (the default period is worked out
    in it); after a change it answers nothing, and the step-by-step path uses the new zone."""
    from rapportnotes.models import Organisation

    org = world.org(timezone="Pacific/Kiritimati")  # UTC+14: its date is never Pago Pago's
    coach = world.user(org, "coach")
    for _ in range(2):  # the first pull teaches the process the zone; the second uses it
        r = client.get(coach_url(coach.id), headers=coach.headers)
        assert r.get_json()["to"] == today("Pacific/Kiritimati").isoformat()
    world.run(lambda s: setattr(s.get(Organisation, uuid.UUID(org)), "timezone", "Pacific/Pago_Pago"))
    for _ in range(2):
        r = client.get(coach_url(coach.id), headers=coach.headers)
        assert r.get_json()["to"] == today("Pacific/Pago_Pago").isoformat()
    assert statement_answers == ([True, False, True] if backend == "postgresql" else [])
    assert world.audit_actions(org).count(("report.coach", 200)) == 4


@pytest.mark.postgres
def test_the_one_statements_fit_the_drivers_query_cache(app):
    """psycopg parses a query's placeholders on every execution unless the text is at most
    MAX_CACHED_STATEMENT_LENGTH bytes with at most MAX_CACHED_STATEMENT_PARAMS parameters; the
    hot statements stay within both (a longer one still works, at ~0.15 ms more per request)."""
    import re as regex

    from psycopg import _queries  # the limits are not public: if they move, look again

    from rapportnotes import driver
    from rapportnotes.extensions import db
    from rapportnotes.services.contacts import _pg_create_statement
    from rapportnotes.services.reports import BUCKETS, checked_coach_statement

    with app.app_context():
        for statement in (_pg_create_statement(), *(checked_coach_statement(b) for b in BUCKETS)):
            text, _fixed = driver.driver_sql(db.engine, statement)
            assert len(text.encode()) <= _queries.MAX_CACHED_STATEMENT_LENGTH
            names = set(regex.findall(r"%\((\w+)\)s", text))
            assert len(names) <= _queries.MAX_CACHED_STATEMENT_PARAMS


def _store_history(world, org, coaches, n: int) -> None:
    """``n`` contacts spread over the coaches and ~two years, three tags each, written directly:
    enough rows that the planner's statistics look like a real organisation's."""
    import uuid

    from rapportnotes.models import Contact, ContactBehaviour

    now = datetime.now(UTC)
    rows = [
        {"organisation_id": org, "id": uuid.uuid4(), "coach_id": coaches[i % len(coaches)],
         "peer_ref": f"P-{i % 40}", "occurred_at": now,
         "local_date": date(2024, 1, 1) + timedelta(days=i % 700),
         "duration_minutes": 30, "modality": "phone", "setting": None, "notes": None, "peer_rating": None,
         "external_id": None, "created_at": now, "updated_at": now, "version": 1, "deleted": False,
         "deleted_at": None}
        for i in range(n)
    ]
    tags = [{"organisation_id": org, "contact_id": r["id"], "code": code}
            for r in rows for code in ("empathy", "active_listening", "hope")]

    def store(s):
        s.connection().execute(Contact.__table__.insert(), rows)
        s.connection().execute(ContactBehaviour.__table__.insert(), tags)

    world.run(store)


@pytest.mark.parametrize("bucket", ["day", "week", "month"])
def test_coach_report_uses_the_report_index(app, backend, world, bucket):
    """The report's own statement reads the coach's rows in the period through ix_contacts_report
    once (the ``live`` CTE every branch of its UNION ALL aggregates), and contacts no other way,
    on both databases. The planner is given statistics of a realistic table first: on an empty
    one every index costs the same and any may win."""
    import uuid

    from sqlalchemy import text

    from rapportnotes.extensions import db
    from rapportnotes.services.reports import coach_statement

    org_s = world.org()
    org = uuid.UUID(org_s)
    coaches = [uuid.UUID(world.user(org_s, "coach", login=False).id) for _ in range(8)]
    _store_history(world, org, coaches, 4000)
    period = {"first": date(2025, 1, 1), "last": date(2025, 3, 31)}
    stmt = coach_statement(bucket, backend).params(org=org, coach=coaches[0], **period)
    with app.app_context():
        db.session.execute(text("ANALYZE contacts, contact_behaviours" if backend == "postgresql"
                                else "ANALYZE"))
        db.session.commit()
        sql = str(stmt.compile(db.engine, compile_kwargs={"literal_binds": True}))
        if backend == "postgresql":
            plan = "\n".join(r[0] for r in db.session.execute(text("EXPLAIN " + sql)))
        else:
            plan = "\n".join(str(r) for r in db.session.execute(text("EXPLAIN QUERY PLAN " + sql)))
        db.session.rollback()
    assert plan.count("ix_contacts_report") == 1, plan
    reads = [line for line in plan.splitlines()  # every read of the contacts table
             if re.search(r"\bcontacts\b", line) and re.search(r"SCAN|SEARCH|Scan", line)]
    assert len(reads) == 1, plan
    through_index = "Bitmap Heap Scan on contacts" in reads[0] and "Index Scan on ix_contacts_report" in plan
    assert "ix_contacts_report" in reads[0] or through_index, plan
    assert "notes" not in sql


def test_team_report_reads_only_the_team_rows(app, backend, world):
    """The team statement finds the team's contacts in the period through ix_contacts_report and
    their tags through the tag table's primary key, never by scanning the organisation's tags
    (on PostgreSQL a plain join let the planner hash-join against a scan of every tag)."""
    import uuid

    from sqlalchemy import text

    from rapportnotes.extensions import db
    from rapportnotes.services.reports import team_statement

    org_s = world.org()
    org = uuid.UUID(org_s)
    coaches = [uuid.UUID(world.user(org_s, "coach", login=False).id) for _ in range(40)]
    _store_history(world, org, coaches, 8000)
    params = {"org": org, "coaches": coaches[:10], "first": date(2025, 1, 1), "last": date(2025, 3, 31)}
    with app.app_context():
        db.session.execute(text("ANALYZE contacts, contact_behaviours" if backend == "postgresql"
                                else "ANALYZE"))
        db.session.commit()
        stmt = team_statement(db.engine.dialect.name).params(**params)
        sql = str(stmt.compile(db.engine, compile_kwargs={"literal_binds": True}))
        if backend == "postgresql":
            plan = "\n".join(r[0] for r in db.session.execute(text("EXPLAIN " + sql)))
            assert "Seq Scan on contact_behaviours" not in plan, plan
            assert "pk_contact_behaviours" in plan, plan
        else:
            plan = "\n".join(str(r) for r in db.session.execute(text("EXPLAIN QUERY PLAN " + sql)))
            assert "SCAN contact_behaviours" not in plan, plan
        db.session.rollback()
    assert plan.count("ix_contacts_report") >= 3, plan


def test_contacts_near_local_midnight_land_on_the_right_day(client, world):
    org = world.org(timezone="Europe/London")
    coach = world.user(org, "coach")
    log(client, coach, datetime(2025, 7, 1, 22, 59, 59, tzinfo=UTC).isoformat())  # 23:59:59 BST on 1 Jul
    log(client, coach, datetime(2025, 7, 1, 23, 0, 0, tzinfo=UTC).isoformat())  # 00:00 BST on 2 Jul
    rep = client.get(
        coach_url(coach.id, **{"from": "2025-07-01", "to": "2025-07-02", "bucket": "day"}),
        headers=coach.headers,
    ).get_json()
    assert [s["contacts"] for s in rep["series"]] == [1, 1]


@pytest.mark.parametrize(
    ("accept", "mimetype"),
    [
        ("text/csv", "text/csv"),
        ("text/csv; charset=utf-8", "text/csv"),  # exactly the type served
        ("text/csv;header=present", "text/csv"),  # RFC 4180's parameter
        ("TEXT/CSV; Charset=UTF-8", "text/csv"),
        ("application/json;q=0.5, text/csv; charset=utf-8", "text/csv"),
        ("text/csv; charset=utf-8;q=0.5, application/json", "application/json"),
        ("text/csv;q=0.5, application/json; charset=utf-8", "application/json"),
        ("text/csv; charset=utf-8;q=0", "application/json"),
        ("text/csv;q=0, */*", "application/json"),  # the most specific range decides
        ("application/json, text/csv", "application/json"),
        ("text/*", "text/csv"),
        ("*/*", "application/json"),
    ],
)
def test_csv_is_chosen_by_media_type_whatever_its_parameters(client, cast, report_path, accept,
                                                            mimetype):
    headers = {**cast.supervisor.headers, "Accept": accept}
    for url in (coach_url(cast.coach.id), f"/api/v1/teams/{cast.team}/report"):
        r = client.get(url, headers=headers)
        assert r.status_code == 200 and r.mimetype == mimetype, (url, accept, r.mimetype)
        assert "Accept" in r.headers.get("Vary", "")  # the representation depends on Accept
