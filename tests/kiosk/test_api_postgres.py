"""tests/kiosk/test_api.py once more on PostgreSQL, where a walk-in is numbered, inserted and
audited in one statement (core.floor.floor_fast.issue_walk_in_at): the same answers either way."""

from tests.kiosk.test_api import *  # noqa: F403 (its tests and fixtures)
from tests.postgres_rerun import on_postgres_only

pytestmark = on_postgres_only(globals())
