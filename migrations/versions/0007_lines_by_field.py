"""Lines by field and by procedure: indexes for every availability query.

core.availability.takes_procedure asks which lines take a field (or list a procedure); the
primary keys lead with the line, so without these each availability query read the whole
of service_fields (14,000 rows for the city, ~1 ms a query).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 01:40:00

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('service_fields', schema=None) as batch_op:
        batch_op.create_index('ix_service_fields_field_id', ['field_id'], unique=False)
    with op.batch_alter_table('service_procedures', schema=None) as batch_op:
        batch_op.create_index(
            'ix_service_procedures_procedure_id', ['procedure_id'], unique=False
        )


def downgrade():
    with op.batch_alter_table('service_procedures', schema=None) as batch_op:
        batch_op.drop_index('ix_service_procedures_procedure_id')
    with op.batch_alter_table('service_fields', schema=None) as batch_op:
        batch_op.drop_index('ix_service_fields_field_id')
