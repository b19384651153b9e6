"""One prebuilt statement as driver SQL, in autocommit, on a plain engine connection.

For the hottest request only (a contact create on PostgreSQL, one self-checking statement): the
ORM session's bookkeeping and SQLAlchemy's compiled-statement path (cache lookup, bind
processing, result set-up) cost more there than the driver's own work. The statement is still
built with SQLAlchemy Core from the models; it is rendered to the driver's SQL once and run with
``exec_driver_sql`` on an engine connection, so SQLAlchemy still does what matters on failure:
the driver's exception arrives as SQLAlchemy's (``IntegrityError``, ``OperationalError``, …, so
the usual handlers answer it), a disconnect invalidates the pool, and the connection goes back
to the pool out of autocommit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.sql import ClauseElement

# Keyed by the statement itself (kept alive here), not its id, so a key can never be reused.
_rendered: dict[tuple[ClauseElement, str], str] = {}


def driver_sql(engine: Engine, statement: ClauseElement) -> str:
    """``statement`` rendered for ``engine``'s driver (its parameter style), once per driver."""
    key = (statement, f"{engine.dialect.name}+{engine.dialect.driver}")
    text = _rendered.get(key)
    if text is None:
        text = _rendered[key] = str(statement.compile(dialect=engine.dialect))
    return text


def execute_autocommit(engine: Engine, statement: ClauseElement, params: Mapping[str, Any]) -> int:
    """Run ``statement`` as its own transaction; return the driver's row count.

    Values go to the driver as they are (no SQLAlchemy type processing), so they must already be
    what the driver takes: aware datetimes, UUIDs, lists for arrays. Build ``statement`` once
    and keep it.
    """
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        return conn.exec_driver_sql(driver_sql(engine, statement), params).rowcount
