"""Booking rules under real concurrency: 60 threads released together by a barrier.

Each thread has its own app context, hence its own session and database connection, and
runs one write unit of work (`core.common.db.transaction()`), as a request would. On SQLite
(a file shared by all threads) writers are serialised by the write lock; on PostgreSQL
they really overlap, and the conditional seat UPDATE and row locks must hold the line.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from core.booking import appointments as booking
from core.catalogue.search import index
from core.common.errors import DomainError
from core.models import Appointment, AppointmentStatus, Slot
from tests.conftest import both_databases
from tests.factories import PHONE, cccd, make_centre, make_procedure, make_service, make_slot
from web.db import transaction
from web.extensions import db

THREADS = 60
RULES = booking.BookingRules()
KEY = b"concurrency-test-key"
SECRET = "concurrency-test-secret"


@pytest.fixture
def app_config(now) -> dict:
    # Every racing thread holds its own connection at the start line, on SQLite too (whose
    # default pool of 5 + 10 would leave most threads waiting for a connection, not racing).
    pool = {"pool_size": THREADS + 5, "max_overflow": 5, "pool_timeout": 60}
    return {
        "SQL_POOL_SIZE": THREADS + 5,
        "SQLALCHEMY_ENGINE_OPTIONS": pool,
        "CLOCK": lambda: now,  # the API reads the injected clock, as the core calls do
    }


def race(app: Flask, actions: list[Callable[[Session], object]]) -> list[object]:
    """Run each action in its own thread, app context and transaction, all released at once.

    Returns each action's result, or the exception it raised: the test judges every outcome.
    """
    barrier = threading.Barrier(len(actions))

    def run(action: Callable[[Session], object]) -> object:
        with app.app_context():
            try:
                # Connect before the start line so connection set-up does not stagger the race.
                db.session.execute(text("SELECT 1"))
                barrier.wait(timeout=60)
                with transaction() as session:
                    return action(session)
            except Exception as exc:
                return exc
            finally:
                db.session.remove()

    with ThreadPoolExecutor(max_workers=len(actions)) as pool:
        return list(pool.map(run, actions))


def outcomes(results: list[object]) -> Counter[str]:
    """'ok' for a success, the domain error's code for a refusal, the repr of anything else."""
    return Counter(
        "ok" if not isinstance(r, Exception) else r.code if isinstance(r, DomainError) else repr(r)
        for r in results
    )


def applicant(n: int, now) -> booking.Applicant:
    return booking.validate_applicant(
        full_name="Trần Thị Bình",
        phone=PHONE,
        citizen_id=cccd(n),
        email=None,
        consent=True,
        now=now,
        key=KEY,
    )


def book_action(slot_id: int, code: str, who: booking.Applicant, now, rules=RULES):
    def action(session: Session) -> booking.Booked:
        return booking.book(
            session,
            slot_id=slot_id,
            procedure_code=code,
            applicant=who,
            now=now,
            rules=rules,
            secret=SECRET,
        )

    return action


def slot_state(session: Session) -> dict[int, tuple[int, int, int]]:
    """slot id → (capacity, booked, appointments holding a seat there), read afresh."""
    session.rollback()
    holding = (
        select(func.count())
        .where(Appointment.slot_id == Slot.id, Appointment.status == AppointmentStatus.BOOKED)
        .scalar_subquery()
    )
    rows = session.execute(select(Slot.id, Slot.capacity, Slot.booked, holding)).all()
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def assert_consistent(session: Session) -> dict[int, tuple[int, int, int]]:
    state = slot_state(session)
    for slot_id, (capacity, booked, holding) in state.items():
        assert 0 <= booked <= capacity, f"slot {slot_id}: booked {booked} of {capacity}"
        assert booked == holding, f"slot {slot_id}: booked {booked} but {holding} appointments"
    return state


@pytest.fixture
def place(session, now):
    """A centre with one service taking one procedure; the catalogue index warmed."""
    centre = make_centre()
    proc = make_procedure(code="1.000100")
    service = make_service(centre, counters=3)
    session.commit()
    index.get(session, proc.code)
    return proc, service


def seed_bookings(session, proc, slots: list[Slot], now, per_slot: int, first: int = 0):
    """Book `per_slot` distinct citizens into each slot, one transaction each."""
    made = []
    n = first
    for slot in slots:
        for _ in range(per_slot):
            with transaction():
                made.append(book_action(slot.id, proc.code, applicant(n, now), now)(session))
            n += 1
    return made


@both_databases
def test_sixty_threads_fill_the_same_slots_exactly(app, session, now, place):
    proc, service = place
    capacities = (4, 5, 6)
    slots = [
        make_slot(service, now + timedelta(hours=2, minutes=30 * i), capacity=c)
        for i, c in enumerate(capacities)
    ]
    session.commit()
    ids = [s.id for s in slots]

    results = race(
        app,
        [book_action(ids[i % 3], proc.code, applicant(i, now), now) for i in range(THREADS)],
    )

    total = sum(capacities)
    assert outcomes(results) == {"ok": total, "slot_full": THREADS - total}
    state = assert_consistent(session)
    assert [state[i][1] for i in ids] == list(capacities)  # booked == capacity, exactly
    assert session.scalar(select(func.count()).select_from(Appointment)) == total
    codes = {r.code for r in results if isinstance(r, booking.Booked)}
    assert len(codes) == total  # every winner got its own booking code


