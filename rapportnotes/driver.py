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

from collections.abc import Mapping
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


def fetch_autocommit(engine: Engine, statement: ClauseElement, params: Mapping[str, Any]) -> list[Any]:
    """Run ``statement`` as its own transaction; return all of its rows as the driver gave them
    (no SQLAlchemy result processing).

    Values go to the driver as they are (no SQLAlchemy type processing), so they must already be
    what the driver takes: aware datetimes, UUIDs, lists for arrays. Build ``statement`` once
    and keep it.
    """
    text, fixed = driver_sql(engine, statement)
    if not fixed.keys().isdisjoint(params):
        raise ValueError(f"parameters {sorted(fixed.keys() & params.keys())} are fixed by the statement")
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        return conn.exec_driver_sql(text, {**fixed, **params}).all()
