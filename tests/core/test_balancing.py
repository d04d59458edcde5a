"""Balancing: walk-in forecast, load, dispatch plan, accepting it, suggestions."""

from __future__ import annotations

import math
from datetime import date, time, timedelta

import pytest
from sqlalchemy import func, select

from core.booking.slots import SlotPolicy, generate_slots
from core.catalogue.search import index
from core.common.errors import Conflict
from core.models import Slot, StaffAssignment, TicketSource
from core.operations.balancing import BalancingPolicy, load
from core.operations.dispatch import accept_plan, dispatch_plan
from core.operations.erlang import min_agents
from core.operations.forecast import HistoryCache, forecast_walk_ins, load_history
from core.operations.suggestions import centres_with_room
from tests.conftest import both_databases
from tests.factories import (
    make_assignment,
    make_centre,
    make_field,
    make_history_ticket,
    make_procedure,
    make_service,
    make_staff,
)
from web.db import transaction

# The `now` fixture is Monday 7 December 2026, 08:00 local; the day balanced is the Monday
# after, and the history three Mondays before.
TARGET_DAY = date(2026, 12, 14)
PAST_MONDAYS = (date(2026, 11, 16), date(2026, 11, 23), date(2026, 11, 30))
SLOTS = SlotPolicy(window_minutes=30, walk_in_share=0.4)
OPEN_MINUTES = 480  # 07:30–11:30 and 13:00–17:00
WINDOWS = 16


def history_at(service, days, per_day: int, at: time = time(9, 10)) -> None:
    for day in days:
        for _ in range(per_day):
            make_history_ticket(service, day, at)


# --- forecast -------------------------------------------------------------------------------


@both_databases
def test_forecast_is_the_mean_per_weekday_and_hour_of_unscheduled_tickets(session, now):
    centre = make_centre()
    a = make_service(centre, "A", counters=2)
    history_at(a, PAST_MONDAYS, 6, time(9, 10))
    history_at(a, PAST_MONDAYS, 3, time(14, 40))
    # Not walk-in demand: booked appointments, and the second half of a transfer.
    for day in PAST_MONDAYS:
        make_history_ticket(a, day, time(10, 0), source=TicketSource.APPOINTMENT)
    first = make_history_ticket(a, PAST_MONDAYS[0], time(15, 0))
    make_history_ticket(a, PAST_MONDAYS[0], time(15, 5), transferred_from_id=first.id)
    # A Tuesday does not count towards Mondays.
    history_at(a, [date(2026, 12, 1)], 50, time(9, 0))
    # Same-day remote numbers are unscheduled demand too.
    make_history_ticket(a, PAST_MONDAYS[1], time(8, 0), source=TicketSource.REMOTE)
    session.commit()

    policy = BalancingPolicy(min_history_days=3)
    history = load_history(session, now=now, policy=policy)
    hourly = forecast_walk_ins(history, centre, a.id, TARGET_DAY, 2.0, policy)

    assert hourly[9] == pytest.approx(6.0)
    assert hourly[14] == pytest.approx(3.0)
    assert hourly[15] == pytest.approx(1 / 3)  # the transfer's original, once
    assert hourly[8] == pytest.approx(1 / 3)
    assert hourly[10] == 0.0
    assert sorted(hourly) == [7, 8, 9, 10, 11, 13, 14, 15, 16]
    assert sum(hourly.values()) == pytest.approx(6 + 3 + 2 / 3)


@both_databases
def test_forecast_falls_back_to_the_configured_volume_without_enough_history(session, now):
    centre = make_centre()
    a = make_service(centre, "A", counters=3)
    history_at(a, PAST_MONDAYS[:2], 40)  # two Mondays: one short of enough
    session.commit()

    policy = BalancingPolicy(min_history_days=3, walk_ins_per_counter=16.0)
    history = load_history(session, now=now, policy=policy)
    hourly = forecast_walk_ins(history, centre, a.id, TARGET_DAY, 3.0, policy)

    assert sum(hourly.values()) == pytest.approx(48.0)
    # Spread by opening minutes: half an hour open at 07:30 and 11:00, a full hour otherwise.
    assert hourly[7] == pytest.approx(48 * 30 / OPEN_MINUTES)
    assert hourly[9] == pytest.approx(48 * 60 / OPEN_MINUTES)
    assert 12 not in hourly


