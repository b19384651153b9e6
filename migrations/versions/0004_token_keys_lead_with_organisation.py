"""Token tables: the primary key leads with organisation_id, like every other tenant table (SPEC §1).

Every token carries its organisation (the ``org`` claim), so lookups by ``(organisation_id, jti)``
need nothing a request does not already have.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 03:00:00

"""
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def _rekey(columns):
    for table in ('refresh_tokens', 'revoked_tokens'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(f'pk_{table}', type_='primary')
            batch_op.create_primary_key(f'pk_{table}', columns)


def upgrade():
    _rekey(['organisation_id', 'jti'])


def downgrade():
    _rekey(['jti'])
