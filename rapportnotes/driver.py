"""One prebuilt statement as driver SQL, in autocommit, on a pooled driver connection.

For the hottest requests only (on PostgreSQL, a contact create and a coach report, each one
self-checking statement): the ORM session's bookkeeping, SQLAlchemy's compiled-statement path
(cache lookup, bind processing, result set-up) and even its ``Connection`` (execution options,
isolation level set and reset, ``Row`` objects) cost more there than the driver's own work. The
statement is still built with SQLAlchemy Core from the models; it is rendered to the driver's
SQL once and run on a connection checked out of the engine's pool (so the pool's liveness checks
apply, ``rapportnotes.pool``). What SQLAlchemy's ``Connection`` would do on failure is done here:
the driver's exception arrives as SQLAlchemy's (``IntegrityError``, ``OperationalError``, …, so
the usual handlers answer it), never with its bound parameters in the message (though
PostgreSQL's own DETAIL line may quote a row, as on every path); a disconnect discards
that connection and has the pool ping every other before handing it out; the connection goes
back to the pool out of autocommit. What does not happen: SQLAlchemy's ``Connection`` events
(``before_cursor_execute`` and the like) do not fire for these two statements, so tracing that
hooks them sees the pool's checkout and checkin but not the statement.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import exc
from sqlalchemy.engine import Engine
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.sql import ClauseElement

from rapportnotes.pool import distrust_pooled

# Keyed by the statement itself (kept alive here), not its id, so a key can never be reused.
_rendered: dict[tuple[ClauseElement, str], tuple[str, dict[str, Any]]] = {}


def driver_sql(engine: Engine, statement: ClauseElement) -> tuple[str, dict[str, Any]]:
    """``statement`` rendered for ``engine``'s driver (its parameter style), once per driver,
    with the values of the parameters the statement itself fixes (``role != 'admin'`` and the
    like), which go to the driver with the caller's. Only plain constants qualify: a fixed
    parameter that SQLAlchemy would have to process, expand or compute is refused here."""
    key = (statement, f"{engine.dialect.name}+{engine.dialect.driver}")
    rendered = _rendered.get(key)
    if rendered is None:
        compiled = statement.compile(dialect=engine.dialect)
        fixed = {}
        for bind, name in compiled.bind_names.items():
            if bind.required:
                continue
            if (bind.expanding or bind.literal_execute or bind.callable is not None
                    or bind.type.dialect_impl(engine.dialect).bind_processor(engine.dialect) is not None):
                raise ValueError(f"parameter {name!r} needs SQLAlchemy's processing; bind it per call")
            fixed[name] = bind.value
        rendered = _rendered[key] = (str(compiled), fixed)
    return rendered


def fetch_autocommit(engine: Engine, statement: ClauseElement, params: Mapping[str, Any]) -> list[Any]:
    """Run ``statement`` as its own transaction; return all of its rows as the driver gave them
    (tuples, no SQLAlchemy result processing).

    Values go to the driver as they are (no SQLAlchemy type processing), so they must already be
    what the driver takes: aware datetimes, UUIDs, lists for arrays. Build ``statement`` once
    and keep it.
    """
    text, fixed = driver_sql(engine, statement)
    if not fixed.keys().isdisjoint(params):
        raise ValueError(f"parameters {sorted(fixed.keys() & params.keys())} are fixed by the statement")
    values = {**fixed, **params}
    dbapi_error = engine.dialect.loaded_dbapi.Error
    try:
        pooled = engine.raw_connection()
    except dbapi_error as err:  # no connection to be had (the server down): as ``Engine.connect``
        raise exc.DBAPIError.instance(None, None, err, dbapi_error, hide_parameters=True,
                                      connection_invalidated=engine.dialect.is_disconnect(err, None, None),
                                      dialect=engine.dialect) from err
    try:
        conn = pooled.driver_connection
        cursor = None
        try:
            conn.autocommit = True
            cursor = conn.cursor()
            cursor.execute(text, values)
            return cursor.fetchall()
        except dbapi_error as err:
            raise _translated(engine, pooled, cursor, text, err) from err
        finally:
            if pooled.is_valid:
                _leave_autocommit(pooled)
    finally:
        pooled.close()


def _translated(engine: Engine, pooled: PoolProxiedConnection, cursor: Any, text: str,
                err: Exception) -> exc.DBAPIError:
    """``err`` as SQLAlchemy's ``Connection`` would raise it; on a disconnect, ``pooled`` is
    discarded and its siblings distrusted (``pool.distrust_pooled``)."""
    gone = engine.dialect.is_disconnect(err, pooled.driver_connection, cursor)
    if gone:
        pooled.invalidate(err)
        distrust_pooled(engine)
    return exc.DBAPIError.instance(text, None, err, engine.dialect.loaded_dbapi.Error, hide_parameters=True,
                                   connection_invalidated=gone, dialect=engine.dialect)


def _leave_autocommit(pooled: PoolProxiedConnection) -> None:
    """Back out of autocommit before the pool takes the connection back; a connection that cannot
    (it broke meanwhile) is discarded instead of returned in a state the next user does not
    expect."""
    try:
        pooled.driver_connection.autocommit = False
    except Exception as err:  # the connection is unusable: never hand it out again
        pooled.invalidate(err)