# --- load -----------------------------------------------------------------------------------


@both_databases
def test_load_reports_capacity_bookings_forecast_and_overload(session, now):
    quiet = make_centre("90001", "Phường Yên")
    busy = make_centre("90002", "Phường Đông", lat=10.78)
    qa = make_service(quiet, "A", counters=2)
    ba = make_service(busy, "A", counters=2)
    session.commit()
    with transaction():
        generate_slots(session, now=now, days=8, policy=SLOTS)
    session.execute(
        Slot.__table__.update()
        .where(Slot.service_id == ba.id, Slot.day == TARGET_DAY)
        .values(booked=Slot.capacity)
    )
    session.commit()

    policy = BalancingPolicy(walk_ins_per_counter=15.0)
    report = load(session, None, TARGET_DAY, 1, now=now, policy=policy)

    lines = {s.service_id: s for s in report.services}
    capacity = 2 * OPEN_MINUTES / 10  # two counters, ten minutes a citizen
    per_window = math.floor(2 * 30 / 10 * 0.6)
    assert lines[qa.id].capacity == capacity == 96
    assert lines[qa.id].bookable == lines[ba.id].bookable == per_window * WINDOWS
    assert lines[qa.id].booked == 0 and lines[qa.id].forecast == 30.0
    assert lines[qa.id].utilisation == pytest.approx(30 / 96, abs=1e-3)
    assert not lines[qa.id].overloaded
    assert lines[ba.id].booked == per_window * WINDOWS
    assert lines[ba.id].utilisation == pytest.approx((48 + 30) / 96, abs=1e-3)
    assert not lines[ba.id].overloaded

    tight = BalancingPolicy(walk_ins_per_counter=15.0, overload_threshold=0.75)
    flagged = load(session, None, TARGET_DAY, 1, now=now, policy=tight)
    assert {s.service_id for s in flagged.services if s.overloaded} == {ba.id}
    busy_day = flagged.centres[(busy.id, TARGET_DAY)]
    assert busy_day.officers == 2 and busy_day.overloaded
    # Saturday and Sunday are closed: no rows.
    week = load(session, [quiet.id], TARGET_DAY, 7, now=now, policy=policy)
    assert sorted({c.day for c in week.centres.values()}) == [
        TARGET_DAY + timedelta(days=i) for i in range(5)
    ]


# --- dispatch plan --------------------------------------------------------------------------


@pytest.fixture
def small_city(session, now):
    """R is swamped on Mondays (20 walk-ins in the nine o'clock hour, two counters); its
    neighbours are quiet. Distances from R: D3 0.6 km (one counter, all of it needed),
    D1 1.1 km, D2 3.3 km, FAR 55 km."""
    r = make_centre("90010", "Phường R", lat=10.7700, lon=106.7000)
    d3 = make_centre("90013", "Phường D3", lat=10.7750, lon=106.7000)
    d1 = make_centre("90011", "Phường D1", lat=10.7800, lon=106.7000)
    d2 = make_centre("90012", "Phường D2", lat=10.8000, lon=106.7000)
    far = make_centre("90014", "Xã Xa", lat=11.2700, lon=106.7000)
    services = {
        "R": make_service(r, "A", counters=2),
        "D3": make_service(d3, "A", counters=1),
        "D1": make_service(d1, "A", counters=4),
        "D2": make_service(d2, "A", counters=4),
        "FAR": make_service(far, "A", counters=6),
    }
    history_at(services["R"], PAST_MONDAYS, 20)
    for name in ("D3", "D1", "D2", "FAR"):
        # Enough history, and quiet: one walk-in a Monday morning.
        history_at(services[name], PAST_MONDAYS, 1)
    staff = {
        "D3": [make_staff(d3)],
        "D1": [make_staff(d1), make_staff(d1)],
        "D2": [make_staff(d2), make_staff(d2)],
        "FAR": [make_staff(far) for _ in range(4)],
    }
    session.commit()
    with transaction():
        generate_slots(session, now=now, days=8, policy=SLOTS)
    return {"R": r, "D3": d3, "D1": d1, "D2": d2, "FAR": far}, services, staff


