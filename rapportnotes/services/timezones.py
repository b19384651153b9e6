"""Calendar dates in an organisation's time zone, turned into UTC instants for queries."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones


@lru_cache(maxsize=256)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


# Names the host's zone directory adds that are not IANA zones: ``localtime`` follows whatever
# the server's own clock is set to, so an organisation's dates would move with the host.
_NOT_IANA = frozenset({"localtime", "posixrules", "Factory"})


@lru_cache(maxsize=1)
def _known() -> frozenset[str]:
    return frozenset(available_timezones()) - _NOT_IANA


def is_valid_zone(name: str) -> bool:
    if name not in _known():
        return False
    try:
        zone(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def local_date(instant: datetime, tz_name: str) -> date:
    return instant.astimezone(zone(tz_name)).date()


def day_start_utc(day: date, tz_name: str) -> datetime:
    """The UTC instant at which ``day`` starts in the zone (DST-safe: wall midnight, folded)."""
    return datetime.combine(day, time(0), tzinfo=zone(tz_name)).astimezone(UTC)


def local_range_utc(first: date | None, last: date | None, tz_name: str
                    ) -> tuple[datetime | None, datetime | None]:
    """``[first, last]`` inclusive local dates as a half-open UTC interval."""
    start = day_start_utc(first, tz_name) if first else None
    end = day_start_utc(last + timedelta(days=1), tz_name) if last else None
    return start, end


def today(tz_name: str) -> date:
    return datetime.now(UTC).astimezone(zone(tz_name)).date()
