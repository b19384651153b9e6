"""The driver path's rendering rules: constants the statement fixes travel with it, anything
that would need SQLAlchemy's processing is refused, and a caller can never override one."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import bindparam, column, create_engine, literal, select, table

from rapportnotes import driver
from rapportnotes.models.types import UTCDateTime

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
