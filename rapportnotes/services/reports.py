"""Coach and team reports (SPEC §6), aggregated in SQL.

Every count comes from GROUP BY queries over ``contacts.local_date`` — the contact's calendar date
in the organisation's time zone, fixed when the contact is written — so SQLite and PostgreSQL
agree and no contact row is ever loaded into Python. Days are then rolled up into week and
month buckets (at most 731 small rows).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import false, func, select
from sqlalchemy.orm import Session

from rapportnotes.models import MODALITIES, Behaviour, Contact, ContactBehaviour, Team, User

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


def _live(org_id: uuid.UUID, first: date, last: date) -> list[Any]:
    return [
        Contact.organisation_id == org_id,
        Contact.deleted == false(),
        Contact.local_date >= first,
        Contact.local_date <= last,
    ]


def _taxonomy(session: Session, org_id: uuid.UUID) -> list[Behaviour]:
    """Every behaviour of the organisation, in listing order (one query per report)."""
    from rapportnotes.services.behaviours import list_behaviours

    return list_behaviours(session, org_id)


def _reported(taxonomy: list[Behaviour], counted: set[str]) -> list[Behaviour]:
    """Active behaviours, plus retired ones that were counted in the period."""
    return [b for b in taxonomy if b.active or b.code in counted]


def _totals(
    session: Session, where: list[Any], code_counts: dict[str, int], polarity: dict[str, str]
) -> dict[str, Any]:
    contacts, minutes, peers, rated, rating_sum = session.execute(
        select(
            func.count(),
            func.coalesce(func.sum(Contact.duration_minutes), 0),
            func.count(func.distinct(Contact.peer_ref)),
            func.count(Contact.peer_rating),
            func.coalesce(func.sum(Contact.peer_rating), 0),
        ).where(*where)
    ).one()
    supportive = sum(n for c, n in code_counts.items() if polarity.get(c) == "supportive")
    counter = sum(n for c, n in code_counts.items() if polarity.get(c) == "counterproductive")
    return {
        "contacts": contacts,
        "minutes": int(minutes),
        "distinct_peers": peers,
        "behaviour_tags": sum(code_counts.values()),
        "supportive_tags": supportive,
        "counterproductive_tags": counter,
        "rated_contacts": rated,
        "mean_peer_rating": round_half_up(Decimal(int(rating_sum)) / rated, "0.01") if rated else None,
    }


def _tag_join():
    return ContactBehaviour.__table__.join(
        Contact.__table__,
        (ContactBehaviour.organisation_id == Contact.organisation_id)
        & (ContactBehaviour.contact_id == Contact.id),
    )


def coach_report(session: Session, coach: User, period: Period, bucket: str) -> dict[str, Any]:
    org_id, first, last = coach.organisation_id, period.first, period.last
    where = [*_live(org_id, first, last), Contact.coach_id == coach.id]

    day_rows = session.execute(
        select(Contact.local_date, func.count(), func.coalesce(func.sum(Contact.duration_minutes), 0))
        .where(*where)
        .group_by(Contact.local_date)
    ).all()
    day_codes = session.execute(
        select(Contact.local_date, ContactBehaviour.code, func.count())
        .select_from(_tag_join())
        .where(*where)
        .group_by(Contact.local_date, ContactBehaviour.code)
    ).all()
    modality_rows = {
        m: (n, int(mins))
        for m, n, mins in session.execute(
            select(Contact.modality, func.count(), func.coalesce(func.sum(Contact.duration_minutes), 0))
            .where(*where)
            .group_by(Contact.modality)
        )
    }

    code_counts: dict[str, int] = {}
    for _day, code, n in day_codes:
        code_counts[code] = code_counts.get(code, 0) + n
    taxonomy = _taxonomy(session, org_id)
    polarity = {b.code: b.polarity for b in taxonomy}
    totals = _totals(session, where, code_counts, polarity)
    catalogue = _reported(taxonomy, set(code_counts))
    codes = [b.code for b in catalogue]

    series_index = {
        s: {"start": s.isoformat(), "contacts": 0, "minutes": 0, "behaviours": dict.fromkeys(codes, 0)}
        for s in bucket_starts(first, last, bucket)
    }
    for day, n, mins in day_rows:
        entry = series_index[bucket_start(day, bucket)]
        entry["contacts"] += n
        entry["minutes"] += int(mins)
    for day, code, n in day_codes:
        entry = series_index[bucket_start(day, bucket)]
        entry["behaviours"][code] = entry["behaviours"].get(code, 0) + n

    contacts = totals["contacts"]
    return {
        "coach": {"id": str(coach.id), "display_name": coach.display_name},
        "from": first.isoformat(),
        "to": last.isoformat(),
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
            for b in catalogue
        ],
        "modalities": [
            {
                "modality": m,
                "contacts": modality_rows.get(m, (0, 0))[0],
                "minutes": modality_rows.get(m, (0, 0))[1],
            }
            for m in MODALITIES
        ],
        "series": list(series_index.values()),
    }


def team_coaches(session: Session, team: Team) -> list[User]:
    """The team's coach members, by display name (then id) for a stable row order."""
    ids = [m.user_id for m in team.members if m.role == "coach"]
    if not ids:
        return []
    return list(
        session.scalars(
            select(User)
            .where(User.organisation_id == team.organisation_id, User.id.in_(ids))
            .order_by(User.display_name, User.id)
        )
    )


