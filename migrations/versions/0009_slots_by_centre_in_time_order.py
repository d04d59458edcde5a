"""A centre's slots in time order: index for the soonest free slots.

core.availability looks for the soonest free slot at a centre (alternatives to a full slot,
the same centre first and then the nearest ones). With this index each look walks the
centre's slots from now and stops at the first free one, instead of reading and sorting every
slot of the centre's 14 days.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 04:05:00

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('slots', schema=None) as batch_op:
        batch_op.create_index('ix_slots_centre_starts', ['centre_id', 'starts_at'], unique=False)


def downgrade():
    with op.batch_alter_table('slots', schema=None) as batch_op:
        batch_op.drop_index('ix_slots_centre_starts')
