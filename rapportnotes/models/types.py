"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """An aware timestamp, stored in UTC.

    PostgreSQL keeps ``timestamptz``; SQLite has no zone type, so the value is stored as naive
    UTC (which also sorts correctly as text) and made aware again on the way out. Naive values
    are refused on the way in: they are always a bug here.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("naive datetime refused; use an aware datetime")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def code_point_order(column: ColumnElement[str], dialect: Dialect) -> ColumnElement[str]:
    """``column`` compared by code point, as SQLite compares text, on every database.

    PostgreSQL compares text with the collation the database was created with: C here, en_US on
    many servers ("alpha" before "Team B", punctuation ignored at first). A listing ordered by text
    and the pages its cursors cut would then differ from SQLite's; the C collation of a UTF-8
    database is code point order."""
    return column.collate("C") if dialect.name == "postgresql" else column


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> uuid.UUID:
    return uuid.uuid4()
