"""The report service without HTTP: bucket arithmetic, rounding, and the aggregates over a session.

Contacts are written with the contacts service (which fixes ``local_date`` in the organisation's
zone), then the report functions are called directly on a session.
"""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import event

from rapportnotes.models import Behaviour, Team, User
from rapportnotes.security import TokenCaller
from rapportnotes.services import reports
from rapportnotes.services.audit import Actor
from rapportnotes.services.contacts import create_contact, soft_delete


@pytest.mark.parametrize(
    ("first", "last", "bucket", "starts"),
    [
        # Monday itself starts the first week; a Sunday belongs to the week of the Monday before.
        (date(2025, 3, 3), date(2025, 3, 9), "week", ["2025-03-03"]),
        (date(2025, 3, 9), date(2025, 3, 10), "week", ["2025-03-03", "2025-03-10"]),
        # ISO week 1 of 2026 starts on Monday 29 Dec 2025.
        (date(2025, 12, 31), date(2026, 1, 5), "week", ["2025-12-29", "2026-01-05"]),
        (
            date(2025, 11, 30),
            date(2026, 2, 1),
            "month",
            ["2025-11-01", "2025-12-01", "2026-01-01", "2026-02-01"],
        ),
        (date(2024, 2, 28), date(2024, 3, 1), "day", ["2024-02-28", "2024-02-29", "2024-03-01"]),
        (date(2025, 5, 5), date(2025, 5, 5), "day", ["2025-05-05"]),
    ],
)
def test_bucket_starts_cover_the_period_without_gaps(first, last, bucket, starts):
    assert [d.isoformat() for d in reports.bucket_starts(first, last, bucket)] == starts


def test_bucket_starts_over_the_longest_period():
    first, last = date(2023, 1, 1), date(2024, 12, 31)  # 731 days
    weeks = reports.bucket_starts(first, last, "week")
    assert weeks[0] == date(2022, 12, 26) and weeks[-1] == date(2024, 12, 30) and len(weeks) == 106
    assert all(b.weekday() == 0 for b in weeks)
    assert all((b - a).days == 7 for a, b in itertools.pairwise(weeks))
    months = reports.bucket_starts(first, last, "month")
    assert len(months) == 24 and all(m.day == 1 for m in months)
    assert len(reports.bucket_starts(first, last, "day")) == 731


@pytest.mark.parametrize(
    ("value", "places", "expected"),
    [
        (Decimal(1) / 8, "0.01", 0.13),  # half up, not to even (0.12)
        (Decimal(5) / 8, "0.01", 0.63),
        (Decimal(2) / 3, "0.0001", 0.6667),
        (Decimal(1) / 3, "0.0001", 0.3333),
        (Decimal(1) / 20000, "0.0001", 0.0001),  # 0.00005 rounds up
        (Decimal(15), "0.01", 15.0),
    ],
)
def test_rounding_is_half_up(value, places, expected):
    assert reports.round_half_up(value, places) == expected


def _log(session, org, coach, when, **over):
    data = {
        "peer_ref": "P-1",
        "occurred_at": when,
        "duration_minutes": 30,
        "modality": "phone",
        "behaviours": ["empathy"],
        "peer_rating": None,
    }
    data.update(over)
    user = session.get_one(User, (org, coach))
    body = create_contact(
        session,
        caller=TokenCaller(coach, org, user.token_generation, uuid.uuid4().hex),
        tz=user.organisation.timezone,
        data=data,
        actor=Actor(org, "user", str(coach)),
    )
    assert body is not None
    return body


