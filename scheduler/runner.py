"""Runs the schedule while holding the leader lock, and stands by while another copy does.

Both ways to run use it: the embedded scheduler is a daemon thread of the web process, the
city-scale one `flask scheduler run` in the foreground. Either way the lock decides who
runs jobs, so a second copy (another web process, another host) only polls.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from datetime import timedelta

from apscheduler.schedulers.background import BackgroundScheduler
from flask import Flask

from core.common.timeutil import utcnow
from scheduler.lock import LeaderLock
from scheduler.schedule import JOBS, JobSpec
from web.extensions import db

log = logging.getLogger("scheduler")
# Jobs marked `at_start` first run this long after the leader starts (the app settles first).
START_DELAY_SECONDS = 20
# APScheduler logs every run of every job at INFO; run_job logs what each did instead.
logging.getLogger("apscheduler").setLevel(logging.WARNING)


def run_job(app: Flask, spec: JobSpec) -> str:
    """Run one job in an app context, logging what it did and how long it took."""
    job_log = logging.getLogger(f"scheduler.{spec.id}")
    started = time.perf_counter()
    with app.app_context():
        try:
            summary = spec.func()
        except Exception:
            job_log.exception("failed after %.2f s", time.perf_counter() - started)
            raise
        finally:
            db.session.remove()
    job_log.info("%s (%.2f s)", summary, time.perf_counter() - started)
    return summary


def _scheduled(app: Flask, spec: JobSpec) -> None:
    # Already logged by run_job; APScheduler need not log the traceback a second time.
    with contextlib.suppress(Exception):
        run_job(app, spec)


class Runner:
    def __init__(self, app: Flask, lock: LeaderLock, *, poll_seconds: float):
        self.app = app
        self.lock = lock
        self.poll_seconds = poll_seconds
        self.stop = threading.Event()
        self._scheduler: BackgroundScheduler | None = None
        self.thread: threading.Thread | None = None

    @property
    def leading(self) -> bool:
        return self._scheduler is not None

    def run_forever(self) -> None:
        """Poll the lock until `stop` is set: lead when it is ours, stand by when it is not."""
        standby_logged = False
        try:
            while not self.stop.is_set():
                if self.leading and not self.lock.held():
                    log.warning("lost the leader lock: stopping jobs, back to standby")
                    self._step_down()
                if not self.leading:
                    if self.lock.acquire():
                        self._lead()
                        standby_logged = False
                    elif not standby_logged:
                        log.info("standby: another scheduler holds the %s", self.lock.describe())
                        standby_logged = True
                self.stop.wait(self.poll_seconds)
        finally:
            self._step_down()
            self.lock.release()

    def _lead(self) -> None:
        scheduler = BackgroundScheduler(
            timezone="UTC",
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 60},
        )
        soon = utcnow() + timedelta(seconds=START_DELAY_SECONDS)
        for spec in JOBS:
            extra = {"next_run_time": soon} if spec.at_start else {}
            scheduler.add_job(
                _scheduled,
                trigger=spec.trigger(self.app.config),
                args=(self.app, spec),
                id=spec.id,
                name=spec.id,
                replace_existing=True,
                **extra,
            )
        scheduler.start()
        self._scheduler = scheduler
        log.info("leader: running %d jobs (%s)", len(JOBS), self.lock.describe())

    def _step_down(self) -> None:
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=True)
            self._scheduler = None
