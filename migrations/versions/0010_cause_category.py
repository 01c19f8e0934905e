"""cause category: the root-cause category chosen when an incident is closed (recurring causes)

Revision ID: 0010_cause_category
Revises: 0009_dashboard_sessions
Create Date: 2026-12-04 05:20:00.000000
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import sqlmodel  # noqa: F401  (autogenerate emits sqlmodel types)


revision: str = '0010_cause_category'
down_revision: Union[str, None] = '0009_dashboard_sessions'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    # Incidents closed before this change have no category (shown as "not recorded").
    with op.batch_alter_table('incident', schema=None) as batch_op:
        batch_op.add_column(sa.Column('cause_category', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('incident', schema=None) as batch_op:
        batch_op.drop_column('cause_category')
