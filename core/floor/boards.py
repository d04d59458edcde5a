"""What a waiting-room board and a counter's live queue counts show: labels, counters and
waits, never a name, phone or citizen hash.

Reads only, in a handful of queries whatever the size of the centre: boards are refreshed
after every change of the floor, so the snapshot must stay cheap.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.common.timeutil import iso, local_day
from core.floor import queue_policy, tickets
from core.models import Centre, Counter, CounterService, Service, Ticket, TicketStatus

AT_COUNTER = (TicketStatus.CALLED, TicketStatus.SERVING)


def _lines(session: Session, centre: Centre) -> list[Any]:
    """Rows (id, prefix, name, intake_minutes) of the centre's active services, by prefix."""
    return list(
        session.execute(
            select(Service.id, Service.prefix, Service.name, Service.intake_minutes)
            .where(Service.centre_id == centre.id, Service.active.is_(True))
            .order_by(Service.prefix)
        ).all()
    )


def _waiting_counts(session: Session, service_ids: list[int], now: datetime) -> dict[int, int]:
    if not service_ids:
        return {}
    rows = session.execute(
        select(Ticket.service_id, func.count())
        .where(
            Ticket.service_id.in_(service_ids),
            Ticket.day == local_day(now),
            Ticket.status == TicketStatus.WAITING,
        )
        .group_by(Ticket.service_id)
    ).all()
    return {service_id: int(count) for service_id, count in rows}


def _open_counter_weights(session: Session, centre: Centre) -> dict[int, float]:
    """Per service: open counters serving it, each weighted by its share of time for it
    (the same measure as `tickets.open_counter_weight`, for every line in one query)."""
    rows = session.execute(
        select(CounterService.counter_id, CounterService.service_id)
        .join(Counter, Counter.id == CounterService.counter_id)
        .where(Counter.centre_id == centre.id, Counter.is_open.is_(True))
    ).all()
    lines_per_counter: dict[int, int] = defaultdict(int)
    for counter_id, _ in rows:
        lines_per_counter[counter_id] += 1
    weights: dict[int, float] = defaultdict(float)
    for counter_id, service_id in rows:
        weights[service_id] += 1.0 / lines_per_counter[counter_id]
    return weights


def _called(session: Session, service_ids: list[int], now: datetime, *, limit: int | None):
    """Tickets called today to a counter of these lines, latest call first; only those still
    at a counter when `limit` is None."""
    query = (
        select(Ticket.label, Ticket.called_at, Counter.number, Service.prefix, Service.name)
        .join(Counter, Counter.id == Ticket.counter_id)
        .join(Service, Service.id == Ticket.service_id)
        .where(
            Ticket.service_id.in_(service_ids),
            Ticket.day == local_day(now),
            Ticket.called_at.is_not(None),
        )
        .order_by(Ticket.called_at.desc(), Ticket.id.desc())
    )
    query = query.where(Ticket.status.in_(AT_COUNTER)) if limit is None else query.limit(limit)
    return session.execute(query).all()


def board_snapshot(
    session: Session, centre: Centre, *, now: datetime, recent: int = 10
) -> dict[str, Any]:
    """The board of `centre` at `now`: tickets at counters, the last `recent` calls of the
    day (newest first) and, per line, how many wait and how long a newcomer would wait
    (None when no counter of that line is open)."""
    lines = _lines(session, centre)
    ids = [line.id for line in lines]
    serving = _called(session, ids, now, limit=None) if ids else []
    latest = _called(session, ids, now, limit=max(recent, 0)) if ids and recent > 0 else []
    counts = _waiting_counts(session, ids, now)
    weights = _open_counter_weights(session, centre)
    waiting = []
    for line in lines:
        count = counts.get(line.id, 0)
        eta = None
        if weights.get(line.id):
            minutes = queue_policy.typical_service_minutes(
                tickets.recent_service_minutes(session, line.id), float(line.intake_minutes)
            )
            estimate = queue_policy.estimate_wait(count, weights[line.id], minutes)
            eta = {"low": estimate.low, "high": estimate.high}
        waiting.append(
            {"service": line.prefix, "service_name": line.name, "count": count, "eta_minutes": eta}
        )
    return {
        "centre": {"code": centre.code, "name": centre.name},
        "now_serving": [
            {
                "counter": row.number,
                "label": row.label,
                "service": row.prefix,
                "service_name": row.name,
                "called_at": iso(row.called_at),
            }
            for row in serving
        ],
        "recent": [
            {
                "counter": row.number,
                "label": row.label,
                "service": row.prefix,
                "called_at": iso(row.called_at),
            }
            for row in latest
        ],
        "waiting": waiting,
        "generated_at": iso(now),
    }


def queue_counts(session: Session, centre: Centre, *, now: datetime) -> dict[str, Any]:
    """Waiting tickets per line of `centre` today, for the counter workstations."""
    lines = _lines(session, centre)
    counts = _waiting_counts(session, [line.id for line in lines], now)
    return {
        "waiting": [
            {
                "service_id": line.id,
                "service": line.prefix,
                "service_name": line.name,
                "count": counts.get(line.id, 0),
            }
            for line in lines
        ],
        "generated_at": iso(now),
    }
