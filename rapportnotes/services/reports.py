"""Coach and team reports (SPEC §6), aggregated in SQL.

Every count comes from GROUP BY queries over ``contacts.local_date`` — the contact's calendar date
in the organisation's time zone, fixed when the contact is written — so SQLite and PostgreSQL
agree and no contact row is ever loaded into Python. Days are then rolled up into week and
month buckets (a few hundred small rows at most).

Each report is one ``UNION ALL`` of its aggregates (per day, per modality, per coach, totals,
tag counts), built once per process with bound parameters: a report costs one round trip for
the figures and one for the taxonomy, and no SQL is compiled per request.
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Protocol

from sqlalchemy import (
    CompoundSelect,
    Date,
    Integer,
    Row,
    Select,
    String,
    Uuid,
    bindparam,
    cast,
    false,
    func,
    literal_column,
    null,
    select,
    true,
    union_all,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.functions import FunctionElement

from rapportnotes.models import MODALITIES, Contact, ContactBehaviour, Team, TeamMember, User
from rapportnotes.services.behaviours import catalogue

BUCKETS = ("day", "week", "month")
MAX_SPAN_DAYS = 731
DEFAULT_SPAN_DAYS = 30


def round_half_up(value: Decimal, places: str) -> float:
    """Reports round half up (0.125 -> 0.13), not to even; documented in openapi.yaml."""
    return float(value.quantize(Decimal(places), rounding=ROUND_HALF_UP))


def bucket_start(day: date, bucket: str) -> date:
    if bucket == "week":
        return day - timedelta(days=day.weekday())  # ISO weeks start on Monday
    if bucket == "month":
        return day.replace(day=1)
    return day


def _next_start(start: date, bucket: str) -> date:
    if bucket == "day":
        return start + timedelta(days=1)
    if bucket == "week":
        return start + timedelta(days=7)
    return (start.replace(day=28) + timedelta(days=4)).replace(day=1)


def bucket_starts(first: date, last: date, bucket: str) -> list[date]:
    """Every bucket covering [first, last], gap-free, the first starting on or before ``first``."""
    starts, cur = [], bucket_start(first, bucket)
    while cur <= last:
        starts.append(cur)
        cur = _next_start(cur, bucket)
    return starts


@dataclass(frozen=True)
class Period:
    first: date
    last: date


_C = Contact.__table__.c
_T = ContactBehaviour.__table__.c
_TAGGED = ContactBehaviour.__table__.join(
    Contact.__table__, (_T.organisation_id == _C.organisation_id) & (_T.contact_id == _C.id)
)


def _kind(name: str) -> Any:
    return literal_column(f"'{name}'", String)


def _none(type_: Any) -> Any:
    return cast(null(), type_)


def _minutes() -> Any:
    return func.coalesce(func.sum(_C.duration_minutes), 0)


def _contact_figures() -> tuple[Any, ...]:
    """count, minutes, distinct peers, rated contacts, sum of ratings."""
    return (
        func.count(),
        _minutes(),
        func.count(func.distinct(_C.peer_ref)),
        func.count(_C.peer_rating),
        func.coalesce(func.sum(_C.peer_rating), 0),
    )


def _live(*scope: Any) -> list[Any]:
    """Live contacts of the organisation in the period, narrowed by ``scope`` (coach(es))."""
    return [
        _C.organisation_id == bindparam("org", type_=_C.organisation_id.type),
        *scope,
        _C.deleted == false(),
        _C.local_date >= bindparam("first", type_=Date),
        _C.local_date <= bindparam("last", type_=Date),
    ]


class _WeekStart(FunctionElement[date]):
    """The Monday starting ``day``'s ISO week (SQL twin of ``bucket_start``)."""

    type = Date()
    name = "week_start"
    inherit_cache = True


class _MonthStart(FunctionElement[date]):
    """The first of ``day``'s month (SQL twin of ``bucket_start``)."""

    type = Date()
    name = "month_start"
    inherit_cache = True


def _only_argument(element: FunctionElement[Any], compiler: Any, **kw: Any) -> str:
    (day,) = element.clauses
    return compiler.process(day, **kw)


@compiles(_WeekStart, "postgresql")
def _week_start_pg(element: _WeekStart, compiler: Any, **kw: Any) -> str:
    day = _only_argument(element, compiler, **kw)
    return f"({day} - CAST(EXTRACT(ISODOW FROM {day}) AS INTEGER) + 1)"  # date - int is a date


@compiles(_WeekStart, "sqlite")
def _week_start_sqlite(element: _WeekStart, compiler: Any, **kw: Any) -> str:
    day = _only_argument(element, compiler, **kw)
    return f"date({day}, '-' || ((CAST(strftime('%w', {day}) AS INTEGER) + 6) % 7) || ' days')"


@compiles(_MonthStart, "postgresql")
def _month_start_pg(element: _MonthStart, compiler: Any, **kw: Any) -> str:
    return f"CAST(date_trunc('month', CAST({_only_argument(element, compiler, **kw)} AS TIMESTAMP)) AS DATE)"


