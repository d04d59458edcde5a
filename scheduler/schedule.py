"""The schedule, declared as data: stable job ids, the function each runs, its trigger.

A job's id never changes (a redeploy replaces the job, never duplicates it); triggers are
built from the settings when the scheduler starts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from core.common.timeutil import LOCAL_TZ
from scheduler import jobs

Config = Mapping[str, Any]


@dataclass(frozen=True)
class JobSpec:
    id: str
    func: Callable[[], str]
    trigger: Callable[[Config], BaseTrigger]
    # Shown by `flask scheduler list`.
    every: Callable[[Config], str]
    # Run once shortly after the leader starts too, instead of waiting a whole interval:
    # for what others read (the load snapshot) and would otherwise lack after a restart.
    at_start: bool = False


def _minutes(n: int) -> IntervalTrigger:
    return IntervalTrigger(minutes=n, timezone="UTC")


JOBS: tuple[JobSpec, ...] = (
    JobSpec(
        "slots.rolling",
        jobs.roll_slots,
        lambda cfg: _minutes(cfg["SLOTS_ROLLING_MINUTES"]),
        lambda cfg: (
            f"every {cfg['SLOTS_ROLLING_MINUTES']} min, {cfg['SLOTS_ROLLING_BATCH']} centres a run"
        ),
    ),
    JobSpec(
        "noshow.sweep", jobs.sweep_no_shows, lambda cfg: _minutes(1), lambda cfg: "every minute"
    ),
    JobSpec(
        "reminders.queue",
        jobs.queue_reminders,
        lambda cfg: _minutes(10),
        lambda cfg: "every 10 min",
    ),
    JobSpec(
        "reminders.send", jobs.send_reminders, lambda cfg: _minutes(1), lambda cfg: "every minute"
    ),
    JobSpec(
        "stats.daily",
        jobs.aggregate_statistics,
        lambda cfg: _minutes(30),
        lambda cfg: "every 30 min (yesterday and today so far)",
    ),
    JobSpec(
        "privacy.purge",
        jobs.purge_personal_data,
        lambda cfg: CronTrigger(hour=2, minute=30, timezone=LOCAL_TZ),
        lambda cfg: "daily at 02:30 local time",
    ),
    JobSpec(
        "balancing.plan",
        jobs.plan_balancing,
        lambda cfg: _minutes(15),
        lambda cfg: "every 15 min, and once at start",
        at_start=True,
    ),
)

JOBS_BY_ID = {spec.id: spec for spec in JOBS}
