"""Slot generation: capacity from counters, walk-in share, holidays, closures, idempotency."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

import holidays
import pytest
from sqlalchemy import delete, func, select, update

from core.booking import appointments as booking
from core.booking.slots import GenerationReport, SlotPolicy, generate_slots
from core.common.timeutil import local_day
from core.models import Closure, Counter, CounterService, Slot
from tests.conftest import both_databases
from tests.factories import PHONE, cccd, make_centre, make_field, make_procedure, make_service
from web.db import transaction

POLICY = SlotPolicy(window_minutes=30, walk_in_share=0.4)


def expected_capacity(counters: float, window: int, intake: int, walk_in: float) -> int:
    """The documented rule, written independently of the implementation."""
    return math.floor(counters * window / intake * (1 - walk_in) + 1e-9)


def generate(now: datetime, days: int = 14, policy: SlotPolicy = POLICY) -> GenerationReport:
    with transaction() as session:
        return generate_slots(session, now=now, days=days, policy=policy)


def slots(session, **where) -> list[Slot]:
    q = select(Slot).order_by(Slot.service_id, Slot.starts_at)
    for name, value in where.items():
        q = q.where(getattr(Slot, name) == value)
    return list(session.scalars(q))


def share_counter(session, centre, *services) -> Counter:
    """A counter serving several services, in preference order."""
    counter = Counter(centre_id=centre.id, number=100 + len(centre.counters))
    session.add(counter)
    session.flush()
    for rank, service in enumerate(services):
        session.add(CounterService(counter_id=counter.id, service_id=service.id, rank=rank))
    session.flush()
    session.refresh(centre)
    return counter


def open_days(first: date, days: int) -> list[date]:
    """Weekdays that are not Vietnamese public holidays, by the `holidays` package."""
    span = [first + timedelta(days=i) for i in range(days)]
    vn = holidays.country_holidays("VN", years={d.year for d in span})
    return [d for d in span if d.weekday() < 5 and d not in vn]


@pytest.fixture
def centre_ab(session):
    """Service A (intake 10) on two counters plus half of a third; B (intake 15) the other half."""
    centre = make_centre()
    a = make_service(centre, "A", counters=2)
    b = make_service(centre, "B", fields=[make_field("Đất đai", 15)], name="Đất đai", counters=0)
    b.intake_minutes = 15
    share_counter(session, centre, a, b)
    session.commit()
    return centre, a, b


def test_capacity_is_counter_equivalents_times_window_over_intake_less_walk_ins(
    session, now, centre_ab
):
    _, a, b = centre_ab

    generate(now, days=2)

    a_caps = {s.capacity for s in slots(session, service_id=a.id)}
    assert a_caps == {expected_capacity(2.5, 30, 10, 0.4)} == {4}
    # Half a counter at 15 minutes a citizen fills no window once walk-ins are kept: no slots.
    assert expected_capacity(0.5, 30, 15, 0.4) == 0
    assert slots(session, service_id=b.id) == []
    tomorrow = slots(session, service_id=a.id, day=local_day(now) + timedelta(days=1))
    assert len(tomorrow) == 16  # 07:30–11:30 and 13:00–17:00 in 30-minute windows
    assert all(s.ends_at - s.starts_at == timedelta(minutes=30) for s in tomorrow)


def test_walk_in_share_is_kept_out_of_booking(session, now, centre_ab):
    _, a, b = centre_ab
    b.walk_in_share = 0.0  # a service may set its own share
    session.commit()

    generate(now, days=2, policy=SlotPolicy(window_minutes=60, walk_in_share=0.5))

    a_caps = {s.capacity for s in slots(session, service_id=a.id)}
    b_caps = {s.capacity for s in slots(session, service_id=b.id)}
    assert a_caps == {expected_capacity(2.5, 60, 10, 0.5)} == {7}
    assert b_caps == {expected_capacity(0.5, 60, 15, 0.0)} == {2}
    # Whatever the share, booking never takes more than the rest of the counters' time.
    for s in slots(session, service_id=a.id):
        assert s.capacity <= 2.5 * 60 / 10 * (1 - 0.5)


def test_everything_kept_for_walk_ins_means_no_slots(session, now, centre_ab):
    generate(now, days=2, policy=SlotPolicy(window_minutes=30, walk_in_share=1.0))
    assert slots(session) == []


def test_only_future_windows_are_offered(session, now, centre_ab):
    generate(now, days=1)

    today = slots(session, day=local_day(now))
    assert today and all(s.starts_at > now for s in today)


@pytest.mark.parametrize(
    "first",
    [
        pytest.param(datetime(2026, 12, 28, 1, 0, tzinfo=UTC), id="new-year-2027"),
        pytest.param(datetime(2027, 2, 1, 1, 0, tzinfo=UTC), id="tet-2027"),
    ],
)
def test_vietnamese_public_holidays_have_no_slots(session, first, centre_ab):
    vn = holidays.country_holidays("VN", years=first.year)
    assert date(2027, 1, 1) in vn and date(2027, 2, 6) in vn  # the package's own truth

    report = generate(first, days=14)

    days = sorted({s.day for s in slots(session)})
    assert days == open_days(local_day(first), 14)
    assert not any(d in vn for d in days)
    assert report.days_skipped == 14 - len(days)


def test_closures_of_a_centre_or_of_every_centre_are_skipped(session, now):
    here = make_centre(code="90001")
    there = make_centre(code="90002", name="Phường Gò Vấp")
    make_service(here, counters=2)
    make_service(there, counters=2)
    tue, wed = local_day(now) + timedelta(days=1), local_day(now) + timedelta(days=2)
    session.add_all(
        [Closure(centre_id=here.id, day=tue, reason="Bảo trì"), Closure(day=wed, reason="Tết")]
    )
    session.commit()

    generate(now, days=5)

    assert {s.day for s in slots(session, centre_id=here.id)}.isdisjoint({tue, wed})
    there_days = {s.day for s in slots(session, centre_id=there.id)}
    assert tue in there_days and wed not in there_days


@both_databases
def test_rerunning_changes_nothing_and_never_duplicates(session, now, centre_ab):
    first = generate(now)
    count = session.scalar(select(func.count()).select_from(Slot))

    second = generate(now)

    assert first.created == count > 0
    assert (second.created, second.resized, second.removed) == (0, 0, 0)
    assert session.scalar(select(func.count()).select_from(Slot)) == count
    distinct = session.execute(
        select(func.count()).select_from(
            select(Slot.service_id, Slot.starts_at).distinct().subquery()
        )
    ).scalar()
    assert distinct == count


def _book_one(session, now, slot: Slot, code: str) -> None:
    applicant = booking.validate_applicant(
        full_name="Nguyễn Văn An",
        phone=PHONE,
        citizen_id=cccd(1),
        email=None,
        consent=True,
        now=now,
        key=b"k",
    )
    with transaction():
        booking.book(
            session,
            slot_id=slot.id,
            procedure_code=code,
            applicant=applicant,
            now=now,
            rules=booking.BookingRules(),
            secret="s",
        )


@both_databases
def test_a_closure_removes_free_slots_but_keeps_the_booked_one(session, now, centre_ab):
    centre, a, _ = centre_ab
    proc = make_procedure(code="1.000001")
    session.commit()
    generate(now)
    day = local_day(now) + timedelta(days=1)
    booked = slots(session, service_id=a.id, day=day)[3]
    _book_one(session, now, booked, proc.code)
    on_day = len(slots(session, day=day))
    with transaction():
        session.add(Closure(centre_id=centre.id, day=day, reason="Sự cố điện"))

    report = generate(now)

    left = slots(session, day=day)
    assert [(s.id, s.capacity, s.booked) for s in left] == [(booked.id, 4, 1)]
    assert (report.removed, report.kept_booked) == (on_day - 1, 1)


@both_databases
def test_removing_counters_shrinks_free_slots_never_below_booked(session, now, centre_ab):
    centre, a, _ = centre_ab
    generate(now)
    day = local_day(now) + timedelta(days=1)
    full, half = slots(session, service_id=a.id, day=day)[:2]
    with transaction():
        # Seats taken by earlier bookings (the booking path is tested elsewhere).
        session.execute(update(Slot).where(Slot.id == full.id).values(booked=4))
        session.execute(update(Slot).where(Slot.id == half.id).values(booked=1))
        session.execute(delete(Counter).where(Counter.centre_id == centre.id, Counter.number == 2))

    generate(now)

    session.expire_all()
    shrunk = expected_capacity(1.5, 30, 10, 0.4)
    assert shrunk == 2
    caps = {s.id: (s.capacity, s.booked) for s in slots(session, service_id=a.id, day=day)}
    assert caps[full.id] == (4, 4)  # kept at its bookings, not shrunk to 2
    assert caps[half.id] == (2, 1)
    assert {c for sid, (c, _) in caps.items() if sid not in (full.id, half.id)} == {shrunk}

    with transaction():
        session.execute(delete(Counter).where(Counter.centre_id == centre.id))
    report = generate(now)

    session.expire_all()
    remaining = slots(session, service_id=a.id)
    assert {s.id for s in remaining} == {full.id, half.id}
    assert report.kept_booked == 2
