"""Coach and team reports (SPEC §6), aggregated in SQL.

Every count comes from GROUP BY queries over ``contacts.local_date`` — the contact's calendar date
in the organisation's time zone, fixed when the contact is written — so SQLite and PostgreSQL
agree and no contact row is ever loaded into Python. Days are then rolled up into week and
month buckets (a few hundred small rows at most).

Each report is one ``UNION ALL`` of its aggregates (per day, per modality, per coach, totals,
tag counts), built once per process with bound parameters: a report costs one round trip for
the figures and one for the taxonomy, and no SQL is compiled per request. On PostgreSQL the
coach report goes further (``checked_coach_statement``): caller check, who may read, figures,
taxonomy and the audit row in one statement, so one round trip in all.
"""

from __future__ import annotations

import functools
import json
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, NamedTuple, Protocol

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
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.engine import Engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.functions import FunctionElement

from rapportnotes import driver
from rapportnotes.models import (
    MODALITIES,
    AuditEvent,
    Behaviour,
    Contact,
    ContactBehaviour,
    Team,
    TeamMember,
    User,
)
from rapportnotes.security import TokenCaller, checked_caller, readable_coach
from rapportnotes.services import audit
from rapportnotes.services.behaviours import catalogue, listing_order

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
    """Every bucket covering [first, last], gap-free, the first starting on or before ``first``.
    Never steps past the last one (a period ending in December 9999 has no next bucket)."""
    starts, cur, end = [], bucket_start(first, bucket), bucket_start(last, bucket)
    while True:
        starts.append(cur)
        if cur >= end:
            return starts
        cur = _next_start(cur, bucket)


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


# An untyped NULL, rendered bare (no cast, no label), to keep long statements short. PostgreSQL
# types a UNION ALL's columns pair by pair from the left, so the first member of each union
# still says its NULLs' types (``_none``); after that a bare NULL takes the column's type.
_NULL = literal_column("NULL")


def _minutes(c: Any = _C) -> Any:
    return func.coalesce(func.sum(c.duration_minutes), 0)


