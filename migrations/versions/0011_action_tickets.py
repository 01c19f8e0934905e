"""action tickets: an action's ticket in Jira, GitHub or Linear

Revision ID: 0011_action_tickets
Revises: 0010_cause_category
Create Date: 2026-12-04 07:11:52.203030
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import sqlmodel  # noqa: F401  (autogenerate emits sqlmodel types)


revision: str = '0011_action_tickets'
down_revision: Union[str, None] = '0010_cause_category'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    # One row per action with a ticket; its history is on the action's stream (ticket.* events).
    op.create_table('action_ticket',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('action_id', sa.Integer(), nullable=False),
    sa.Column('tracker', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('project', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('issue_type', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('marker', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
    sa.Column('url', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('external_id', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('state_name', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('title', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('assignee', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=True),
    sa.Column('due_on', sa.Date(), nullable=True),
    sa.Column('ticket_updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('divergence', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('requested_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('synced_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('create_started_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('disagree_since', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['action_id'], ['action_item.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('action_id'),
    sa.UniqueConstraint('tracker', 'key', name='uq_action_ticket_key')
    )
    with op.batch_alter_table('action_ticket', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_action_ticket_external_id'), ['external_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_action_ticket_synced_at'), ['synced_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('action_ticket', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_action_ticket_synced_at'))
        batch_op.drop_index(batch_op.f('ix_action_ticket_external_id'))

    op.drop_table('action_ticket')
