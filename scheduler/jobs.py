"""The scheduler's jobs: each reads its settings, calls core, commits, and returns a line
for the log. They run inside an app context (scheduler.runner provides one)."""

from __future__ import annotations

import logging
import math
from datetime import time, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import select

from core import notifications
from core.booking.slots import generate_slots
from core.citizens import privacy
from core.common.timeutil import local_day
from core.floor import sweeps
from core.models import Centre
from core.operations import statistics
from web.clock import clock
from web.db import transaction
from web.extensions import db
from web.settings import slot_policy

log = logging.getLogger(__name__)


def _cfg() -> dict[str, Any]:
    return current_app.config


# --- slots ----------------------------------------------------------------------------------


def rolling_batch(centre_ids: list[int], run_index: int, batch: int) -> list[int]:
    """The centres whose slots this run renews: the city cut in batches, one batch a run in
    turn, so the new day opens centre by centre rather than city-wide at one instant."""
    if not centre_ids:
        return []
    batches = math.ceil(len(centre_ids) / max(batch, 1))
    k = run_index % batches
    return centre_ids[k * batch : (k + 1) * batch]


def roll_slots() -> str:
    """Keep BOOKING_DAYS of slots generated for the next batch of centres."""
    cfg = _cfg()
    now = clock()
    # The batch follows the clock, not a counter in memory: a new leader carries on in turn.
    run_index = int(now.timestamp() // 60) // max(cfg["SLOTS_ROLLING_MINUTES"], 1)
    with transaction() as session:
        ids = list(
            session.scalars(select(Centre.id).where(Centre.active.is_(True)).order_by(Centre.id))
        )
        batch = rolling_batch(ids, run_index, cfg["SLOTS_ROLLING_BATCH"])
        if not batch:
            return "no centres"
        # Idempotent, and keeps the seats that accepted dispatch plans added.
        report = generate_slots(
            session, now=now, days=cfg["BOOKING_DAYS"], policy=slot_policy(), centre_ids=batch
        )
    return (
        f"centres {batch[0]}..{batch[-1]} ({len(batch)}): {report.created} created, "
        f"{report.resized} resized, {report.removed} removed"
    )


# --- no-shows -------------------------------------------------------------------------------


def no_show_policy() -> sweeps.NoShowPolicy:
    cfg = _cfg()
    return sweeps.NoShowPolicy(
        grace_minutes=cfg["GRACE_MINUTES"],
        late_limit_minutes=cfg["LATE_LIMIT_MINUTES"],
        max_calls=cfg["MAX_CALLS"],
        called_timeout_minutes=cfg["NO_SHOW_CALLED_TIMEOUT_MINUTES"],
        closing_minutes=cfg["NO_SHOW_CLOSING_MINUTES"],
        limit=cfg["NO_SHOW_LIMIT"],
        window_days=cfg["NO_SHOW_WINDOW_DAYS"],
        suspension_days=cfg["NO_SHOW_SUSPENSION_DAYS"],
    )


def sweep_no_shows() -> str:
    """Missed appointments, tickets called in vain, lines left at closing time."""
    with transaction() as session:
        report = sweeps.sweep(session, now=clock(), policy=no_show_policy())
    return str(report)


# --- reminders ------------------------------------------------------------------------------


def reminder_policy() -> notifications.ReminderPolicy:
    cfg = _cfg()
    channels = tuple(c.strip() for c in cfg["NOTIFY_CHANNELS"].split(",") if c.strip())
    return notifications.ReminderPolicy(
        day_before_at=time.fromisoformat(cfg["REMINDER_DAY_BEFORE_AT"]),
        hour_before_minutes=cfg["REMINDER_HOUR_BEFORE_MINUTES"],
        channels=channels or ("log",),
        max_attempts=cfg["NOTIFY_MAX_ATTEMPTS"],
        retry_minutes=cfg["NOTIFY_RETRY_MINUTES"],
    )


def queue_reminders() -> str:
    """Day-before and hour-before reminders into the outbox, once each."""
    with transaction() as session:
        added = notifications.queue_reminders(session, now=clock(), policy=reminder_policy())
    return f"{added} reminders queued"


def _in_transaction(fn):  # type: ignore[no-untyped-def]
    with transaction() as session:
        return fn(session)


def send_reminders() -> str:
    """Send the due reminders; failures are retried with backoff, never blocking others."""
    report = notifications.send_due(
        _in_transaction,
        now=clock(),
        policy=reminder_policy(),
        senders=notifications.senders_from_config(_cfg()),
    )
    return str(report)


# --- statistics and privacy -----------------------------------------------------------------


def aggregate_statistics() -> str:
    """Yesterday's and today's figures so far, per centre, line, source and hour."""
    now = clock()
    today = local_day(now)
    done = []
    session = db.session
    for day in (today - timedelta(days=1), today):
        if day < today and statistics.settled(session, day):
            done.append(f"{day} final")  # computed once the day was over
            continue
        # Read first, then write in a short transaction (on SQLite it holds the write lock).
        cells = statistics.fold_day(session, day)
        session.rollback()
        with transaction() as tx:
            written = statistics.write_day(tx, day, cells, now=now)
        done.append(f"{written} rows for {day}")
    session.rollback()
    return "; ".join(done)


def purge_personal_data() -> str:
    """Erase personal data past PERSONAL_DATA_RETENTION_DAYS; statistics stay."""
    with transaction() as session:
        report = privacy.purge_personal_data(
            session, now=clock(), retention_days=_cfg()["PERSONAL_DATA_RETENTION_DAYS"]
        )
    return str(report)


# --- balancing ------------------------------------------------------------------------------


def plan_balancing() -> str:
    """Load, forecast and dispatch plan for today and the coming days; overloads logged.

    The load is kept as a snapshot (core.places.load) that booking suggestions and the
    dashboard read. The plan itself is not written: it becomes assignments only when an
    operator accepts it.
    """
    from core.operations import balancing, dispatch
    from core.places import load as load_snapshot

    cfg = _cfg()
    now = clock()
    policy = balancing.BalancingPolicy.from_config(cfg)
    session = db.session
    try:
        loads = balancing.load(
            session, None, local_day(now), cfg["BOOKING_DAYS"], now=now, policy=policy
        )
        plan = dispatch.dispatch_plan(session, loads, now=now, policy=policy)
    finally:
        session.rollback()
    with transaction() as tx:
        stored = load_snapshot.store(tx, loads.centres, now=now)
    overloaded = sorted(
        (c for c in loads.centres.values() if c.overloaded), key=lambda c: (c.day, -c.deficit)
    )
    for centre_day in overloaded[:10]:
        log.warning(
            "overload %s on %s: %d officers, %d needed, utilisation %.0f%%",
            centre_day.centre_code,
            centre_day.day,
            centre_day.officers,
            centre_day.needed,
            100 * centre_day.utilisation,
        )
    return (
        f"{stored} centre-days stored, {len(overloaded)} overloaded; plan {plan.id[:12]}: "
        f"{len(plan.moves)} moves, {sum(s.officers for s in plan.unmet)} officers unmet"
    )