def _contact_figures(c: Any = _C) -> tuple[Any, ...]:
    """count, minutes, distinct peers, rated contacts, sum of ratings (of ``c``'s rows)."""
    return (
        func.count(),
        _minutes(c),
        func.count(func.distinct(c.peer_ref)),
        func.count(c.peer_rating),
        func.coalesce(func.sum(c.peer_rating), 0),
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


def _coach_parts(bucket: str, dialect: str, *gate: Any, name: Any = _NULL) -> list[Select[Any]]:
    """The selects of ``coach_statement`` (``name`` as the key of the ``total`` row). They read
    the coach's live contacts in the period (gated by ``gate``), each with the start of its
    bucket, from one CTE: one index range scan instead of one per aggregate. On PostgreSQL each
    contact's tags are read per contact (as in ``team_statement``): with a join the planner may
    hash the CTE's rows against a scan of the organisation's whole tag table."""
    live = (
        select(_C.id, _bucket_of(_C.local_date, bucket).label("start"), _C.modality, _C.duration_minutes,
               _C.peer_ref, _C.peer_rating)
        .where(*_live(_C.coach_id == bindparam("coach", type_=_C.coach_id.type)), *gate)
        .cte("live")
    )
    c = live.c
    org = bindparam("org", type_=_T.organisation_id.type)
    if dialect == "postgresql":
        tags = _per_contact_tags(org, c.id)
        tagged, code = live.join(tags, true()), tags.c.code
    else:
        on = (_T.organisation_id == org) & (_T.contact_id == c.id)
        tagged, code = live.join(ContactBehaviour.__table__, on), _T.code
    start = c.start
    no_int = _none(Integer)
    return [  # the first says the types of its NULLs (see _NULL)
        select(_kind("bucket"), start, _none(String), func.count(), _minutes(c), no_int, no_int, no_int)
        .group_by(start),
        select(_kind("modality"), _NULL, c.modality, func.count(), _minutes(c), _NULL, _NULL, _NULL)
        .group_by(c.modality),
        select(_kind("total"), _NULL, name, *_contact_figures(c)),
        select(_kind("tag"), start, code, func.count(), _NULL, _NULL, _NULL, _NULL)
        .select_from(tagged)
        .group_by(start, code),
    ]


def _per_contact_tags(org: Any, contact_id: Any) -> Any:
    """PostgreSQL: the codes of one contact, as a LATERAL subquery behind ``OFFSET 0`` (which
    keeps the planner from flattening it into a join): an index lookup per contact."""
    return (select(_T.code)
            .where(_T.organisation_id == org, _T.contact_id == contact_id)
            .offset(literal_column("0"))
            .lateral("tags"))


@functools.cache
def coach_statement(bucket: str = "day", dialect: str = "sqlite") -> CompoundSelect:
    """Rows of (kind, start, key, n, minutes, peers, rated, rating_sum), kind one of
    ``bucket`` (per bucket of local days), ``modality``, ``total`` and ``tag`` (per bucket and
    code). Bucketing in SQL keeps the rows few (a 90-day weekly report: ~200 instead of ~700)."""
    return union_all(*_coach_parts(bucket, dialect))


@functools.cache
def checked_coach_statement(bucket: str) -> CompoundSelect:
    """PostgreSQL: a whole coach report pull as one statement (one round trip, its own
    transaction), for a caller known only from their token.

    ``caller`` is ``security.checked_caller``; ``subject`` is ``security.readable_coach``, the
    coach only if that caller may read their report. Nothing
    else is read or written without a subject: the figures and the taxonomy are gated on it,
    and the ``report.coach`` audit row is inserted from it, so a refused or stale caller gets
    no rows and leaves no trace (the view then takes the ordinary path, which says why).

    Rows are those of ``coach_statement``, with the subject's display name as the key of the
    ``total`` row (NULL: no subject), and one ``taxonomy`` row (the taxonomy in listing order as
    a JSON array of [code, label, category, polarity, active], as key).
    """
    b, a = Behaviour.__table__, AuditEvent.__table__
    org = bindparam("org", type_=_C.organisation_id.type)
    caller = checked_caller(org, bindparam("uid", type_=User.id.type))
    subject = readable_coach(org, bindparam("coach", type_=User.id.type), caller)
    gate = select(subject.c.id).exists()
    entry = func.json_build_array(b.c.code, b.c.label, b.c.category, b.c.polarity, b.c.active)
    taxonomy = cast(func.json_agg(aggregate_order_by(entry, *listing_order())), String)
    event = select(*(bindparam(f"a_{col.name}", type_=col.type) for col in a.columns)).select_from(subject)
    return union_all(
        *_coach_parts(bucket, "postgresql", gate, name=select(subject.c.display_name).scalar_subquery()),
        select(_kind("taxonomy"), _NULL, taxonomy, _NULL, _NULL, _NULL, _NULL, _NULL)
        .where(b.c.organisation_id == org, gate),
    ).add_cte(a.insert().from_select([col.name for col in a.columns], event).cte("audit"))


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
        per_contact = _per_contact_tags(_C.organisation_id, _C.id)
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


class _Behaviour(NamedTuple):
    code: str
    label: str
    category: str
    polarity: str
    active: bool


def coach_report(session: Session, coach: Subject, period: Period, bucket: str) -> dict[str, Any]:
    """The report of a coach the caller may read (already checked)."""
    params = _params(coach.organisation_id, period, coach=coach.id)
    conn = session.connection()
    rows = conn.execute(coach_statement(bucket, conn.dialect.name), params).all()
    return _coach_json(coach.id, coach.display_name, period, bucket, rows,
                       catalogue(session, coach.organisation_id))


def checked_coach_report(
    engine: Engine, *, caller: TokenCaller, tz: str, coach_id: uuid.UUID, period: Period, bucket: str,
    actor: audit.Actor, roles: tuple[str, ...],
) -> dict[str, Any] | None:
    """PostgreSQL: the report with its caller check and audit row in one statement
    (``checked_coach_statement``), run as its own transaction; None when that statement found
    no subject the caller may read (it then stored nothing either). ``tz`` is the zone the
    period was worked out in: it must still be the organisation's."""
    event = audit.event_row(actor, "report.coach", target_type="user", target_id=coach_id)
    params = {f"a_{k}": v for k, v in event.items()}
    params.update(_params(caller.organisation_id, period, coach=coach_id), uid=caller.id, roles=list(roles),
                  generation=caller.token_generation, jti=caller.jti, timezone=tz)
    name, figures, taxonomy = None, [], []
    for row in driver.fetch_autocommit(engine, checked_coach_statement(bucket), params):
        if row[0] == "taxonomy":
            taxonomy = [_Behaviour(*b) for b in json.loads(row[2] or "[]")]
        else:
            if row[0] == "total":
                name = row[2]
            figures.append(row)
    if name is None:
        return None
    return _coach_json(coach_id, name, period, bucket, figures, taxonomy)


def _coach_json(coach_id: uuid.UUID, display_name: str, period: Period, bucket: str, rows: list[Any],
                taxonomy: list[Any]) -> dict[str, Any]:
    """The report document from ``coach_statement``'s rows and the taxonomy in listing order.

    One pass over the rows, indexing rather than unpacking them: this runs on every pull, and
    a 90-day weekly report is some 230 rows (most of them per bucket and code)."""
    code_counts: dict[str, int] = {}
    per_bucket: dict[date, tuple[int, int]] = {}
    bucket_tags: dict[date, dict[str, int]] = {}
    figures, modalities = _NO_FIGURES, {}
    for row in rows:
        kind = row[0]
        if kind == "tag":
            start, code, n = row[1], row[2], row[3]
            code_counts[code] = code_counts.get(code, 0) + n
            tags = bucket_tags.get(start)
            if tags is None:
                tags = bucket_tags[start] = {}
            tags[code] = n
        elif kind == "bucket":
            per_bucket[row[1]] = (row[3], int(row[4]))
        elif kind == "modality":
            modalities[row[2]] = (row[3], int(row[4]))
        elif kind == "total":
            figures = tuple(row[3:8])
    catalogue_rows = _reported(taxonomy, code_counts)
    no_tags = dict.fromkeys([b.code for b in catalogue_rows], 0)

    series = []
    for s in bucket_starts(period.first, period.last, bucket):
        contacts_in, minutes_in = per_bucket.get(s, (0, 0))
        behaviours = no_tags.copy()
        tags = bucket_tags.get(s)
        if tags:
            behaviours.update(tags)
        series.append({"start": s.isoformat(), "contacts": contacts_in, "minutes": minutes_in,
                       "behaviours": behaviours})

    totals = _totals(figures, code_counts, {b.code: b.polarity for b in taxonomy})
    contacts = totals["contacts"]
    return {
        "coach": {"id": str(coach_id), "display_name": display_name},
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
                "share": _share(code_counts.get(b.code, 0), contacts),
            }
            for b in catalogue_rows
        ],
        "modalities": [
            {"modality": m, "contacts": modalities.get(m, (0, 0))[0], "minutes": modalities.get(m, (0, 0))[1]}
            for m in MODALITIES
        ],
        "series": series,
    }