def team_report(session: Session, team: Team, period: Period) -> dict[str, Any]:
    org_id = team.organisation_id
    coaches = team_coaches(session, team)
    ids = [c.id for c in coaches]
    base = _live(org_id, period.first, period.last)
    where = [*base, Contact.coach_id.in_(ids)] if ids else [*base, Contact.coach_id.is_(None)]

    per_coach = {
        cid: (n, int(mins), peers, rated, int(rsum))
        for cid, n, mins, peers, rated, rsum in session.execute(
            select(
                Contact.coach_id,
                func.count(),
                func.coalesce(func.sum(Contact.duration_minutes), 0),
                func.count(func.distinct(Contact.peer_ref)),
                func.count(Contact.peer_rating),
                func.coalesce(func.sum(Contact.peer_rating), 0),
            )
            .where(*where)
            .group_by(Contact.coach_id)
        )
    }
    coach_codes: dict[uuid.UUID, dict[str, int]] = {cid: {} for cid in ids}
    for cid, code, n in session.execute(
        select(Contact.coach_id, ContactBehaviour.code, func.count())
        .select_from(_tag_join())
        .where(*where)
        .group_by(Contact.coach_id, ContactBehaviour.code)
    ):
        coach_codes[cid][code] = n

    all_counts: dict[str, int] = {}
    for counts in coach_codes.values():
        for code, n in counts.items():
            all_counts[code] = all_counts.get(code, 0) + n
    taxonomy = _taxonomy(session, org_id)
    polarity = {b.code: b.polarity for b in taxonomy}
    codes = [b.code for b in _reported(taxonomy, set(all_counts))]

    rows = []
    for coach in coaches:
        n, mins, peers, rated, rsum = per_coach.get(coach.id, (0, 0, 0, 0, 0))
        counts = coach_codes[coach.id]
        rows.append(
            {
                "coach": {"id": str(coach.id), "display_name": coach.display_name},
                "totals": {
                    "contacts": n,
                    "minutes": mins,
                    "distinct_peers": peers,
                    "behaviour_tags": sum(counts.values()),
                    "supportive_tags": sum(v for c, v in counts.items() if polarity.get(c) == "supportive"),
                    "counterproductive_tags": sum(
                        v for c, v in counts.items() if polarity.get(c) == "counterproductive"
                    ),
                    "rated_contacts": rated,
                    "mean_peer_rating": round_half_up(Decimal(rsum) / rated, "0.01") if rated else None,
                },
                "behaviours": {code: counts.get(code, 0) for code in codes},
            }
        )
    return {
        "team": {"id": str(team.id), "name": team.name},
        "from": period.first.isoformat(),
        "to": period.last.isoformat(),
        "coaches": rows,
        "totals": _totals(session, where, all_counts, polarity),
    }
