"""A plain-Python reference for SPEC §6, computed from raw instants with zoneinfo.

Deliberately shares nothing with ``rapportnotes.services.reports`` except the SPEC: it derives
each contact's local date itself and buckets without any SQL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

MODALITIES = ["in_person", "phone", "video", "text", "other"]


@dataclass
class RefContact:
    coach_id: str
    peer_ref: str
    occurred_at: datetime
    duration: int
    modality: str
    codes: list[str]
    rating: int | None
    deleted: bool = False


@dataclass
class RefBehaviour:
    code: str
    polarity: str
    active: bool = True


@dataclass
class RefOrg:
    tz: str
    behaviours: list[RefBehaviour] = field(default_factory=list)  # in listing order


def _round(x: Decimal, q: str) -> float:
    return float(x.quantize(Decimal(q), rounding=ROUND_HALF_UP))


def _in_period(org: RefOrg, c: RefContact, first: date, last: date) -> bool:
    d = c.occurred_at.astimezone(ZoneInfo(org.tz)).date()
    return not c.deleted and first <= d <= last


def _totals(org: RefOrg, cs: list[RefContact]) -> dict:
    pol = {b.code: b.polarity for b in org.behaviours}
    rated = [c.rating for c in cs if c.rating is not None]
    tags = [code for c in cs for code in c.codes]
    return {
        "contacts": len(cs),
        "minutes": sum(c.duration for c in cs),
        "distinct_peers": len({c.peer_ref for c in cs}),
        "behaviour_tags": len(tags),
        "supportive_tags": sum(pol[t] == "supportive" for t in tags),
        "counterproductive_tags": sum(pol[t] == "counterproductive" for t in tags),
        "rated_contacts": len(rated),
        "mean_peer_rating": _round(Decimal(sum(rated)) / len(rated), "0.01") if rated else None,
    }


def _codes(org: RefOrg, cs: list[RefContact]) -> list[str]:
    used = {t for c in cs for t in c.codes}
    return [b.code for b in org.behaviours if b.active or b.code in used]


def _starts(first: date, last: date, bucket: str) -> list[date]:
    if bucket == "day":
        return [first + timedelta(days=i) for i in range((last - first).days + 1)]
    if bucket == "week":
        cur = first - timedelta(days=first.weekday())
        out = []
        while cur <= last:
            out.append(cur)
            cur += timedelta(days=7)
        return out
    out, y, m = [], first.year, first.month
    while date(y, m, 1) <= last:
        out.append(date(y, m, 1))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def coach_report(
    org: RefOrg, coach_id: str, contacts: list[RefContact], first: date, last: date, bucket: str
) -> dict:
    cs = [c for c in contacts if c.coach_id == coach_id and _in_period(org, c, first, last)]
    codes = _codes(org, cs)
    n = len(cs)
    starts = _starts(first, last, bucket)
    tz = ZoneInfo(org.tz)
    series = []
    for i, s in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else date.max
        inside = [c for c in cs if s <= c.occurred_at.astimezone(tz).date() < end]
        series.append(
            {
                "start": s.isoformat(),
                "contacts": len(inside),
                "minutes": sum(c.duration for c in inside),
                "behaviours": {code: sum(code in c.codes for c in inside) for code in codes},
            }
        )
    return {
        "totals": _totals(org, cs),
        "behaviours": [
            (
                code,
                sum(code in c.codes for c in cs),
                _round(Decimal(sum(code in c.codes for c in cs)) / n, "0.0001") if n else 0,
            )
            for code in codes
        ],
        "modalities": [
            (m, sum(c.modality == m for c in cs), sum(c.duration for c in cs if c.modality == m))
            for m in MODALITIES
        ],
        "series": series,
    }


def team_report(
    org: RefOrg, coach_ids: list[str], contacts: list[RefContact], first: date, last: date
) -> dict:
    cs = [c for c in contacts if c.coach_id in coach_ids and _in_period(org, c, first, last)]
    codes = _codes(org, cs)
    rows = {}
    for cid in coach_ids:
        mine = [c for c in cs if c.coach_id == cid]
        rows[cid] = {
            "totals": _totals(org, mine),
            "behaviours": {code: sum(code in c.codes for c in mine) for code in codes},
        }
    return {"coaches": rows, "totals": _totals(org, cs)}
