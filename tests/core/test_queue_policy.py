"""The pure queue policy: order of calls and wait estimates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from core.floor.queue_policy import (
    Waiting,
    effective_queue_time,
    estimate_wait,
    order_for_counter,
    pick_next,
    typical_service_minutes,
)

T0 = datetime(2026, 12, 7, 1, 0, tzinfo=UTC)


def w(
    id_: int, minutes: int, *, priority: bool = False, service: int = 1, target: int | None = None
):
    return Waiting(id_, service, priority, T0 + timedelta(minutes=minutes), target)


def pick(waiting, *, streak=0, interleave=2, ranks=None, counter=1):
    return pick_next(
        waiting,
        counter_id=counter,
        service_rank=ranks or {1: 0},
        priority_streak=streak,
        interleave=interleave,
    )


def test_earliest_queue_time_first():
    assert pick([w(1, 5), w(2, 1), w(3, 3)]).id == 2


def test_priority_goes_first():
    assert pick([w(1, 0), w(2, 9, priority=True)]).id == 2


def test_interleave_gives_regular_a_turn_after_a_priority_streak():
    queue = [w(1, 0), w(2, 5, priority=True), w(3, 6, priority=True)]
    assert pick(queue, streak=1).id == 2
    assert pick(queue, streak=2).id == 1
    # With nobody regular waiting, priority keeps going.
    assert pick(queue[1:], streak=5).id == 2


def test_only_the_counters_services_and_its_own_transfers():
    queue = [w(1, 0, service=2), w(2, 5), w(3, 1, target=9)]
    assert pick(queue).id == 2
    assert pick(queue, counter=9).id == 3  # transferred to counter 9: first there


def test_service_preference_breaks_ties():
    queue = [w(1, 0, service=2), w(2, 0, service=1)]
    assert pick(queue, ranks={1: 1, 2: 0}).id == 1


def test_nothing_waiting():
    assert pick([]) is None


def test_appointment_queues_at_its_booked_time():
    slot = T0 + timedelta(minutes=30)
    # Came early: queues at the slot start, not ahead of people who came before that.
    assert effective_queue_time(T0, slot, grace_minutes=15) == (slot, True)
    # A little late, within grace: queues from arrival, keeps the appointment.
    assert effective_queue_time(slot + timedelta(minutes=10), slot, grace_minutes=15) == (
        slot + timedelta(minutes=10),
        True,
    )
    # Late beyond grace: a walk-in from now.
    late = slot + timedelta(minutes=20)
    assert effective_queue_time(late, slot, grace_minutes=15) == (late, False)
    assert effective_queue_time(T0, None, grace_minutes=15) == (T0, False)


def test_order_for_counter():
    queue = [w(1, 5), w(2, 1), w(3, 9, priority=True), w(4, 0, service=7)]
    assert [x.id for x in order_for_counter(queue, counter_id=1, service_rank={1: 0})] == [3, 2, 1]


def test_estimates_grow_with_position_and_shrink_with_counters():
    one = estimate_wait(10, 1, 6)
    two = estimate_wait(10, 2, 6)
    assert one.low < 60 < one.high
    assert two.high < one.high
    assert estimate_wait(0, 2, 6).low == 0
    assert estimate_wait(20, 1, 6).high > estimate_wait(5, 1, 6).high
    # No counter open: still an answer, and a wider one.
    assert estimate_wait(5, 0, 6).high > estimate_wait(5, 1, 6).high


def test_typical_service_minutes_falls_back_and_resists_outliers():
    assert typical_service_minutes([], 8) == 8
    assert typical_service_minutes([5, 6, 7, 300], 8) == 6