@compiles(_MonthStart, "sqlite")
def _month_start_sqlite(element: _MonthStart, compiler: Any, **kw: Any) -> str:
    return f"date({_only_argument(element, compiler, **kw)}, 'start of month')"


def _bucket_of(day: Any, bucket: str) -> Any:
    return {"day": day, "week": _WeekStart(day), "month": _MonthStart(day)}[bucket]


@functools.cache
def coach_statement(bucket: str = "day") -> CompoundSelect:
    """Rows of (kind, start, key, n, minutes, peers, rated, rating_sum), kind one of
    ``bucket`` (per bucket of local days), ``modality``, ``total`` and ``tag`` (per bucket and
    code). Bucketing in SQL keeps the rows few (a 90-day weekly report: ~200 instead of ~700)."""
    where = _live(_C.coach_id == bindparam("coach", type_=_C.coach_id.type))
    start = _bucket_of(_C.local_date, bucket)
    no_int = _none(Integer)
    return union_all(
        select(_kind("bucket"), start, _none(String), func.count(), _minutes(), no_int, no_int, no_int)
        .where(*where)
        .group_by(start),
        select(_kind("modality"), _none(Date), _C.modality, func.count(), _minutes(), no_int, no_int, no_int)
        .where(*where)
        .group_by(_C.modality),
        select(_kind("total"), _none(Date), _none(String), *_contact_figures()).where(*where),
        select(_kind("tag"), start, _T.code, func.count(), no_int, no_int, no_int, no_int)
        .select_from(_TAGGED)
        .where(*where)
        .group_by(start, _T.code),
    )


@functools.cache
def team_statement(dialect: str = "sqlite") -> CompoundSelect:
    """Rows of (kind, coach_id, code, n, minutes, peers, rated, rating_sum), kind one of
    ``coach`` (per coach), ``total`` (the team as a whole) and ``tag`` (per coach and code).

    On PostgreSQL the tags are read per contact (a LATERAL subquery behind ``OFFSET 0``, which
    keeps the planner from flattening it into a join): a team's quarter is thousands of contacts,
    and with a plain join the planner may hash-join them against a scan of the organisation's
    whole tag table, whose cost grows with the history rather than with the team."""
    where = _live(_C.coach_id.in_(bindparam("coaches", type_=_C.coach_id.type, expanding=True)))
    no_int = _none(Integer)
    if dialect == "postgresql":
        per_contact = (select(_T.code)
                       .where(_T.organisation_id == _C.organisation_id, _T.contact_id == _C.id)
                       .offset(literal_column("0"))
                       .lateral("tags"))
        tagged, code = Contact.__table__.join(per_contact, true()), per_contact.c.code
    else:
        tagged, code = _TAGGED, _T.code
    return union_all(
        select(_kind("coach"), _C.coach_id, _none(String), *_contact_figures())
        .where(*where)
        .group_by(_C.coach_id),
        select(_kind("total"), _none(Uuid), _none(String), *_contact_figures()).where(*where),
        select(_kind("tag"), _C.coach_id, code, func.count(), no_int, no_int, no_int, no_int)
        .select_from(tagged)
        .where(*where)
        .group_by(_C.coach_id, code),
    )


@functools.cache
def _team_coaches_statement() -> Select[Any]:
    m = TeamMember.__table__.c
    return (
        select(User.id, User.display_name)
        .join(TeamMember, (m.organisation_id == User.organisation_id) & (m.user_id == User.id))
        .where(
            m.organisation_id == bindparam("org", type_=m.organisation_id.type),
            m.team_id == bindparam("team", type_=m.team_id.type),
            m.role == "coach",
        )
        .order_by(User.display_name, User.id)
    )


_NO_FIGURES = (0, 0, 0, 0, 0)  # no contacts: what _contact_figures() would give


def _reported(taxonomy: list[Row[Any]], counted: dict[str, int]) -> list[Row[Any]]:
    """Active behaviours, plus retired ones that were counted in the period."""
    return [b for b in taxonomy if b.active or b.code in counted]


def _totals(figures: tuple[int, int, int, int, int], codes: dict[str, int], polarity: dict[str, str]) -> dict:
    contacts, minutes, peers, rated, rating_sum = figures
    return {
        "contacts": contacts,
        "minutes": int(minutes),
        "distinct_peers": peers,
        "behaviour_tags": sum(codes.values()),
        "supportive_tags": sum(n for c, n in codes.items() if polarity.get(c) == "supportive"),
        "counterproductive_tags": sum(n for c, n in codes.items() if polarity.get(c) == "counterproductive"),
        "rated_contacts": rated,
        "mean_peer_rating": round_half_up(Decimal(int(rating_sum)) / rated, "0.01") if rated else None,
    }


def _params(org_id: uuid.UUID, period: Period, **more: Any) -> dict[str, Any]:
    return {"org": org_id, "first": period.first, "last": period.last, **more}


