"""Indexes for two contact listings that scanned the organisation's whole history.

A coach's sync (``updated_since`` with the coach's own contacts) walked the organisation's change
index filtering by coach; a ``peer_ref`` filter read the whole table.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 02:00:00

"""
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('contacts', schema=None) as batch_op:
        batch_op.create_index('ix_contacts_org_coach_updated', ['organisation_id', 'coach_id', 'updated_at', 'id'],
                              unique=False)
        batch_op.create_index('ix_contacts_org_peer', ['organisation_id', 'peer_ref', 'occurred_at', 'id'],
                              unique=False)


def downgrade():
    with op.batch_alter_table('contacts', schema=None) as batch_op:
        batch_op.drop_index('ix_contacts_org_peer')
        batch_op.drop_index('ix_contacts_org_coach_updated')
