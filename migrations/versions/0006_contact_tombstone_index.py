"""An index of each organisation's tombstones by age, for ``purge``.

``purge`` looked its tombstones up by scanning every contact, and held all their ids in memory.
Partial: only soft-deleted rows have an entry, so logging a contact does not pay for it.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 04:20:00

"""
import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('contacts', schema=None) as batch_op:
        batch_op.create_index('ix_contacts_org_tombstones', ['organisation_id', 'deleted_at'], unique=False,
                              postgresql_where=sa.text('deleted'), sqlite_where=sa.text('deleted = 1'))


def downgrade():
    with op.batch_alter_table('contacts', schema=None) as batch_op:
        batch_op.drop_index('ix_contacts_org_tombstones', postgresql_where=sa.text('deleted'),
                            sqlite_where=sa.text('deleted = 1'))