def pool_officer(session, n: int = 1):
    out = []
    for _ in range(n):
        s = make_staff(None)
        s.in_mobile_pool = True
        out.append(s)
    session.flush()
    return out


POLICY = BalancingPolicy(min_history_days=3)


def plan_for(session, now, policy=POLICY):
    report = load(session, None, TARGET_DAY, 1, now=now, policy=policy)
    return report, dispatch_plan(session, report, now=now, policy=policy)


@both_databases
def test_plan_takes_the_pool_first_then_the_nearest_donor_with_spare_officers(
    session, now, small_city
):
    centres, _, staff = small_city
    pool = pool_officer(session)
    session.commit()

    report, plan = plan_for(session, now)

    r_day = report.centres[(centres["R"].id, TARGET_DAY)]
    # 20 an hour at ten minutes each is 3⅓ Erlangs: five officers for 80% within 15 min.
    assert r_day.needed == min_agents(20 / 6, 10, 15, 0.8) == 5
    assert r_day.officers == 2 and r_day.deficit == 3
    assert [(m.from_centre_code, m.to_centre_code, m.staff_ids) for m in plan.moves] == [
        (None, "90010", (pool[0].id,)),
        ("90011", "90010", tuple(s.id for s in staff["D1"])),
    ]
    assert not plan.unmet
    # D3 is nearer but needs its only officer; D1 keeps at least what it needs.
    d1_day = report.centres[(centres["D1"].id, TARGET_DAY)]
    assert d1_day.officers - plan.moves[1].officers >= d1_day.needed
    first, second = plan.moves
    assert first.wait_p90_before is None  # two officers for 3⅓ Erlangs: the queue only grows
    assert first.wait_p90_after == r_day.p90_with(3)
    assert second.wait_p90_before == first.wait_p90_after
    assert second.wait_p90_after == r_day.p90_with(5) < 15
    assert second.distance_km == pytest.approx(1.11, abs=0.02)
    assert plan_for(session, now)[1] == plan  # deterministic, same id


@both_databases
def test_without_a_pool_donors_go_nearest_first_and_far_centres_never(session, now, small_city):
    centres, _, staff = small_city
    # One of D1's officers is already dispatched elsewhere that day: not lendable.
    make_assignment(staff["D1"][1], centres["D2"], TARGET_DAY)
    session.commit()

    report, plan = plan_for(session, now)

    moves = [(m.from_centre_code, m.staff_ids) for m in plan.moves]
    assert moves == [
        ("90011", (staff["D1"][0].id,)),
        ("90012", (staff["D2"][0].id, staff["D2"][1].id)),
    ]
    for move in plan.moves:
        donor = report.centres[(move.from_centre_id, TARGET_DAY)]
        assert donor.officers - move.officers >= donor.needed

    strict = BalancingPolicy(min_history_days=3, max_dispatch_km=2.0)
    _, short = plan_for(session, now, strict)
    assert [m.from_centre_code for m in short.moves] == ["90011"]
    assert [(u.centre_code, u.officers) for u in short.unmet] == [("90010", 2)]


