"""private incidents: the incident's private flag and the access grants of private incidents

Revision ID: 0008_private_incidents
Revises: 0007_deadline_decisions
Create Date: 2026-12-04 04:20:00.000000
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import sqlmodel  # noqa: F401  (autogenerate emits sqlmodel types)


revision: str = '0008_private_incidents'
down_revision: Union[str, None] = '0007_deadline_decisions'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    # Incidents declared before this change were all public.
    with op.batch_alter_table('incident', schema=None) as batch_op:
        batch_op.add_column(sa.Column('private', sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_table(
        'incident_access',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('incident_id', sa.Integer(), nullable=False),
        sa.Column('user_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('granted_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('granted_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column('via', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.ForeignKeyConstraint(['incident_id'], ['incident.id'], ),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('incident_id', 'user_id'),
    )
    with op.batch_alter_table('incident_access', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_incident_access_incident_id'), ['incident_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_incident_access_user_id'), ['user_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('incident_access', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_incident_access_user_id'))
        batch_op.drop_index(batch_op.f('ix_incident_access_incident_id'))
    op.drop_table('incident_access')
    with op.batch_alter_table('incident', schema=None) as batch_op:
        batch_op.drop_column('private')