def test_coach_report_counts_local_days_inside_the_period_only(world):
    org_s = world.org(timezone="America/New_York")
    coach_s = world.user(org_s, "coach", login=False).id
    org, coach = uuid.UUID(org_s), uuid.UUID(coach_s)

    def setup(s):
        # Mon 3 Mar 2025 23:30 EST is 04:30Z on the 4th: its local day is Monday, before the period.
        _log(s, org, coach, datetime(2025, 3, 4, 4, 30, tzinfo=UTC), behaviours=["hope", "judging"])
        # Tue 4 Mar 00:30 EST: the first local day of the period.
        _log(s, org, coach, datetime(2025, 3, 4, 5, 30, tzinfo=UTC), peer_ref="P-2", peer_rating=9)
        _log(
            s,
            org,
            coach,
            datetime(2025, 3, 5, 15, 0, tzinfo=UTC),
            modality="video",
            peer_rating=4,
            duration_minutes=50,
        )
        gone = _log(s, org, coach, datetime(2025, 3, 5, 16, 0, tzinfo=UTC), behaviours=["fixing"])
        s.flush()
        from rapportnotes.models import Contact

        soft_delete(s, s.get_one(Contact, (org, uuid.UUID(gone["id"]))))

    world.run(setup)

    def report(s):
        return reports.coach_report(
            s, s.get_one(User, (org, coach)), reports.Period(date(2025, 3, 4), date(2025, 3, 10)), "week"
        )

    rep = world.run(report)
    assert rep["series"] == [
        {
            "start": "2025-03-03",
            "contacts": 2,
            "minutes": 80,
            "behaviours": {b["code"]: (2 if b["code"] == "empathy" else 0) for b in rep["behaviours"]},
        },
        {
            "start": "2025-03-10",
            "contacts": 0,
            "minutes": 0,
            "behaviours": {b["code"]: 0 for b in rep["behaviours"]},
        },
    ]
    assert rep["totals"] == {
        "contacts": 2,
        "minutes": 80,
        "distinct_peers": 2,
        "behaviour_tags": 2,
        "supportive_tags": 2,
        "counterproductive_tags": 0,
        "rated_contacts": 2,
        "mean_peer_rating": 6.5,
    }
    assert [b["code"] for b in rep["behaviours"]][:4] == [
        "genuine_interest",
        "active_listening",
        "empathy",
        "respect",
    ]
    assert [b["polarity"] for b in rep["behaviours"]][-3:] == ["counterproductive"] * 3
    assert next(b for b in rep["behaviours"] if b["code"] == "empathy")["share"] == 1.0
    assert [(m["modality"], m["contacts"], m["minutes"]) for m in rep["modalities"]] == [
        ("in_person", 0, 0),
        ("phone", 1, 30),
        ("video", 1, 50),
        ("text", 0, 0),
        ("other", 0, 0),
    ]


def test_retired_behaviours_listed_only_when_counted_in_the_period(world):
    org_s = world.org()
    coach_s = world.user(org_s, "coach", login=False).id
    org, coach = uuid.UUID(org_s), uuid.UUID(coach_s)

    def setup(s):
        _log(s, org, coach, datetime(2025, 1, 10, 12, tzinfo=UTC), behaviours=["judging"])
        _log(s, org, coach, datetime(2025, 2, 10, 12, tzinfo=UTC), behaviours=["fixing"])
        for code in ("judging", "fixing", "hope"):
            s.get_one(Behaviour, (org, code)).active = False

    world.run(setup)

    def codes(first, last):
        return world.run(
            lambda s: [
                (b["code"], b["count"])
                for b in reports.coach_report(
                    s, s.get_one(User, (org, coach)), reports.Period(first, last), "month"
                )["behaviours"]
                if b["code"] in ("judging", "fixing", "hope", "dismissing")
            ]
        )

    assert codes(date(2025, 1, 1), date(2025, 1, 31)) == [("judging", 1), ("dismissing", 0)]
    assert codes(date(2025, 2, 1), date(2025, 2, 28)) == [("fixing", 1), ("dismissing", 0)]
    assert codes(date(2025, 3, 1), date(2025, 3, 31)) == [("dismissing", 0)]