@both_databases
def test_a_donor_keeps_what_each_of_its_lines_needs_on_its_own(session, now):
    """Counters serve one line each and do not pool across lines: a donor with two busy
    lines keeps the officers each line needs on its own, more than the pooled figure."""
    r = make_centre("90030", "Phường Đông", lat=10.7700, lon=106.7000)
    d = make_centre("90031", "Phường Hai Dòng", lat=10.7750, lon=106.7000)
    land = make_field("Đất đai", intake=10)
    ra = make_service(r, "A", counters=1)
    da = make_service(d, "A", counters=4)
    db_ = make_service(d, "B", fields=[land], counters=4)
    history_at(ra, PAST_MONDAYS, 30)
    history_at(da, PAST_MONDAYS, 12)
    history_at(db_, PAST_MONDAYS, 12)
    lenders = [make_staff(d) for _ in range(8)]
    session.commit()

    report, plan = plan_for(session, now)

    donor = report.centres[(d.id, TARGET_DAY)]
    per_line = min_agents(12 / 6, 10, 15, 0.8)  # 2 Erlangs a line
    pooled = min_agents(24 / 6, 10, 15, 0.8)  # 4 Erlangs across both
    assert (donor.needed, donor.needed_by_line) == (pooled, 2 * per_line)
    assert pooled < 2 * per_line  # pooling would promise officers the lines cannot spare
    assert donor.officers == 8 and donor.surplus == 8 - 2 * per_line
    lent = sum(m.officers for m in plan.moves if m.from_centre_id == d.id)
    assert 0 < lent <= donor.surplus
    assert {sid for m in plan.moves for sid in m.staff_ids} <= {s.id for s in lenders}


# --- accepting ------------------------------------------------------------------------------


def capacity(session, centre, day=TARGET_DAY) -> int:
    return session.scalar(
        select(func.sum(Slot.capacity)).where(Slot.centre_id == centre.id, Slot.day == day)
    )


@both_databases
def test_accepted_plan_assigns_staff_and_opens_slots_once(session, now, small_city):
    centres, _, _ = small_city
    pool_officer(session)
    session.commit()
    _, plan = plan_for(session, now)
    before = {k: capacity(session, c) for k, c in centres.items()}

    with transaction():
        first = accept_plan(session, plan, now=now, slot_policy=SLOTS)
    after = {k: capacity(session, c) for k, c in centres.items()}
    with transaction():
        again = accept_plan(session, plan, now=now, slot_policy=SLOTS)

    assert (first.assignments_created, first.assignments_kept) == (3, 0)
    assert (again.assignments_created, again.assignments_kept) == (0, 3)
    assert again.slots_created == again.slots_resized == 0
    rows = session.execute(
        select(StaffAssignment.staff_id, StaffAssignment.centre_id, StaffAssignment.day)
    ).all()
    assert sorted(rows) == sorted(
        (sid, centres["R"].id, TARGET_DAY) for m in plan.moves for sid in m.staff_ids
    )
    # R: two counters plus three officers, 30-minute windows, ten minutes a citizen, 60%
    # bookable, over its sixteen windows. D1 lent two of four. The rest unchanged.
    assert before["R"] == WINDOWS * math.floor(2 * 3 * 0.6)
    assert after["R"] == math.floor(WINDOWS * 5 * 3 * 0.6) == 144
    assert after["D1"] == math.floor(WINDOWS * 2 * 3 * 0.6) == 57
    assert after["D2"] == before["D2"] and after["D3"] == before["D3"]
    assert {k: capacity(session, c) for k, c in centres.items()} == after
    # The rolling slot generation keeps what the plan opened (and what the donor lent).
    with transaction():
        generate_slots(session, now=now, days=8, policy=SLOTS)
    assert {k: capacity(session, c) for k, c in centres.items()} == after
    # Balancing now sees the officers there: nothing left to move.
    report, replan = plan_for(session, now)
    assert report.centres[(centres["R"].id, TARGET_DAY)].officers == 5
    assert report.centres[(centres["D1"].id, TARGET_DAY)].officers == 2
    assert replan.moves == ()


@both_databases
def test_accepting_refuses_staff_sent_elsewhere_since_and_writes_nothing(session, now, small_city):
    centres, _, staff = small_city
    _, plan = plan_for(session, now)
    make_assignment(staff["D2"][0], centres["D3"], TARGET_DAY)
    session.commit()
    before = capacity(session, centres["R"])

    with pytest.raises(Conflict) as err, transaction():
        accept_plan(session, plan, now=now, slot_policy=SLOTS)

    assert err.value.code == "staff_already_assigned"
    assert session.scalar(select(func.count()).select_from(StaffAssignment)) == 1
    assert capacity(session, centres["R"]) == before


