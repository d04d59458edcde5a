"""tests/counter/test_api.py once more on PostgreSQL, where the counter API calls and starts
tickets in one statement each (core.floor.floor_fast.call_next_at, start_at) rather than through the
model objects it uses on SQLite: the same answers and the same effects either way."""

from tests.counter.test_api import *  # noqa: F403 (its tests and fixtures)
from tests.postgres_rerun import on_postgres_only

pytestmark = on_postgres_only(globals())
