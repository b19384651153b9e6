"""Refresh tokens remember the access token issued with them.

When a refresh token is reused its whole family is revoked; knowing each member's access token
lets that revocation end the family's access tokens too, not only its refresh tokens.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 23:30:00

"""
import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('refresh_tokens', schema=None) as batch_op:
        batch_op.add_column(sa.Column('access_jti', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('access_expires_at', sa.DateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table('refresh_tokens', schema=None) as batch_op:
        batch_op.drop_column('access_expires_at')
        batch_op.drop_column('access_jti')
