"""The schedule as data, the CLI, every job on a small city, and the embedded runner."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

import scheduler
from core.booking.slots import apply_dispatch
from core.common.timeutil import local_day
from core.models import Centre, DailyStatistic, Slot
from scheduler.jobs import rolling_batch
from scheduler.lock import FileLock, lock_for
from scheduler.runner import Runner
from scheduler.schedule import JOBS
from tests.conftest import both_databases
from tests.factories import make_assignment, make_demo_city, make_staff, make_ticket
from web.extensions import db
from web.settings import slot_policy

STABLE_IDS = [
    "slots.rolling",
    "noshow.sweep",
    "reminders.queue",
    "reminders.send",
    "stats.daily",
    "privacy.purge",
    "balancing.plan",
]


@pytest.fixture
def app_config(now):
    return {"CLOCK": lambda: now, "SLOTS_ROLLING_BATCH": 2, "SCHEDULER_POLL_SECONDS": 0.1}


def test_the_schedule_lists_stable_ids(app):
    assert [spec.id for spec in JOBS] == STABLE_IDS
    for spec in JOBS:
        assert spec.trigger(app.config) is not None and spec.func.__doc__


def test_list_command_shows_every_job(app):
    result = app.test_cli_runner().invoke(args=["scheduler", "list"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert [line.split()[0] for line in lines] == STABLE_IDS
    assert "every minute" in lines[1]


def test_rolling_batches_take_the_city_in_turn():
    ids = list(range(1, 11))
    assert [rolling_batch(ids, run, 4) for run in range(4)] == [
        [1, 2, 3, 4],
        [5, 6, 7, 8],
        [9, 10],
        [1, 2, 3, 4],
    ]
    assert rolling_batch([], 3, 4) == []


@both_databases
def test_every_job_runs_on_a_small_city(app, session, now):
    make_demo_city(now, days=2)
    session.commit()
    runner = app.test_cli_runner()
    for job_id in STABLE_IDS:
        result = runner.invoke(args=["scheduler", "run-job", job_id])
        assert result.exit_code == 0, (job_id, result.output)
        assert result.output.startswith(f"{job_id}: ")
    # The rolling job opened the days up to BOOKING_DAYS for its batch of two centres.
    last = local_day(now) + timedelta(days=app.config["BOOKING_DAYS"] - 1)
    centres_with_last_day = session.scalar(
        select(func.count(func.distinct(Slot.centre_id))).where(
            Slot.day >= last - timedelta(days=3)
        )
    )
    assert centres_with_last_day == 2
    assert session.scalar(select(func.count()).select_from(DailyStatistic)) == 0  # no tickets


def test_rolling_slots_keep_the_capacity_a_dispatch_added(app, session, now):
    centres = make_demo_city(now, days=2)
    session.commit()
    target = centres[0]
    tomorrow = local_day(now) + timedelta(days=1)

    def capacity() -> int:
        session.expire_all()
        return session.scalar(
            select(func.sum(Slot.capacity)).where(Slot.centre_id == target.id, Slot.day == tomorrow)
        )

    before = capacity()
    helper = make_staff(None, "luu-dong-1")
    helper.in_mobile_pool = True
    make_assignment(helper, target, tomorrow)
    apply_dispatch(session, [target.id], tomorrow, now=now, policy=slot_policy())
    session.commit()
    raised = capacity()
    assert raised > before
    # A clock whose rolling batch (of two centres, in id order) holds the target centre.
    minutes = app.config["SLOTS_ROLLING_MINUTES"]
    ids = sorted(c.id for c in centres)
    run = int(now.timestamp() // 60) // minutes
    while target.id not in rolling_batch(ids, run, 2):
        run += 1
    moment = datetime.fromtimestamp(run * minutes * 60, UTC)
    assert local_day(moment) == local_day(now)
    app.config["CLOCK"] = lambda: moment
    result = app.test_cli_runner().invoke(args=["scheduler", "run-job", "slots.rolling"])
    assert result.exit_code == 0, result.output
    assert capacity() == raised


def test_embedded_runner_is_off_under_testing_and_starts_once(app, client):
    assert not scheduler.embedded(app)
    client.get("/health")
    runner = scheduler.start_embedded(app)
    try:
        assert runner is not None and scheduler.start_embedded(app) is None
        deadline = time.monotonic() + 5
        while not runner.leading and time.monotonic() < deadline:
            time.sleep(0.05)
        assert runner.leading
        # Another runner on the same database (here: the same process) stands by.
        other = Runner(
            app, lock_for(app.config["DATABASE_URL"], app.instance_path), poll_seconds=0.1
        )
        assert not other.lock.acquire()
        assert (
            isinstance(other.lock, FileLock) and other.lock.path.parent == runner.lock.path.parent
        )
    finally:
        runner.stop.set()
        runner.thread.join(5)
    assert not runner.thread.is_alive() and not runner.leading
    assert db.session.scalar(select(func.count()).select_from(Centre)) == 0


def test_stats_job_redoes_yesterday_until_it_is_final(app, session, now):
    centres = make_demo_city(now, days=1)
    make_ticket(centres[0], now, service=centres[0].services[0])
    session.commit()
    runner = app.test_cli_runner()
    today = local_day(now)

    def run() -> str:
        result = runner.invoke(args=["scheduler", "run-job", "stats.daily"])
        assert result.exit_code == 0, result.output
        return result.output

    # One ticket: its cell, five roll-ups and its field's row.
    assert f"7 rows for {today}" in run()
    app.config["CLOCK"] = lambda: now + timedelta(hours=18)  # 02:00 local the next day
    assert f"7 rows for {today}" in run()
    assert f"{today} final" in run()
