"""One prebuilt statement, straight on a pooled driver connection, in autocommit.

For the hottest request only (a contact create on PostgreSQL, one self-checking statement):
SQLAlchemy's ORM session and its execution context (compiled-cache lookup, parameter
processing, result set-up, connection and transaction bookkeeping) cost about a quarter of the
request's CPU there, more than the driver's own work. The statement is still built with
SQLAlchemy Core from the models, compiled once per dialect; the connection still comes from the
engine's pool (so the idle ping of ``rapportnotes.pool`` applies) and goes back to it. What
SQLAlchemy would otherwise do on failure is done here: the driver's exception is raised as
SQLAlchemy's (``IntegrityError``, ``OperationalError``, …, so the usual handlers answer it),
and a connection found dead is discarded with the pool's idle ones instead of returned to it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import exc
from sqlalchemy.engine import Engine
from sqlalchemy.sql import ClauseElement

_compiled: dict[tuple[int, str], str] = {}


def sql_text(engine: Engine, statement: ClauseElement) -> str:
    """``statement`` rendered for ``engine``'s driver (named parameters), once per dialect."""
    key = (id(statement), engine.dialect.name)
    text = _compiled.get(key)
    if text is None:
        text = _compiled[key] = str(statement.compile(dialect=engine.dialect))
    return text


def execute_autocommit(engine: Engine, statement: ClauseElement, params: Mapping[str, Any]) -> int:
    """Run ``statement`` as its own transaction; return the driver's row count.

    Values go to the driver as they are (no SQLAlchemy type processing), so they must already be
    what the driver takes: aware datetimes, UUIDs, lists for arrays. ``statement`` must be built
    once and kept (the rendered text is cached by its identity).
    """
    text = sql_text(engine, statement)
    dbapi = engine.dialect.loaded_dbapi
    fairy = engine.raw_connection()
    raw = fairy.driver_connection
    dead = False
    try:
        raw.autocommit = True
        with raw.cursor() as cur:
            cur.execute(text, params)
            return cur.rowcount
    except dbapi.Error as err:
        dead = engine.dialect.is_disconnect(err, raw, None)
        raise exc.DBAPIError.instance(text, None, err, dbapi.Error, hide_parameters=True,
                                      connection_invalidated=dead, dialect=engine.dialect) from err
    finally:
        # Never hand the pool a connection still in autocommit: the next request would lose
        # its transaction without noticing.
        if not dead:
            try:
                raw.autocommit = False
            except dbapi.Error:
                dead = True
        if dead:
            fairy.invalidate()
        fairy.close()
        if dead:  # as SQLAlchemy does on a disconnect: the others are likely dead too (a restart)
            engine.pool.dispose()
