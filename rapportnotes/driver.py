"""One prebuilt statement as driver SQL, in autocommit, on a plain engine connection.

For the hottest requests only (on PostgreSQL, a contact create and a coach report, each one
self-checking statement): the ORM session's bookkeeping and SQLAlchemy's compiled-statement
path (cache lookup, bind processing, result set-up) cost more there than the driver's own work.
The statement is still built with SQLAlchemy Core from the models; it is rendered to the
driver's SQL once and run with ``exec_driver_sql`` on an engine connection, so SQLAlchemy still
does what matters on failure: the driver's exception arrives as SQLAlchemy's
(``IntegrityError``, ``OperationalError``, …, so the usual handlers answer it), a disconnect
invalidates the pool, and the connection goes back to the pool out of autocommit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.sql import ClauseElement

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


Params = Mapping[str, Any] | Callable[[], Mapping[str, Any]]


def _run(engine: Engine, statement: ClauseElement, params: Params, rows: bool) -> Any:
    text, fixed = driver_sql(engine, statement)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        # A callable is asked for the values only now that the connection is ours, so anything
        # it stamps (``updated_at``) is not older than the statement's transaction.
        values = params() if callable(params) else params
        if not fixed.keys().isdisjoint(values):
            raise ValueError(f"parameters {sorted(fixed.keys() & values.keys())} are fixed by the statement")
        result = conn.exec_driver_sql(text, {**fixed, **values})
        return result.all() if rows else result.rowcount


def execute_autocommit(engine: Engine, statement: ClauseElement, params: Params) -> int:
    """Run ``statement`` as its own transaction; return the driver's row count. ``params`` may
    be a callable returning them: it is called once a connection has been checked out.

    Values go to the driver as they are (no SQLAlchemy type processing), so they must already be
    what the driver takes: aware datetimes, UUIDs, lists for arrays. Build ``statement`` once
    and keep it.
    """
    return _run(engine, statement, params, rows=False)


def fetch_autocommit(engine: Engine, statement: ClauseElement, params: Params) -> list[Any]:
    """As ``execute_autocommit``, for a statement that returns rows: all of them, as the driver
    gave them (no SQLAlchemy result processing either)."""
    return _run(engine, statement, params, rows=True)
