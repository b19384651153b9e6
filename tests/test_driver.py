"""The driver path's rendering rules: constants the statement fixes travel with it, anything
that would need SQLAlchemy's processing is refused, and a caller can never override one."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import bindparam, column, create_engine, literal, select, table, text
from sqlalchemy.exc import IntegrityError

from rapportnotes import driver
from rapportnotes.models.types import UTCDateTime
from tests.conftest import PG_URL, create_pg_database, drop_pg_database

_T = table("t", column("a"), column("b"))


@pytest.fixture()
def engine():
    engine = create_engine("sqlite://")
    yield engine
    engine.dispose()


def test_constants_fixed_by_the_statement_travel_with_it(engine):
    stmt = select(_T.c.a).where(_T.c.b != "admin", _T.c.a == bindparam("a"))
    text, fixed = driver.driver_sql(engine, stmt)
    assert list(fixed.values()) == ["admin"] and "a" not in fixed
    assert driver.driver_sql(engine, stmt)[0] is text  # rendered once


@pytest.mark.parametrize("constant", [
    bindparam("when", value=datetime(2025, 1, 1, tzinfo=UTC), type_=UTCDateTime()),
    bindparam("many", value=[1, 2], expanding=True),
    bindparam("later", callable_=lambda: 1),
], ids=["needs-processing", "expanding", "computed"])
def test_constants_that_need_sqlalchemy_are_refused(engine, constant):
    with pytest.raises(ValueError, match="bind it per call"):
        driver.driver_sql(engine, select(literal(1)).where(_T.c.a == constant))


def test_a_caller_cannot_override_a_fixed_constant(engine):
    stmt = select(_T.c.a).where(_T.c.b != "admin")
    (name,) = driver.driver_sql(engine, stmt)[1]
    with pytest.raises(ValueError, match="fixed by the statement"):
        driver.fetch_autocommit(engine, stmt, {name: "coach"})


@pytest.fixture()
def pg_engine():
    """An engine on a scratch PostgreSQL database holding one table with a unique key."""
    if not PG_URL:
        pytest.skip("needs PostgreSQL (TEST_DATABASE_URL)")
    url = create_pg_database("rn_driver")
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE t (a integer PRIMARY KEY, b text)"))
        yield engine
    finally:
        engine.dispose()
        drop_pg_database(url)


_INSERT = table("t", column("a"), column("b")).insert().values(a=bindparam("a"), b=bindparam("b"))


def _rows(engine) -> list:
    with engine.connect() as conn:
        return conn.execute(text("SELECT a, b FROM t ORDER BY a")).all()


@pytest.mark.postgres
def test_a_driver_error_arrives_as_sqlalchemys_and_never_names_the_values(pg_engine):
    driver.fetch_autocommit(pg_engine, _INSERT.returning(column("a")), {"a": 1, "b": "first"})
    with pytest.raises(IntegrityError) as caught:
        driver.fetch_autocommit(pg_engine, _INSERT.returning(column("a")), {"a": 1, "b": "private note"})
    assert "private note" not in str(caught.value)
    assert not caught.value.connection_invalidated
    assert [tuple(r) for r in _rows(pg_engine)] == [(1, "first")]


@pytest.mark.postgres
def test_the_connection_goes_back_to_the_pool_out_of_autocommit(pg_engine):
    """After a success and after a failure: the next user's transaction must roll back whole."""
    stmt = _INSERT.returning(column("a"))
    assert driver.fetch_autocommit(pg_engine, stmt, {"a": 1, "b": "x"}) == [(1,)]
    with pytest.raises(IntegrityError):
        driver.fetch_autocommit(pg_engine, stmt, {"a": 1, "b": "x"})
    for _ in range(2):  # the pool holds one connection here: both uses above were on it
        with pg_engine.connect() as conn:
            assert conn.connection.driver_connection.autocommit is False
            conn.execute(text("INSERT INTO t VALUES (2, 'rolled back')"))
            conn.rollback()
    assert [r.a for r in _rows(pg_engine)] == [1]


def test_a_connection_that_cannot_be_opened_arrives_as_sqlalchemys_error():
    """The pool's own connect (a server down or refusing) is a driver error too: it must arrive
    as SQLAlchemy's ``OperationalError`` (the 503 handler's), as ``Engine.connect`` raises it,
    not as the driver's own exception (a 500)."""
    from sqlalchemy.exc import OperationalError

    engine = create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none",
                           connect_args={"connect_timeout": 1})
    try:
        with pytest.raises(OperationalError) as caught:
            driver.fetch_autocommit(engine, select(bindparam("x")), {"x": 1})
        assert isinstance(caught.value.orig, engine.dialect.loaded_dbapi.Error)
    finally:
        engine.dispose()
