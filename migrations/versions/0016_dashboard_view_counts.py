"""dashboard view counts: the access log's per-viewer counts of the current window, in the database

Revision ID: 0016_dashboard_view_counts
Revises: 0015_review_reminder_index
Create Date: 2026-12-04 10:20:00.000000
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import sqlmodel  # noqa: F401  (autogenerate emits sqlmodel types)


revision: str = '0016_dashboard_view_counts'
down_revision: Union[str, None] = '0015_review_reminder_index'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('dashboard_view_count',
    sa.Column('actor', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
    sa.Column('window_start', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('recorded', sa.Integer(), nullable=False),
    sa.Column('further', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('actor')
    )
    with op.batch_alter_table('dashboard_view_count', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dashboard_view_count_window_start'), ['window_start'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('dashboard_view_count', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dashboard_view_count_window_start'))
    op.drop_table('dashboard_view_count')
