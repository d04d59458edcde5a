"""Staff API tokens: several per account, each expiring; the old single token column goes.

staff_tokens holds one row per token (SHA-256 of the token, never the token itself), with
its expiry, so a staff member may have one per script and each dies on its own date, at a
password change or at deactivation (core.staff_tokens).

staff.api_token_hash is dropped, and the tokens in it are not carried over: they had no
expiry, and no route or command issued them, so scripts holding one ask for a new token
with POST /api/v1/auth/token or `flask staff token USERNAME`. A downgrade brings the column
back empty.

On SQLite `staff` is rebuilt (a UNIQUE column cannot be dropped in place); migrations/env.py
keeps foreign keys off meanwhile, or the rebuild would run the ON DELETE actions of every
table referencing staff.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 22:52:03

"""
from alembic import op
import sqlalchemy as sa

import core.models.base


# revision identifiers, used by Alembic.
revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('staff_tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('staff_id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('created_at', core.models.base.UTCDateTime(), nullable=False),
    sa.Column('expires_at', core.models.base.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['staff_id'], ['staff.id'], name=op.f('fk_staff_tokens_staff_id_staff'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_tokens')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_staff_tokens_token_hash'))
    )
    with op.batch_alter_table('staff_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_staff_tokens_staff_id'), ['staff_id'], unique=False)

    with op.batch_alter_table('staff', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_staff_api_token_hash'), type_='unique')
        batch_op.drop_column('api_token_hash')


def downgrade():
    with op.batch_alter_table('staff', schema=None) as batch_op:
        batch_op.add_column(sa.Column('api_token_hash', sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_staff_api_token_hash'), ['api_token_hash'])

    with op.batch_alter_table('staff_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_staff_tokens_staff_id'))

    op.drop_table('staff_tokens')
