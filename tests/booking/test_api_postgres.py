"""tests/booking/test_api.py once more on PostgreSQL, where a booking is one statement with the
citizen's lock and limits in a function (core.booking.appointments._BOOK_IN_ONE) and every refusal is
explained by a second read: the same answers, and nothing changed, either way."""

from tests.booking.test_api import *  # noqa: F403 (its tests and fixtures)
from tests.postgres_rerun import on_postgres_only

pytestmark = on_postgres_only(globals())
