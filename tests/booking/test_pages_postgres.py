"""tests/booking/test_pages.py once more on PostgreSQL: the booking form books through the same
one-statement path as the API (core.booking.appointments._BOOK_IN_ONE), inside the page's transaction."""

from tests.booking.test_pages import *  # noqa: F403 (its tests and fixtures)
from tests.postgres_rerun import on_postgres_only

pytestmark = on_postgres_only(globals())
