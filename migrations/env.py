"""Alembic environment, run by Flask-Migrate inside the application (``rapportnotes db ...``).

The database URL and the metadata come from the app. Comparison options come from the Migrate
extension (``compare_type=True`` in ``create_app``); this file adds how to render and apply them:
project column types render as portable SQLAlchemy types, and operations run in batch mode so
the same migration also alters SQLite tables. tests/test_migrations.py checks that autogenerate
with these options finds no difference between the models and the migrations.
"""

import logging
from logging.config import fileConfig

from alembic import context
from flask import current_app
from sqlalchemy import event

config = context.config
if config.config_file_name is not None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)
logger = logging.getLogger("alembic.env")


def get_engine():
    return current_app.extensions["migrate"].db.engine


def get_engine_url():
    return get_engine().url.render_as_string(hide_password=False).replace("%", "%%")


config.set_main_option("sqlalchemy.url", get_engine_url())
target_db = current_app.extensions["migrate"].db


def render_item(type_, obj, autogen_context):
    """Render project column types as their portable SQLAlchemy base types."""
    from rapportnotes.models.types import UTCDateTime

    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def get_metadata():
    if hasattr(target_db, "metadatas"):
        return target_db.metadatas[None]
    return target_db.metadata


def run_migrations_offline():
    """Emit SQL for the configured URL without connecting (``--sql``)."""
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=get_metadata(),
        literal_binds=True,
        render_item=render_item,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online():
    def process_revision_directives(context, revision, directives):
        """``flask db migrate`` with no schema change writes no empty revision."""
        if getattr(config.cmd_opts, "autogenerate", False):
            script = directives[0]
            if script.upgrade_ops.is_empty():
                directives[:] = []
                logger.info("No changes in schema detected.")

    conf_args = dict(current_app.extensions["migrate"].configure_args)
    conf_args.setdefault("render_item", render_item)
    conf_args.setdefault("render_as_batch", True)
    conf_args.setdefault("process_revision_directives", process_revision_directives)

    with get_engine().connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # The app turns foreign keys on for every SQLite connection. A batch operation that
            # SQLite can only make by rebuilding the table drops the old table, and with foreign
            # keys on that DROP deletes the rows referring to it (ON DELETE CASCADE: every tag of
            # every contact) or fails. Off while migrating (a no-op inside a transaction, so set
            # first), and on again before the connection goes back to the pool.
            #
            # pysqlite opens a transaction only before INSERT/UPDATE/DELETE, so DDL would commit
            # as it runs (a failed rebuild leaves ``_alembic_tmp_*`` behind). With its implicit
            # transactions off and an explicit BEGIN, the whole upgrade, and the foreign-key check
            # at its end, is one transaction: a failure anywhere rolls all of it back.
            dbapi = connection.connection.driver_connection
            connection.rollback()
            dbapi.isolation_level = None
            dbapi.execute("PRAGMA foreign_keys=OFF")
            event.listen(connection, "begin", _sqlite_begin)
            conf_args["transactional_ddl"] = True
        try:
            context.configure(connection=connection, target_metadata=get_metadata(), **conf_args)
            with context.begin_transaction():
                if connection.dialect.name == "postgresql":
                    # Not the requests' statement_timeout (5 s): building an index on a large
                    # table takes longer, and a cancelled migration rolls back to run again.
                    connection.exec_driver_sql("SET LOCAL statement_timeout = 0")
                context.run_migrations()
                if sqlite:
                    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if broken:
                        raise RuntimeError(f"migration left rows with dangling foreign keys: {broken[:5]}")
        finally:
            if sqlite:
                connection.rollback()
                event.remove(connection, "begin", _sqlite_begin)
                dbapi.execute("PRAGMA foreign_keys=ON")
                dbapi.isolation_level = ""


def _sqlite_begin(connection):
    connection.exec_driver_sql("BEGIN")


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
