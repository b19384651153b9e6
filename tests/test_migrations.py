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
        if conn.dialect.name == "sqlite":  # one for UPDATE, one for DELETE (0005)
            return conn.scalar(text(
                "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit_events'"
                " AND name LIKE 'audit_events_append_only_%'")) == 2
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
    assert _has_audit_trigger(fresh_app)
    with fresh_app.app_context():
        downgrade(revision="0004")
    assert _tables(fresh_app) == TABLES
    if backend == "sqlite":
        assert not _has_audit_trigger(fresh_app)
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
    assert _has_audit_trigger(fresh_app)


# --- tenancy --------------------------------------------------------------------------------------

# The tenant root: its own id is the distribution key.
TENANT_ROOT = "organisations"
# Login finds a user by email alone, and the SPEC makes emails unique across the deployment.
GLOBAL_INDEXES = {("users", "uq_users_email")}


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


def test_token_tables_are_keyed_by_organisation_in_the_database(fresh_app):
    """SPEC §1: a tenant table's indexes lead with organisation_id, the token tables' keys too."""
    with fresh_app.app_context():
        upgrade(directory=_migrations_dir())
        insp = inspect(db.engine)
        for table in ("refresh_tokens", "revoked_tokens"):
            assert insp.get_pk_constraint(table)["constrained_columns"] == ["organisation_id", "jti"]


# --- a table rebuild keeps the rows that refer to the table -------------------------------------

_REBUILD = '''"""Widen contacts.setting: a change SQLite makes only by rebuilding the table."""
import sqlalchemy as sa
from alembic import op

revision = "9999"
down_revision = {head!r}
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("contacts") as batch_op:
        batch_op.alter_column("setting", existing_type=sa.String(64), type_=sa.String(80))


def downgrade():
    with op.batch_alter_table("contacts") as batch_op:
        batch_op.alter_column("setting", existing_type=sa.String(80), type_=sa.String(64))
'''


def test_a_table_rebuilding_migration_keeps_the_rows_that_refer_to_it(fresh_app, backend, tmp_path):
    """SQLite alters most things by copying the table and dropping the old one; with foreign keys
    on, that DROP cascades to the rows referring to it (every tag of every contact)."""
    import shutil
    import uuid as uuid_
    from datetime import UTC, datetime

    from rapportnotes.models import Contact, ContactBehaviour
    from rapportnotes.services.organisations import create_organisation, create_user

    directory = tmp_path / "migrations"
    shutil.copytree(_migrations_dir(), directory)
    config = Config()
    config.set_main_option("script_location", str(directory))
    head = ScriptDirectory.from_config(config).get_current_head()
    (directory / "versions" / "9999_rebuild_contacts.py").write_text(_REBUILD.format(head=head))
    now = datetime.now(UTC)
    with fresh_app.app_context():
        upgrade()
        org = create_organisation(db.session, "Rebuild")
        coach = create_user(db.session, org.id, email="rebuild@example.org", display_name="Coach",
                            role="coach", password="correct-horse-battery-staple")
        db.session.flush()
        for _ in range(3):
            cid = uuid_.uuid4()
            db.session.execute(Contact.__table__.insert().values(
                organisation_id=org.id, id=cid, coach_id=coach.id, peer_ref="p1", occurred_at=now,
                local_date=now.date(), duration_minutes=30, modality="phone", created_at=now,
                updated_at=now, version=1, deleted=False))
            db.session.execute(ContactBehaviour.__table__.insert().values(
                organisation_id=org.id, contact_id=cid, code="empathy"))
        db.session.commit()
        upgrade(directory=str(directory))
        db.session.remove()
        with db.engine.connect() as conn:
            assert conn.scalar(text("SELECT version_num FROM alembic_version")) == "9999"
            assert conn.scalar(text("SELECT count(*) FROM contacts")) == 3
            assert conn.scalar(text("SELECT count(*) FROM contact_behaviours")) == 3
            if backend == "sqlite":  # and the pooled connection enforces foreign keys again
                assert conn.scalar(text("PRAGMA foreign_keys")) == 1


# --- the migrated schema is the models' schema, clause for clause ---------------------------------

def _schema(engine) -> dict:
    """Everything the database reports about each table, in a comparable form. Autogenerate
    (above) does not compare server defaults, CHECK constraints or partial-index predicates."""
    insp = inspect(engine)

    def norm(value) -> str | None:
        return None if value is None else " ".join(str(value).split())

    out = {}
    for table in sorted(set(insp.get_table_names()) - {"alembic_version"}):
        out[table] = {
            "columns": [(c["name"], str(c["type"]), c["nullable"], norm(c.get("default")))
                        for c in insp.get_columns(table)],
            "pk": insp.get_pk_constraint(table)["constrained_columns"],
            "fks": sorted((fk["name"], tuple(fk["constrained_columns"]), fk["referred_table"],
                           tuple(fk["referred_columns"]), tuple(sorted(fk.get("options", {}).items())))
                          for fk in insp.get_foreign_keys(table)),
            "indexes": sorted((ix["name"], tuple(ix["column_names"]), bool(ix["unique"]),
                               tuple(sorted((k, norm(v)) for k, v in ix.get("dialect_options", {}).items()
                                            if k.endswith("_where"))))
                              for ix in insp.get_indexes(table)),
            "uniques": sorted((u["name"], tuple(u["column_names"]))
                              for u in insp.get_unique_constraints(table)),
            "checks": sorted((c["name"], norm(c["sqltext"])) for c in insp.get_check_constraints(table)),
        }
    return out


