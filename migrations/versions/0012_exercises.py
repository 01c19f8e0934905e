"""exercises: an incident row may be an exercise (tabletop or game day), numbered EX-<n> apart from INC-<n>

Revision ID: 0012_exercises
Revises: 0011_action_tickets
Create Date: 2026-12-04 07:30:00.000000
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import sqlmodel  # noqa: F401  (autogenerate emits sqlmodel types)


revision: str = '0012_exercises'
down_revision: Union[str, None] = '0011_action_tickets'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

# The unique constraint on `number` was created without a name: PostgreSQL named it itself; SQLite's
# batch mode names reflected constraints by this convention so it can be dropped.
NAMING = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def _number_constraint() -> str:
    return "incident_number_key" if op.get_bind().dialect.name == "postgresql" else "uq_incident_number"


def upgrade() -> None:
    # Every existing row is an incident.
    with op.batch_alter_table('incident', schema=None, naming_convention=NAMING) as batch_op:
        batch_op.add_column(sa.Column('exercise', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('exercise_kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True))
        batch_op.add_column(sa.Column('scenario', sqlmodel.sql.sqltypes.AutoString(), nullable=False,
                                      server_default=''))
        batch_op.drop_constraint(_number_constraint(), type_='unique')
        batch_op.create_unique_constraint('uq_incident_exercise_number', ['exercise', 'number'])


def downgrade() -> None:
    with op.batch_alter_table('incident', schema=None, naming_convention=NAMING) as batch_op:
        batch_op.drop_constraint('uq_incident_exercise_number', type_='unique')
        batch_op.create_unique_constraint(_number_constraint(), ['number'])
        batch_op.drop_column('scenario')
        batch_op.drop_column('exercise_kind')
        batch_op.drop_column('exercise')
