"""job output format

Revision ID: 0003
Revises: 0002
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Jobs stored before formats existed are WAV.
    with op.batch_alter_table('jobs') as batch_op:
        batch_op.add_column(sa.Column('format', sa.String(length=8), server_default='wav', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('jobs') as batch_op:
        batch_op.drop_column('format')
