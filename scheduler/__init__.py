"""Timed jobs (APScheduler): rolling slots, no-show sweep, reminders, statistics, purge,
balancing. Jobs are thin (call core, commit, log); the schedule is data with stable ids;
a leader lock keeps one runner per database.

Embedded (XEPHANG_SCHEDULER=embedded, the default): a daemon thread of the web process,
started by the first request it serves — so CLI commands, the reloader's watcher process
and imports of the app never start one. City scale: set XEPHANG_SCHEDULER=off on the web
processes and run `flask scheduler run` as its own service (it ignores the setting).
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from flask import Flask

if TYPE_CHECKING:
    from scheduler.runner import Runner

log = logging.getLogger("scheduler")

_started: set[int] = set()
_start_lock = threading.Lock()


def init_app(app: Flask) -> None:
    from scheduler.cli import scheduler_cli

    app.cli.add_command(scheduler_cli)
    if embedded(app):

        @app.before_request
        def _start_scheduler() -> None:
            start_embedded(app)


def embedded(app: Flask) -> bool:
    """Whether this app runs the schedule in a background thread (never under TESTING)."""
    return app.config["SCHEDULER"] == "embedded" and not app.testing


def start_embedded(app: Flask) -> Runner | None:
    """Start the embedded runner once per app (its thread: `runner.thread`); None if it
    already runs. `runner.stop.set()` stops it."""
    if id(app) in _started:
        return None
    with _start_lock:
        if id(app) in _started:
            return None
        _started.add(id(app))
    from scheduler.lock import lock_for
    from scheduler.runner import Runner

    runner = Runner(
        app,
        lock_for(app.config["DATABASE_URL"], app.instance_path),
        poll_seconds=app.config["SCHEDULER_POLL_SECONDS"],
    )
    runner.thread = threading.Thread(
        target=runner.run_forever, name="xephang-scheduler", daemon=True
    )
    runner.thread.start()
    log.info("embedded scheduler started in this web process")
    return runner
