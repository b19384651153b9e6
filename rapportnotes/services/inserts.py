"""INSERTs that meet an existing row without failing, on SQLite and PostgreSQL alike.

Both databases spell ``ON CONFLICT`` the same way, but SQLAlchemy builds it per dialect. A
check-then-insert lets two concurrent requests both pass the check and one of them fail on the
key (a 500); these let the database decide in one statement.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Insert, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def _dialect(session: Session):
    return postgresql if session.get_bind().dialect.name == "postgresql" else sqlite


def insert_or_ignore(session: Session, table: Table) -> Insert:
    """An INSERT that leaves an existing row (same primary key) alone."""
    return _dialect(session).insert(table).on_conflict_do_nothing()


def upsert(session: Session, table: Table, keys: Sequence[str], values: Mapping[str, Any]) -> Insert:
    """Insert ``values``, or update the row with the same ``keys`` to them."""
    stmt = _dialect(session).insert(table).values(**values)
    return stmt.on_conflict_do_update(index_elements=list(keys),
                                      set_={k: stmt.excluded[k] for k in values if k not in keys})
