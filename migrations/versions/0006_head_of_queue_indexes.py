"""Tickets: partial indexes for the head of a counter's queue (transferred, priority).

core.tickets.head_of_queue finds the head class by class instead of sorting the centre's
whole queue on every call; these keep the two small classes from reading the rest.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 23:05:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

WAITING_TRANSFERRED = "status = 'waiting' AND target_counter_id IS NOT NULL"
WAITING_PRIORITY = "status = 'waiting' AND priority <> 'none'"


def upgrade():
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.create_index(
            'ix_tickets_waiting_transferred',
            ['target_counter_id', 'queue_time'],
            unique=False,
            postgresql_where=sa.text(WAITING_TRANSFERRED),
            sqlite_where=sa.text(WAITING_TRANSFERRED),
        )
        batch_op.create_index(
            'ix_tickets_waiting_priority',
            ['centre_id', 'queue_time'],
            unique=False,
            postgresql_where=sa.text(WAITING_PRIORITY),
            sqlite_where=sa.text(WAITING_PRIORITY),
        )


def downgrade():
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.drop_index('ix_tickets_waiting_priority')
        batch_op.drop_index('ix_tickets_waiting_transferred')