def _share(count: int, contacts: int) -> float | int:
    """``count / contacts`` rounded half up to 4 places (as ``round_half_up``), in integers: a
    report has one per behaviour, and exact integer arithmetic needs no Decimal context. 0 when
    there were no contacts."""
    if not contacts:
        return 0
    return (count * 20000 + contacts) // (2 * contacts) / 10000


def name_order(display_name: str) -> str:
    """A display name as a reader sorts it: ignoring case and accents ("alice" and "Alice" before
    "bob", "Émile" before "zed"). Sorted here rather than by ``ORDER BY``, whose order is the
    database's collation: binary on SQLite, and on PostgreSQL whatever the database was created
    with (C, en_US, ICU), so the two would disagree."""
    decomposed = unicodedata.normalize("NFKD", display_name)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()


def team_coaches(session: Session, team: Team) -> list[Row[Any]]:
    """The team's coach members as (id, display_name), by display name (``name_order``), then as
    written, then id (a stable order, the same on every database)."""
    params = {"org": team.organisation_id, "team": team.id}
    rows = session.connection().execute(_team_coaches_statement(), params)
    return sorted(rows, key=lambda r: (name_order(r.display_name), r.display_name, str(r.id)))


def team_report(session: Session, team: Team, period: Period) -> dict[str, Any]:
    return team_report_and_codes(session, team, period)[0]


def team_report_and_codes(session: Session, team: Team, period: Period) -> tuple[dict[str, Any], list[str]]:
    """The team report and the behaviour codes it reports, in taxonomy order: the CSV's columns,
    which a team without coach members must have too."""
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

    report = {
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
    return report, codes
