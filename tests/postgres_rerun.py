"""Run a test module's SQLite-only tests once more on PostgreSQL.

The hot API paths (walk-in tickets, call-next, start) take their own statements on
PostgreSQL (data-modifying CTEs, SKIP LOCKED), so their behaviour there is pinned by the same
tests as on SQLite. A module `test_x_postgres.py` does::

    from tests.kiosk.test_api import *  # noqa: F403 (its tests and fixtures)
    from tests.postgres_rerun import on_postgres_only

    pytestmark = on_postgres_only(globals())
"""

from __future__ import annotations

from typing import Any

import pytest


def _on_both_already(test: Any) -> bool:
    return any(
        mark.name == "parametrize" and "backend" in str(mark.args[0])
        for mark in getattr(test, "pytestmark", [])
    )


def on_postgres_only(namespace: dict[str, Any]) -> pytest.MarkDecorator:
    """Drop the tests that already run on both databases; the rest run on PostgreSQL."""
    for name in [n for n, v in namespace.items() if n.startswith("test_") and _on_both_already(v)]:
        del namespace[name]
    return pytest.mark.parametrize("backend", ["postgres"], indirect=True)