def test_team_report_distinct_peers_and_mean_are_over_the_team(world):
    org_s = world.org()
    a, b, sup = (world.user(org_s, r, login=False) for r in ("coach", "coach", "supervisor"))
    team_s = world.team(org_s, "T", supervisors=[sup], coaches=[a, b])
    empty_s = world.team(org_s, "Nobody", supervisors=[sup])
    org = uuid.UUID(org_s)

    def setup(s):
        _log(s, org, uuid.UUID(a.id), datetime(2025, 4, 1, 9, tzinfo=UTC), peer_ref="X", peer_rating=10)
        _log(s, org, uuid.UUID(a.id), datetime(2025, 4, 2, 9, tzinfo=UTC), peer_ref="Y", peer_rating=9)
        _log(s, org, uuid.UUID(b.id), datetime(2025, 4, 3, 9, tzinfo=UTC), peer_ref="X", peer_rating=2)
        # The supervisor's own contact is not part of the team report: only coach members are rows.
        _log(s, org, uuid.UUID(sup.id), datetime(2025, 4, 3, 9, tzinfo=UTC), peer_ref="Z")

    world.run(setup)
    period = reports.Period(date(2025, 4, 1), date(2025, 4, 30))
    rep = world.run(lambda s: reports.team_report(s, s.get_one(Team, (org, uuid.UUID(team_s))), period))
    rows = {r["coach"]["id"]: r for r in rep["coaches"]}
    assert set(rows) == {a.id, b.id}
    assert rows[a.id]["totals"]["distinct_peers"] == 2 and rows[b.id]["totals"]["distinct_peers"] == 1
    assert rep["totals"]["distinct_peers"] == 2  # X and Y, not 2 + 1
    assert rep["totals"]["mean_peer_rating"] == 7.0 and rows[a.id]["totals"]["mean_peer_rating"] == 9.5
    assert rep["totals"]["contacts"] == 3 and rep["totals"]["behaviour_tags"] == 3
    assert len(rows[a.id]["behaviours"]) == 16 and rows[a.id]["behaviours"]["empathy"] == 2

    empty = world.run(lambda s: reports.team_report(s, s.get_one(Team, (org, uuid.UUID(empty_s))), period))
    assert empty["coaches"] == [] and empty["totals"]["contacts"] == 0
    assert empty["totals"]["mean_peer_rating"] is None


def test_reports_never_load_contact_rows(app, world):
    """A fixed, small number of aggregate statements whatever the data; notes are never selected."""
    org_s = world.org()
    coach_s = world.user(org_s, "coach", login=False).id
    team_s = world.team(org_s, "T", coaches=[world.user(org_s, "coach", login=False)])
    org, coach = uuid.UUID(org_s), uuid.UUID(coach_s)
    period = reports.Period(date(2025, 1, 1), date(2025, 12, 31))

    def statements() -> tuple[list[str], list[str]]:
        from rapportnotes.extensions import db

        with app.app_context():
            user = db.session.get_one(User, (org, coach))
            team = db.session.get_one(Team, (org, uuid.UUID(team_s)))
            _ = list(team.members)
            seen: list[str] = []
            listener = lambda *a: seen.append(a[2])  # noqa: E731
            event.listen(db.engine, "before_cursor_execute", listener)
            try:
                reports.coach_report(db.session, user, period, "day")
                coach_sql = list(seen)
                seen.clear()
                reports.team_report(db.session, team, period)
            finally:
                event.remove(db.engine, "before_cursor_execute", listener)
                db.session.rollback()
            return coach_sql, seen

    empty = statements()
    world.run(
        lambda s: [
            _log(
                s,
                org,
                coach,
                datetime(2025, 1, 1 + i % 28, i % 24, tzinfo=UTC),
                notes="private",
                peer_ref=f"P{i}",
            )
            for i in range(60)
        ]
    )
    full = statements()
    assert [len(x) for x in full] == [len(x) for x in empty]
    assert len(full[0]) <= 6 and len(full[1]) <= 6
    for sql in full[0] + full[1]:
        assert "notes" not in sql
        if "FROM contacts" in sql:
            assert "count(" in sql.lower() or "sum(" in sql.lower(), sql


def test_sql_buckets_match_the_python_definition_every_day_of_two_years(world):
    """Weeks and months are bucketed in SQL (one dialect-specific expression each); they must
    agree with ``bucket_start`` on every day, leap day and year ends included."""
    from datetime import timedelta

    from sqlalchemy import Date, bindparam, select

    days = [date(2023, 12, 25) + timedelta(days=i) for i in range(800)]
    stmt = select(reports._bucket_of(bindparam("d", type_=Date), "week"),
                  reports._bucket_of(bindparam("d", type_=Date), "month"))

    def starts(s):
        conn = s.connection()
        return [tuple(conn.execute(stmt, {"d": d}).one()) for d in days]

    assert world.run(starts) == [(reports.bucket_start(d, "week"), reports.bucket_start(d, "month"))
                                 for d in days]