@both_databases
def test_booked_seats_survive_a_donor_lending_officers(session, now, small_city):
    _, services, _ = small_city
    d1_slots = session.scalars(
        select(Slot)
        .where(Slot.service_id == services["D1"].id, Slot.day == TARGET_DAY)
        .order_by(Slot.starts_at)
    ).all()
    for slot in d1_slots[:4]:
        slot.booked = slot.capacity  # the first two hours fully booked
    session.commit()
    _, plan = plan_for(session, now)
    assert [m.officers for m in plan.moves if m.from_centre_code == "90011"] == [2]

    with transaction():
        accept_plan(session, plan, now=now, slot_policy=SLOTS)

    capacities = []
    for slot in d1_slots:
        session.refresh(slot)
        capacities.append(slot.capacity)
    # Two officers left: 3.6 citizens a window by running totals, except where booked.
    assert capacities[:4] == [7, 7, 7, 7]
    assert set(capacities[4:]) == {3, 4}
    assert all(slot.capacity >= slot.booked for slot in d1_slots)


# --- suggestions ----------------------------------------------------------------------------


@both_databases
def test_suggestions_steer_away_from_an_overloaded_centre(session, now):
    citizen = (10.7700, 106.7000)
    near = make_centre("90021", "Phường Gần", lat=10.7710, lon=106.7000)
    other = make_centre("90022", "Phường Bên", lat=10.7900, lon=106.7000)
    farther = make_centre("90023", "Phường Xa", lat=10.8100, lon=106.7000)
    proc = make_procedure("1.009001")
    for centre in (near, other, farther):
        make_service(centre, "A", counters=2)
    history_at(near.services[0], PAST_MONDAYS, 40)  # crowds of walk-ins on Mondays
    session.commit()
    with transaction():
        generate_slots(session, now=now, days=8, policy=SLOTS)
    session.commit()
    index.invalidate()
    entry = index.get(session, proc.code)

    ranked = centres_with_room(
        session, entry, TARGET_DAY, now=now, lat=citizen[0], lon=citizen[1], policy=POLICY
    )

    assert [r.centre_code for r in ranked] == ["90022", "90023", "90021"]
    assert [r.reason for r in ranked] == ["nearest", "room_nearby", "overloaded"]
    assert ranked[-1].overloaded and ranked[-1].remaining > 0
    assert ranked[0].distance_km < ranked[1].distance_km
    # Without the crowd the nearest centre comes first again.
    calm = BalancingPolicy(min_history_days=99, walk_ins_per_counter=5.0)
    plain = centres_with_room(
        session, entry, TARGET_DAY, now=now, lat=citizen[0], lon=citizen[1], policy=calm
    )
    assert [r.centre_code for r in plain] == ["90021", "90022", "90023"]


# --- settings and the day's history cache ---------------------------------------------------


def test_policy_comes_from_the_settings(app):
    app.config.update(BALANCING_TARGET_LEVEL=0.9, BALANCING_MAX_DISPATCH_KM=4.0)

    policy = BalancingPolicy.from_config(app.config)

    assert (policy.target.level, policy.target.minutes) == (0.9, 15)
    assert policy.max_dispatch_km == 4.0
    assert policy.overload_threshold == 0.9 and policy.walk_ins_per_counter == 15.0


def test_history_cache_reloads_on_a_new_day_only(session, now):
    centre = make_centre()
    a = make_service(centre, "A", counters=1)
    history_at(a, PAST_MONDAYS, 2)
    session.commit()
    cache = HistoryCache()

    first = cache.get(session, now=now, policy=POLICY)
    history_at(a, [date(2026, 12, 7)], 5)  # today's tickets: not history until tomorrow
    session.commit()
    same = cache.get(session, now=now + timedelta(hours=3), policy=POLICY)
    tomorrow = cache.get(session, now=now + timedelta(days=1), policy=POLICY)

    assert same is first
    assert sum(first.counts.values()) == 6
    assert sum(tomorrow.counts.values()) == 11
