"""Test harness: every database test runs once per backend.

* SQLite always; PostgreSQL too when ``TEST_DATABASE_URL`` is set (CI sets it). Under
  ``CI=true`` a missing or unreachable PostgreSQL (or Redis) is an error, never a skip.
* The schema is built by running the Alembic migrations, once per backend per session, in a
  fresh database (PostgreSQL: a throw-away database created and dropped here).
* Each test starts from empty tables (truncation), with fresh rate-limit counters.
* Tests never hold an application context while making requests: helpers in ``World`` open
  their own, so the request under test never shares a session with the test.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.support.world import World

CI = os.environ.get("CI", "").lower() == "true"
PG_URL = os.environ.get("TEST_DATABASE_URL")
REDIS_URL = os.environ.get("TEST_REDIS_URL")
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])

TEST_SECRET = "test-secret-key-that-is-long-enough-0123456789abcdef"


def pytest_configure(config: pytest.Config) -> None:
    if CI and not PG_URL:
        raise pytest.UsageError("CI=true: TEST_DATABASE_URL must point at PostgreSQL.")
    if CI and not REDIS_URL:
        raise pytest.UsageError("CI=true: TEST_REDIS_URL must point at Redis.")


def base_config(database_url: str, **extra: Any) -> dict[str, Any]:
    """The configuration every test app starts from (tests override what they exercise)."""
    cfg = {
        "ENV": "testing",
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "JWT_SECRET_KEY": TEST_SECRET,
        "ARGON2_TIME_COST": 1,
        "ARGON2_MEMORY_COST": 1024,
        "RATELIMIT_STORAGE_URI": "memory://",
        "LOG_LEVEL": "WARNING",
        "SQLITE_SYNCHRONOUS": "NORMAL",  # no power cut here to survive; FULL syncs every commit
    }
    cfg.update(extra)
    return cfg


def make_app(database_url: str, **extra: Any) -> Flask:
    from rapportnotes import create_app

    return create_app(base_config(database_url, **extra))


def migrate_to_head(database_url: str) -> None:
    from flask_migrate import upgrade

    app = make_app(database_url)
    with app.app_context():
        upgrade()
        from rapportnotes.extensions import db

        db.engine.dispose()


def create_pg_database(prefix: str = "rn_test") -> str:
    """A fresh, empty PostgreSQL database; returns its URL. Fails loudly if PG is unreachable."""
    assert PG_URL, "TEST_DATABASE_URL is not set"
    base = make_url(PG_URL)
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    return base.set(database=name).render_as_string(hide_password=False)


def drop_pg_database(url: str) -> None:
    u = make_url(url)
    admin = create_engine(make_url(PG_URL), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{u.database}" WITH (FORCE)'))
    finally:
        admin.dispose()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Drop the combinations that do not exist, instead of skipping them: on SQLite, tests marked
    ``postgres`` and the one-statement report path (a PostgreSQL statement); on PostgreSQL, tests
    marked ``sqlite``."""
    keep, drop = [], []
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        pg_only = (item.get_closest_marker("postgres") is not None
                   or params.get("report_path") == "one-statement")
        sqlite_only = item.get_closest_marker("sqlite") is not None
        backend = params.get("backend")
        (drop if (pg_only and backend == "sqlite") or (sqlite_only and backend == "postgresql")
         else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="session")
def database_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
        migrate_to_head(url)
        yield url
    else:
        url = create_pg_database()
        try:
            migrate_to_head(url)
            yield url
        finally:
            drop_pg_database(url)


@pytest.fixture(scope="session")
def app(database_url: str) -> Iterator[Flask]:
    from tests.support.openapi_validation import ValidatingClient

    application = make_app(database_url)
    application.test_client_class = ValidatingClient  # every response is checked against openapi.yaml
    yield application
    with application.app_context():
        from rapportnotes.extensions import db

        db.engine.dispose()


def truncate_all(app: Flask) -> None:
    from rapportnotes.extensions import db, limiter

    with app.app_context():
        tables = [t.name for t in reversed(db.metadata.sorted_tables)]
        if db.engine.dialect.name == "postgresql":
            db.session.execute(text(f"TRUNCATE {', '.join(tables)} CASCADE"))
        else:
            # The audit table's append-only triggers refuse DELETE (TRUNCATE on PostgreSQL fires
            # no row trigger): set them aside for the clean-up, in the same transaction. pysqlite
            # opens one only at a write, and a DROP TRIGGER before it would commit on its own: a
            # clean-up failing midway then left the triggers gone for the rest of the session.
            db.session.execute(text("DELETE FROM organisations WHERE 0"))
            triggers = db.session.execute(text(
                "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit_events'"
            )).all()
            for name, _sql in triggers:
                db.session.execute(text(f'DROP TRIGGER "{name}"'))
            for name in tables:
                db.session.execute(text(f"DELETE FROM {name}"))
            for _name, sql in triggers:
                db.session.execute(text(sql))
        db.session.commit()
        db.session.remove()
        limiter.reset()


@pytest.fixture(autouse=True)
def _clean(app: Flask) -> Iterator[None]:
    yield
    truncate_all(app)


@pytest.fixture()
def client(app: Flask):
    return app.test_client()


@pytest.fixture()
def runner(app: Flask):
    return app.test_cli_runner()


@pytest.fixture()
def world(app: Flask) -> World:
    return World(app)


@pytest.fixture()
def cast(world: World):
    """Two organisations with every role (see ``tests.support.world.Cast``)."""
    from tests.support.world import build_cast

    return build_cast(world)