@both_databases
def test_database_refuses_an_overbooked_slot(session, now, place):
    """The CHECK constraint is the second line of defence behind the conditional UPDATE."""
    _, service = place
    slot = make_slot(service, now + timedelta(hours=2), capacity=2, booked=2)
    session.commit()
    with pytest.raises(sa.exc.IntegrityError):
        session.execute(update(Slot).where(Slot.id == slot.id).values(booked=Slot.booked + 1))
        session.flush()
    session.rollback()
    assert session.get(Slot, slot.id).booked == 2


@both_databases
def test_concurrent_reschedules_into_one_slot_move_exactly_its_capacity(app, session, now, place):
    proc, service = place
    sources = [
        make_slot(service, now + timedelta(hours=2, minutes=30 * i), capacity=10) for i in range(6)
    ]
    target = make_slot(service, now + timedelta(days=1, hours=2), capacity=7)
    session.commit()
    target_id = target.id
    made = seed_bookings(session, proc, sources, now, per_slot=10)
    assert len(made) == THREADS

    def move(appointment_id: int):
        def action(session: Session) -> None:
            appointment = session.get(Appointment, appointment_id)
            booking.reschedule(session, appointment, slot_id=target_id, now=now, rules=RULES)

        return action

    results = race(app, [move(b.appointment_id) for b in made])

    assert outcomes(results) == {"ok": 7, "slot_full": THREADS - 7}
    state = assert_consistent(session)
    assert state[target_id][1] == 7
    # Every seat freed at a source is one taken at the target: nothing lost, nothing doubled.
    assert sum(state[s.id][1] for s in sources) == THREADS - 7
    assert session.scalar(select(func.count()).select_from(Appointment)) == THREADS


@both_databases
def test_concurrent_cancels_of_one_appointment_free_its_seat_once(app, session, now, place):
    proc, service = place
    slot = make_slot(service, now + timedelta(hours=2), capacity=5)
    session.commit()
    made = seed_bookings(session, proc, [slot], now, per_slot=3)
    target = made[0]

    def cancel(session: Session) -> None:
        appointment = booking.get_owned(session, target.code, target.manage_token)
        booking.cancel(session, appointment, now=now)

    results = race(app, [cancel] * THREADS)

    assert outcomes(results) == {"ok": 1, "appointment_not_active": THREADS - 1}
    state = assert_consistent(session)
    assert state[slot.id][1] == 2  # three booked, one cancelled: freed exactly once
    status = session.scalar(select(Appointment.status).where(Appointment.code == target.code))
    assert status is AppointmentStatus.CANCELLED


@both_databases
def test_one_citizen_racing_many_bookings_keeps_the_per_citizen_limits(app, session, now, place):
    proc, service = place
    rules = booking.BookingRules(max_active=3, max_per_procedure_day=1)
    days = 6
    slots = [make_slot(service, now + timedelta(days=d, hours=2), capacity=20) for d in range(days)]
    session.commit()
    ids = [s.id for s in slots]
    same_person = applicant(7, now)

    results = race(
        app,
        [book_action(ids[i % days], proc.code, same_person, now, rules) for i in range(THREADS)],
    )

    counted = outcomes(results)
    assert counted["ok"] == rules.max_active
    refusals = {"too_many_active", "one_per_procedure_day"}
    assert sum(n for code, n in counted.items() if code in refusals) == THREADS - rules.max_active
    state = assert_consistent(session)
    booked_days = [state[i][1] for i in ids]
    assert sum(booked_days) == rules.max_active
    assert max(booked_days) == 1  # never two on one day for one procedure


@both_databases
def test_sixty_clients_through_the_api_get_201_or_409_and_never_overbook(app, session, now, place):
    proc, service = place
    capacities = (3, 4, 5)
    slots = [
        make_slot(service, now + timedelta(hours=3, minutes=30 * i), capacity=c)
        for i, c in enumerate(capacities)
    ]
    session.commit()
    ids, code = [s.id for s in slots], proc.code
    barrier = threading.Barrier(THREADS)

    def post(i: int):
        client = app.test_client()
        client.get("/health")  # a pooled connection ready before the start line
        barrier.wait(timeout=60)
        return client.post(
            "/api/v1/appointments",
            json={
                "slot_id": ids[i % len(ids)],
                "procedure": code,
                "full_name": "Lê Văn Cường",
                "phone": PHONE,
                "citizen_id": cccd(1000 + i),
                "consent": True,
            },
        )

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        responses = list(pool.map(post, range(THREADS)))

    total = sum(capacities)
    assert Counter(r.status_code for r in responses) == {201: total, 409: THREADS - total}
    assert {r.get_json()["code"] for r in responses if r.status_code == 409} == {"slot_full"}
    assert all(r.mimetype == "application/problem+json" for r in responses if r.status_code == 409)
    state = assert_consistent(session)
    assert [state[i][1] for i in ids] == list(capacities)
    assert session.scalar(select(func.count()).select_from(Appointment)) == total


