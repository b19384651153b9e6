"""Migrations: one head; models and migrations never drift; down and up again; tenancy of the schema.

Each test runs on every backend of the session (SQLite always, PostgreSQL when
``TEST_DATABASE_URL`` is set) against a fresh database of its own.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask_migrate import downgrade, upgrade
from sqlalchemy import PrimaryKeyConstraint, UniqueConstraint, inspect, text

from rapportnotes import _migrations_dir
from rapportnotes.extensions import db
from tests.conftest import create_pg_database, drop_pg_database, make_app

TABLES = {"organisations", "users", "teams", "team_members", "behaviours", "contacts",
          "contact_behaviours", "audit_events", "revoked_tokens", "refresh_tokens", "idempotency_records"}


@pytest.fixture()
def fresh_app(backend: str, tmp_path) -> Iterator:
    if backend == "sqlite":
        url, drop = f"sqlite:///{tmp_path / 'migrations.db'}", None
    else:
        url = create_pg_database("rn_migrations")
        drop = url
    app = make_app(url)
    try:
        yield app
    finally:
        with app.app_context():
            db.engine.dispose()
        if drop:
            drop_pg_database(drop)


def test_there_is_a_single_head():
    config = Config()
    config.set_main_option("script_location", _migrations_dir())
    script = ScriptDirectory.from_config(config)
    assert len(script.get_heads()) == 1
    assert len(script.get_bases()) == 1


def _tables(app) -> set[str]:
    with app.app_context():
        return set(inspect(db.engine).get_table_names()) - {"alembic_version"}


def _has_audit_trigger(app) -> bool:
    with app.app_context(), db.engine.connect() as conn:
        return conn.scalar(text(
            "SELECT count(*) FROM pg_trigger WHERE tgname = 'audit_events_append_only'"
            " AND tgrelid = 'audit_events'::regclass")) == 1


def test_models_and_migrations_do_not_drift(fresh_app):
    with fresh_app.app_context():
        upgrade()
        # The comparison options env.py uses come from the Migrate extension (compare_type=True).
        opts = dict(fresh_app.extensions["migrate"].configure_args)
        assert opts.get("compare_type") is True
        with db.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts=opts)
            diffs = compare_metadata(context, db.metadata)
        assert diffs == []
        # And Alembic's own check, which runs migrations/env.py exactly as `flask db migrate` would.
        command.check(fresh_app.extensions["migrate"].migrate.get_config())
    assert _tables(fresh_app) == TABLES


def test_downgrade_to_base_and_upgrade_again(fresh_app, backend):
    with fresh_app.app_context():
        upgrade()
    assert _tables(fresh_app) == TABLES
    if backend == "postgresql":
        assert _has_audit_trigger(fresh_app)
    with fresh_app.app_context():
        downgrade(revision="base")
    assert _tables(fresh_app) == set()
    if backend == "postgresql":
        with fresh_app.app_context(), db.engine.connect() as conn:
            assert conn.scalar(text(
                "SELECT count(*) FROM pg_proc WHERE proname = 'audit_events_append_only'")) == 0
    with fresh_app.app_context():
        upgrade()
    assert _tables(fresh_app) == TABLES
    if backend == "postgresql":
        assert _has_audit_trigger(fresh_app)


# --- tenancy --------------------------------------------------------------------------------------

# The tenant root: its own id is the distribution key.
TENANT_ROOT = "organisations"
# Login finds a user by email alone, and the SPEC makes emails unique across the deployment.
GLOBAL_INDEXES = {("users", "uq_users_email")}
# Token tables are keyed by the token's jti, the only thing a request carries; they still hold
# organisation_id and every other index leads with it.
JTI_KEYED = {"revoked_tokens", "refresh_tokens"}


def _lead(columns) -> str:
    return next(iter(columns)).name


def test_every_tenant_table_and_index_leads_with_organisation_id():
    tables = {t.name: t for t in db.metadata.sorted_tables}
    assert set(tables) == TABLES
    for name, table in tables.items():
        if name == TENANT_ROOT:
            continue
        assert "organisation_id" in table.c and not table.c.organisation_id.nullable, name
        pk = table.primary_key
        if name in JTI_KEYED:
            assert [c.name for c in pk.columns] == ["jti"], name
        else:
            assert _lead(pk.columns) == "organisation_id", name
        for index in table.indexes:
            if (name, index.name) not in GLOBAL_INDEXES:
                assert _lead(index.columns) == "organisation_id", (name, index.name)
        for constraint in table.constraints:
            if isinstance(constraint, UniqueConstraint) and not isinstance(constraint, PrimaryKeyConstraint):
                assert _lead(constraint.columns) == "organisation_id", (name, constraint.name)
        for fk in table.foreign_key_constraints:
            # Every reference stays inside the organisation.
            assert "organisation_id" in [c.name for c in fk.columns], (name, fk.name)
    assert {(t, i.name) for t in tables for i in tables[t].indexes
            if _lead(i.columns) != "organisation_id"} == GLOBAL_INDEXES
