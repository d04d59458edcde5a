"""Pure queue policy: who is called next, and how long the wait will be.

No database here: plain values in, plain values out, so the rules are easy to test and
to reason about.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from statistics import median


@dataclass(frozen=True, slots=True)
class Waiting:
    """What the policy needs to know of a waiting ticket."""

    id: int
    service_id: int
    priority: bool
    queue_time: datetime
    target_counter_id: int | None = None


def effective_queue_time(
    issued_at: datetime, slot_start: datetime | None, *, grace_minutes: int
) -> tuple[datetime, bool]:
    """Queue time of a ticket and whether it keeps its appointment standing.

    A walk-in queues from its issue time. An appointment holder slots in at their booked
    time — max(check-in, slot start) — not ahead of people who came earlier; beyond the
    grace window after the slot start they queue as a walk-in from now.
    """
    if slot_start is None:
        return issued_at, False
    late_by = (issued_at - slot_start).total_seconds() / 60
    if late_by > grace_minutes:
        return issued_at, False
    return max(issued_at, slot_start), True


def pick_next(
    waiting: Iterable[Waiting],
    *,
    counter_id: int,
    service_rank: dict[int, int],
    priority_streak: int,
    interleave: int,
) -> Waiting | None:
    """The ticket a counter should call next, or None.

    Only tickets of the counter's services (keys of `service_rank`) are eligible, and a
    ticket transferred to one counter only there. Priority tickets go first, except that
    after `interleave` priority calls in a row a regular ticket takes its turn (when one
    waits), so nobody is starved. Then earliest queue time, then the counter's service
    preference, then issue order.
    """
    eligible = [
        w
        for w in waiting
        if w.service_id in service_rank
        and (w.target_counter_id is None or w.target_counter_id == counter_id)
    ]
    if not eligible:
        return None
    regular_turn = interleave > 0 and priority_streak >= interleave
    has_regular = any(not w.priority for w in eligible)

    def key(w: Waiting) -> tuple:
        prefer_priority = w.priority and not (regular_turn and has_regular)
        return (
            0 if w.target_counter_id == counter_id else 1,
            0 if prefer_priority else 1,
            w.queue_time,
            service_rank[w.service_id],
            w.id,
        )

    return min(eligible, key=key)


def order_for_counter(
    waiting: Sequence[Waiting], *, counter_id: int, service_rank: dict[int, int]
) -> list[Waiting]:
    """The waiting list in the order a counter would call it (ignoring interleave)."""
    return sorted(
        (w for w in waiting if w.service_id in service_rank),
        key=lambda w: (0 if w.priority else 1, w.queue_time, service_rank[w.service_id], w.id),
    )


@dataclass(frozen=True, slots=True)
class WaitEstimate:
    low: int
    high: int


def typical_service_minutes(recent: Sequence[float], fallback: float) -> float:
    """Median of recent service times (robust to one long case), else the procedure default."""
    usable = [m for m in recent if 0.5 <= m <= 120]
    if len(usable) < 3:
        return fallback
    return float(median(usable))


def estimate_wait(position: int, open_counters: float, service_minutes: float) -> WaitEstimate:
    """A low–high range of minutes until called, for someone with `position` people ahead.

    With c counters each taking about m minutes, the queue drains about c/m people a
    minute; the range widens with the queue because service times vary.
    """
    if position <= 0:
        return WaitEstimate(0, max(1, math.ceil(service_minutes / max(open_counters, 1) / 2)))
    counters = max(open_counters, 1.0) if open_counters > 0 else 1.0
    expected = position * service_minutes / counters
    spread = 0.25 + 0.35 / math.sqrt(position)
    low = max(0, math.floor(expected * (1 - spread)))
    high = math.ceil(expected * (1 + spread)) + (0 if open_counters > 0 else 15)
    return WaitEstimate(low, max(high, low + 1))