@both_databases
@pytest.mark.parametrize("per_day", [1, 5])
def test_one_request_repeated_at_once_with_one_key_books_once(app, session, now, place, per_day):
    """A double tap many times over: the same body and Idempotency-Key from one citizen, all at
    once. One booking; every other answer is that booking again (200), whether the per-day
    limit (per_day=1) or the key itself (per_day=5) stops the repeats, and never a 500."""
    app.config.update(MAX_PER_PROCEDURE_DAY=per_day, MAX_ACTIVE_APPOINTMENTS=10)
    proc, service = place
    slot = make_slot(service, now + timedelta(hours=2), capacity=50)
    session.commit()
    slot_id = slot.id
    session.rollback()  # no read snapshot held across the race (SQLite would keep it)
    repeats = 20
    barrier = threading.Barrier(repeats)
    body = {
        "slot_id": slot_id,
        "procedure": proc.code,
        "full_name": "Lê Văn Cường",
        "phone": PHONE,
        "citizen_id": cccd(77),
        "consent": True,
    }

    def post(_i: int):
        client = app.test_client()
        client.get("/health")
        barrier.wait(timeout=60)
        return client.post(
            "/api/v1/appointments", json=body, headers={"Idempotency-Key": "tap-4242"}
        )

    with ThreadPoolExecutor(max_workers=repeats) as pool:
        responses = list(pool.map(post, range(repeats)))

    assert Counter(r.status_code for r in responses) == {201: 1, 200: repeats - 1}
    assert len({r.get_json()["code"] for r in responses}) == 1
    assert assert_consistent(session)[slot_id][1] == 1
    assert session.scalar(select(func.count()).select_from(Appointment)) == 1


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_a_booking_that_waited_for_the_citizens_lock_sees_their_earlier_booking(
    app, session, now, place, monkeypatch
):
    """PostgreSQL: the booking statement's own snapshot is taken before it waits for the
    citizen's lock, so it could not see a booking committed meanwhile; the limits are counted
    inside xephang_may_book, with a snapshot taken after the lock was granted. The second
    booking refuses, and the read that explains the refusal names the limit."""
    proc, service = place
    first_slot = make_slot(service, now + timedelta(hours=2), capacity=5)
    second_slot = make_slot(service, now + timedelta(hours=3), capacity=5)
    session.commit()
    person = applicant(11, now)
    seen: list[tuple[str, int]] = []
    check = booking._check_limits

    def spy(row, when, rules):
        seen.append((threading.current_thread().name, row.same_day_count))
        return check(row, when, rules)

    monkeypatch.setattr(booking, "_check_limits", spy)
    holding, waiting = threading.Event(), threading.Event()
    result: list[object] = []

    def first() -> None:
        with app.app_context():
            try:
                with transaction() as s:
                    book_action(first_slot.id, proc.code, person, now)(s)
                    holding.set()
                    assert waiting.wait(timeout=30)  # commit only once the second one waits
            finally:
                db.session.remove()

    def second() -> None:
        with app.app_context():
            try:
                assert holding.wait(timeout=30)
                with transaction() as s:
                    result.append(book_action(second_slot.id, proc.code, person, now)(s))
            except Exception as exc:
                result.append(exc)
            finally:
                db.session.remove()

    threads = [
        threading.Thread(target=first, name="first"),
        threading.Thread(target=second, name="second"),
    ]
    for t in threads:
        t.start()
    engine = db.engine
    for _ in range(300):  # the second booking blocked on the citizen's advisory lock
        with engine.connect() as conn:
            blocked = conn.scalar(
                text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
            )
        if blocked:
            break
        threading.Event().wait(0.05)
    assert blocked, "the second booking never waited for the citizen's lock"
    waiting.set()
    for t in threads:
        t.join(timeout=30)

    [outcome] = result
    assert isinstance(outcome, DomainError) and outcome.code == "one_per_procedure_day"
    # Nothing was read before the statement: the only standing read is the explanation.
    assert [count for name, count in seen if name == "second"] == [1]
    state = assert_consistent(session)
    assert (state[first_slot.id][1], state[second_slot.id][1]) == (1, 0)


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_a_booking_takes_one_statement_on_postgresql(app, session, now, place):
    """The seat, the appointment and the citizen's lock and limits: one statement."""
    proc, service = place
    slot = make_slot(service, now + timedelta(hours=2), capacity=2)
    session.commit()
    book_here = book_action(slot.id, proc.code, applicant(21, now), now)
    statements: list[str] = []

    def seen(_conn, _cursor, statement, *_args) -> None:
        statements.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", seen)
    try:
        with transaction(single_write=True) as s:
            booked = book_here(s)
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", seen)
    assert booked.code and not booked.replayed
    assert booked.slot is not None and booked.slot.starts_at == slot.starts_at
    assert len(statements) == 1
    assert statements[0].lstrip().startswith("WITH seat AS")
    assert f"{booking.MAY_BOOK}(" in statements[0]
    assert sum(booked for _cap, booked, _held in assert_consistent(session).values()) == 1
