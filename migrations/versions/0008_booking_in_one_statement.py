"""Bookings in one statement on PostgreSQL: the citizen's lock and limits in a function.

core.booking books with one statement (seat, appointment, limits) run in autocommit. Its
snapshot is taken before it waits for the citizen's lock, so the limits are counted in
xephang_may_book, a VOLATILE PL/pgSQL function whose queries each take a fresh snapshot,
after it has taken the lock. The text below is core.booking.may_book_function() as of this
revision; tools/check_migrations.py checks that the two agree. SQLite needs nothing.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 03:10:00

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

ARGS = (
    'p_citizen varchar, p_now timestamp without time zone, p_procedure integer, p_day date, '
    'p_max_active integer, p_max_day integer, p_key varchar'
)
CREATE = """\
CREATE OR REPLACE FUNCTION xephang_may_book(p_citizen varchar, p_now timestamp without time zone, p_procedure integer, p_day date, p_max_active integer, p_max_day integer, p_key varchar)
RETURNS boolean LANGUAGE plpgsql VOLATILE COST 10000 AS $body$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended(p_citizen, 7));
    RETURN (SELECT count(*) AS count_1
        FROM appointments
        WHERE appointments.citizen_hash = p_citizen AND appointments.status = 'booked' AND appointments.ends_at > p_now AND appointments.id != -1) < p_max_active AND (SELECT count(*) AS count_2
        FROM appointments JOIN slots AS other_slot ON other_slot.id = appointments.slot_id
        WHERE appointments.citizen_hash = p_citizen AND appointments.status = 'booked' AND appointments.ends_at > p_now AND appointments.id != -1 AND appointments.procedure_id = p_procedure AND other_slot.day = p_day) < p_max_day AND ((SELECT citizen_standings.suspended_until
        FROM citizen_standings
        WHERE citizen_standings.citizen_hash = p_citizen) IS NULL OR (SELECT citizen_standings.suspended_until
        FROM citizen_standings
        WHERE citizen_standings.citizen_hash = p_citizen) <= p_now) AND (p_key IS NULL OR NOT (EXISTS (SELECT *
        FROM appointments
        WHERE appointments.idempotency_key = p_key)));
END
$body$"""


def upgrade():
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(CREATE)


def downgrade():
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(f'DROP FUNCTION IF EXISTS xephang_may_book({ARGS})')