def test_the_migrated_schema_is_the_one_the_models_create(fresh_app, backend, tmp_path):
    if backend == "sqlite":
        url, drop = f"sqlite:///{tmp_path / 'models.db'}", None
    else:
        url = drop = create_pg_database("rn_models")
    models_app = make_app(url)
    try:
        with fresh_app.app_context():
            upgrade()
            migrated = _schema(db.engine)
        with models_app.app_context():
            db.create_all()
            created = _schema(db.engine)
            db.engine.dispose()
    finally:
        if drop:
            drop_pg_database(drop)
    assert set(migrated) == TABLES
    assert migrated == created


# --- on SQLite a failed upgrade leaves nothing behind --------------------------------------------

_FAILING = '''import sqlalchemy as sa
from alembic import op

revision = "9999"
down_revision = {head!r}
branch_labels = None
depends_on = None


def upgrade():
{body}


def downgrade():
    pass
'''
_ORPHAN = '''    op.execute("INSERT INTO contact_behaviours (organisation_id, contact_id, code) VALUES "
               "('00000000000000000000000000000001', '00000000000000000000000000000002', 'x')")'''
_REBUILD_THEN_FAIL = '''    with op.batch_alter_table("contacts") as batch_op:
        batch_op.alter_column("setting", existing_type=sa.String(64), type_=sa.String(80))
    raise RuntimeError("a later step failed")'''


@pytest.mark.sqlite
@pytest.mark.parametrize("body", [_ORPHAN, _REBUILD_THEN_FAIL], ids=["dangling-key", "failed-rebuild"])
def test_a_failed_sqlite_upgrade_is_rolled_back(fresh_app, tmp_path, body):
    import shutil

    directory = tmp_path / "migrations"
    shutil.copytree(_migrations_dir(), directory)
    config = Config()
    config.set_main_option("script_location", str(directory))
    head = ScriptDirectory.from_config(config).get_current_head()
    (directory / "versions" / "9999_fails.py").write_text(_FAILING.format(head=head, body=body))
    with fresh_app.app_context():
        upgrade()
        with pytest.raises(SystemExit):  # Flask-Migrate reports the error and exits 1
            upgrade(directory=str(directory))
        db.session.remove()
        with db.engine.connect() as conn:
            assert conn.scalar(text("SELECT version_num FROM alembic_version")) == head
            assert conn.scalar(text("SELECT count(*) FROM contact_behaviours")) == 0
            leftovers = "SELECT count(*) FROM sqlite_master WHERE name LIKE '_alembic_tmp%'"
            assert conn.scalar(text(leftovers)) == 0
            assert conn.scalar(text("PRAGMA foreign_keys")) == 1


def test_0004_keeps_token_rows_through_upgrade_and_downgrade(fresh_app):
    import uuid as _uuid
    from datetime import UTC, datetime, timedelta

    now = datetime.now(UTC)
    org = _uuid.uuid4()
    refresh = [{"jti": f"r{i}", "organisation_id": org, "user_id": _uuid.uuid4(), "family_id": "f",
                "issued_at": now, "expires_at": now + timedelta(hours=1), "used_at": None,
                "revoked": False, "access_jti": f"a{i}", "access_expires_at": now} for i in range(3)]
    revoked = [{"jti": f"a{i}", "organisation_id": org, "user_id": _uuid.uuid4(),
                "expires_at": now, "revoked_at": now} for i in range(2)]

    def counts():
        with db.engine.connect() as conn:
            return (conn.scalar(text("SELECT count(*) FROM refresh_tokens")),
                    conn.scalar(text("SELECT count(*) FROM revoked_tokens")))

    def pks():
        insp = inspect(db.engine)
        return [insp.get_pk_constraint(t) for t in ("refresh_tokens", "revoked_tokens")]

    def indexes():
        insp = inspect(db.engine)
        return sorted(i["name"] for t in ("refresh_tokens", "revoked_tokens") for i in insp.get_indexes(t))

    with fresh_app.app_context():
        upgrade(directory=_migrations_dir(), revision="0003")
        ix = indexes()
        from rapportnotes.models import RefreshToken, RevokedToken
        rt, vt = RefreshToken.__table__, RevokedToken.__table__
        with db.engine.begin() as conn:
            conn.execute(rt.insert(), refresh)
            conn.execute(vt.insert(), revoked)
        upgrade(directory=_migrations_dir())
        assert counts() == (3, 2)
        assert [p["constrained_columns"] for p in pks()] == [["organisation_id", "jti"]] * 2
        assert [p["name"] for p in pks()] == ["pk_refresh_tokens", "pk_revoked_tokens"]
        assert indexes() == ix
        downgrade(directory=_migrations_dir(), revision="0003")
        assert counts() == (3, 2)
        assert [p["constrained_columns"] for p in pks()] == [["jti"]] * 2
        assert [p["name"] for p in pks()] == ["pk_refresh_tokens", "pk_revoked_tokens"]
        assert indexes() == ix
        upgrade(directory=_migrations_dir())
        assert counts() == (3, 2)
        assert [p["constrained_columns"] for p in pks()] == [["organisation_id", "jti"]] * 2
        opts = dict(fresh_app.extensions["migrate"].configure_args)
        with db.engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn, opts=opts), db.metadata) == []
