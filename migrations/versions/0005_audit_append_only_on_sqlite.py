"""The audit trail is append-only on SQLite too (SPEC §4), as the PostgreSQL trigger of 0001 makes it.

SQLite drops a table's triggers with the table: a later migration that rebuilds ``audit_events``
in batch mode must create these again.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 04:00:00

"""
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

_STATEMENTS = ('UPDATE', 'DELETE')


def upgrade():
    if op.get_bind().dialect.name != 'sqlite':
        return
    for statement in _STATEMENTS:
        op.execute(f"""
            CREATE TRIGGER audit_events_append_only_{statement.lower()}
            BEFORE {statement} ON audit_events
            BEGIN
                SELECT RAISE(ABORT, 'audit_events is append-only ({statement} refused)');
            END
        """)


def downgrade():
    if op.get_bind().dialect.name != 'sqlite':
        return
    for statement in _STATEMENTS:
        op.execute(f'DROP TRIGGER IF EXISTS audit_events_append_only_{statement.lower()}')