class Subject(Protocol):
    """Who a coach report is about: a ``User`` or the row ``find_coach`` returns."""

    id: uuid.UUID
    organisation_id: uuid.UUID
    display_name: str


@functools.cache
def _subject_statement() -> Select[Any]:
    u = User.__table__.c
    return select(u.id, u.organisation_id, u.display_name, u.role).where(
        u.organisation_id == bindparam("org", type_=User.organisation_id.type),
        u.id == bindparam("uid", type_=User.id.type),
    )


def find_coach(session: Session, org_id: uuid.UUID, coach_id: uuid.UUID) -> Row[Any] | None:
    """A report's subject as a plain row (id, organisation_id, display_name, role): every pull
    loads one, and a report needs no ORM object (prebuilt, so no per-request statement work)."""
    return session.connection().execute(_subject_statement(), {"org": org_id, "uid": coach_id}).first()


def coach_report(session: Session, coach: Subject, period: Period, bucket: str) -> dict[str, Any]:
    org_id = coach.organisation_id
    params = _params(org_id, period, coach=coach.id)
    rows = session.connection().execute(coach_statement(bucket), params).all()
    taxonomy = catalogue(session, org_id)
    polarity = {b.code: b.polarity for b in taxonomy}

    code_counts: dict[str, int] = {}
    figures, modalities = _NO_FIGURES, {}
    for kind, _day, key, n, minutes, *rest in rows:
        if kind == "tag":
            code_counts[key] = code_counts.get(key, 0) + n
        elif kind == "modality":
            modalities[key] = (n, int(minutes))
        elif kind == "total":
            figures = (n, minutes, *rest)
    catalogue_rows = _reported(taxonomy, code_counts)
    codes = [b.code for b in catalogue_rows]

    series = {
        s: {"start": s.isoformat(), "contacts": 0, "minutes": 0, "behaviours": dict.fromkeys(codes, 0)}
        for s in bucket_starts(period.first, period.last, bucket)
    }
    for kind, start, key, n, minutes, *_ in rows:
        if kind == "bucket":
            entry = series[start]
            entry["contacts"] = n
            entry["minutes"] = int(minutes)
        elif kind == "tag":
            series[start]["behaviours"][key] = n

    totals = _totals(figures, code_counts, polarity)
    contacts = totals["contacts"]
    return {
        "coach": {"id": str(coach.id), "display_name": coach.display_name},
        "from": period.first.isoformat(),
        "to": period.last.isoformat(),
        "bucket": bucket,
        "totals": totals,
        "behaviours": [
            {
                "code": b.code,
                "label": b.label,
                "category": b.category,
                "polarity": b.polarity,
                "count": code_counts.get(b.code, 0),
                "share": round_half_up(Decimal(code_counts.get(b.code, 0)) / contacts, "0.0001")
                if contacts
                else 0,
            }
            for b in catalogue_rows
        ],
        "modalities": [
            {"modality": m, "contacts": modalities.get(m, (0, 0))[0], "minutes": modalities.get(m, (0, 0))[1]}
            for m in MODALITIES
        ],
        "series": list(series.values()),
    }


def team_coaches(session: Session, team: Team) -> list[Row[Any]]:
    """The team's coach members as (id, display_name), by display name then id (a stable order)."""
    params = {"org": team.organisation_id, "team": team.id}
    return list(session.connection().execute(_team_coaches_statement(), params))


def team_report(session: Session, team: Team, period: Period) -> dict[str, Any]:
    org_id = team.organisation_id
    coaches = team_coaches(session, team)
    ids = [c.id for c in coaches]
    conn = session.connection()
    rows = conn.execute(team_statement(conn.dialect.name), _params(org_id, period, coaches=ids)).all()
    taxonomy = catalogue(session, org_id)
    polarity = {b.code: b.polarity for b in taxonomy}

    per_coach: dict[uuid.UUID, tuple] = {}
    coach_codes: dict[uuid.UUID, dict[str, int]] = {cid: {} for cid in ids}
    all_counts: dict[str, int] = {}
    team_figures = _NO_FIGURES
    for kind, cid, code, *figures in rows:
        if kind == "coach":
            per_coach[cid] = tuple(figures)
        elif kind == "total":
            team_figures = tuple(figures)
        else:
            n = figures[0]
            coach_codes[cid][code] = n
            all_counts[code] = all_counts.get(code, 0) + n
    codes = [b.code for b in _reported(taxonomy, all_counts)]

    return {
        "team": {"id": str(team.id), "name": team.name},
        "from": period.first.isoformat(),
        "to": period.last.isoformat(),
        "coaches": [
            {
                "coach": {"id": str(c.id), "display_name": c.display_name},
                "totals": _totals(per_coach.get(c.id, _NO_FIGURES), coach_codes[c.id], polarity),
                "behaviours": {code: coach_codes[c.id].get(code, 0) for code in codes},
            }
            for c in coaches
        ],
        "totals": _totals(team_figures, all_counts, polarity),
    }
