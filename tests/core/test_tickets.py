"""The centre floor in the domain core: issuing, check-in, merged queue, calling."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from core.common.errors import Conflict
from core.floor import tickets
from core.models import (
    Appointment,
    AppointmentStatus,
    Counter,
    PriorityClass,
    Ticket,
    TicketEvent,
    TicketStatus,
)
from tests.conftest import both_databases
from tests.factories import make_centre, make_procedure, make_service, make_slot
from web.db import transaction
from web.extensions import db

RULES = tickets.FloorRules()


@pytest.fixture
def floor(session):
    centre = make_centre()
    proc = make_procedure(code="1.000001")
    service_a = make_service(centre, "A", counters=2)
    service_b = make_service(centre, "B", counters=1, name="Đất đai")
    for counter in centre.counters:
        counter.is_open = True
    session.commit()
    return centre, proc, service_a, service_b


def walk_in(centre, now, **kw):
    with transaction():
        ticket = tickets.issue_walk_in(db.session, centre, now=now, **kw)
    return ticket


def call(counter, now):
    with transaction():
        ticket = tickets.call_next(db.session, db.session.merge(counter), now=now, rules=RULES)
    return ticket


def book_appointment(session, centre, service, proc, starts_at):
    slot = make_slot(service, starts_at)
    appt = Appointment(
        code=f"C{slot.id:07d}",
        slot_id=slot.id,
        centre_id=centre.id,
        service_id=service.id,
        procedure_id=proc.id,
        starts_at=slot.starts_at,
        ends_at=slot.ends_at,
        status=AppointmentStatus.BOOKED,
        full_name="Trần Thị Bình",
        phone="0912345678",
        citizen_hash="h" * 64,
        manage_token_hash="t" * 64,
        qr_nonce="n",
        consent_at=starts_at,
        created_at=starts_at,
    )
    session.add(appt)
    session.commit()
    return appt


def test_labels_per_service_per_day(floor, now):
    centre, _, service_a, service_b = floor
    labels = [walk_in(centre, now, service=service_a).label for _ in range(3)]
    labels.append(walk_in(centre, now, service=service_b).label)
    labels.append(walk_in(centre, now + timedelta(days=1), service=service_a).label)
    assert labels == ["A001", "A002", "A003", "B001", "A001"]


def test_every_change_is_an_event(floor, now):
    centre, proc, *_ = floor
    ticket = walk_in(centre, now, procedure=proc)
    counter = centre.counters[0]
    call(counter, now)
    with transaction():
        t = db.session.get(Ticket, ticket.id)
        tickets.start(db.session, t, now=now)
        tickets.complete(db.session, t, now=now + timedelta(minutes=6))
    kinds = [e.kind for e in db.session.query(TicketEvent).order_by(TicketEvent.id)]
    assert kinds == ["issued", "called", "started", "completed"]


def test_merged_queue_order(floor, now, session):
    centre, proc, service_a, _ = floor
    # 08:00 walk-in; appointment at 08:30 checked in at 08:00 (early) queues at 08:30;
    # 08:10 walk-in goes before it; a priority ticket at 08:20 goes first of all.
    first = walk_in(centre, now, service=service_a)
    appt = book_appointment(session, centre, service_a, proc, now + timedelta(minutes=30))
    with transaction():
        appt_ticket, created = tickets.check_in(
            session, session.merge(appt), centre, now=now, rules=RULES
        )
    assert created and appt_ticket.queue_time == appt.starts_at
    second = walk_in(centre, now + timedelta(minutes=10), service=service_a)
    prio = walk_in(
        centre, now + timedelta(minutes=20), service=service_a, priority=PriorityClass.ELDERLY
    )
    counter = centre.counters[0]
    order = []
    for minute in range(4):
        t = call(counter, now + timedelta(minutes=40 + minute))
        order.append(t.id)
        with transaction():
            t = session.get(Ticket, t.id)
            tickets.start(session, t, now=now)
    assert order == [prio.id, first.id, second.id, appt_ticket.id]


def test_late_appointment_queues_as_walk_in(floor, now, session):
    centre, proc, service_a, _ = floor
    appt = book_appointment(session, centre, service_a, proc, now)
    early_walk_in = walk_in(centre, now + timedelta(minutes=5), service=service_a)
    late = now + timedelta(minutes=30)
    with transaction():
        ticket, _ = tickets.check_in(session, session.merge(appt), centre, now=late, rules=RULES)
    assert ticket.queue_time == late
    assert call(centre.counters[0], late).id == early_walk_in.id


def test_transfer_keeps_queue_time(floor, now, session):
    centre, proc, _service_a, service_b = floor
    ticket = walk_in(centre, now, procedure=proc)
    later_b = walk_in(centre, now + timedelta(minutes=5), service=service_b)
    counter_a = centre.counters[0]
    call(counter_a, now + timedelta(minutes=10))
    with transaction():
        moved = tickets.transfer(
            session,
            session.get(Ticket, ticket.id),
            now=now + timedelta(minutes=11),
            to_service=session.merge(service_b),
        )
    assert moved.queue_time == ticket.queue_time and moved.label == "B002"
    assert session.get(Ticket, ticket.id).status is TicketStatus.TRANSFERRED
    counter_b = next(c for c in centre.counters if c.service_links[0].service_id == service_b.id)
    assert call(counter_b, now + timedelta(minutes=12)).id == moved.id
    assert later_b.status is TicketStatus.WAITING


def test_transfer_to_a_counter_is_called_only_there(floor, now, session):
    centre, _proc, service_a, _ = floor
    ticket = walk_in(centre, now, service=service_a)
    c1, c2 = centre.counters[0], centre.counters[1]
    call(c1, now)
    with transaction():
        moved = tickets.transfer(
            session, session.get(Ticket, ticket.id), now=now, to_counter=session.merge(c2)
        )
    assert moved.target_counter_id == c2.id
    assert call(c1, now + timedelta(minutes=1)) is None
    assert call(c2, now + timedelta(minutes=1)).id == moved.id


def test_closing_a_counter_releases_tickets_transferred_to_it(floor, now, session):
    from core.floor import counters
    from tests.factories import make_staff

    centre, _proc, service_a, _ = floor
    ticket = walk_in(centre, now, service=service_a)
    c1, c2 = centre.counters[0], centre.counters[1]
    call(c1, now)
    with transaction():
        moved = tickets.transfer(
            session, session.get(Ticket, ticket.id), now=now, to_counter=session.merge(c2)
        )
    officer = make_staff(centre)
    session.commit()
    with transaction():
        counters.close_counter(session, session.merge(c2), officer, now=now)
    assert session.get(Ticket, moved.id).target_counter_id is None
    assert [e.kind for e in session.get(Ticket, moved.id).events][-1] == "released"
    # Back in its line, keeping its queue time: the other counter calls it.
    assert call(c1, now + timedelta(minutes=1)).id == moved.id


def test_recall_then_automatic_no_show(floor, now, session):
    centre, proc, *_ = floor
    ticket = walk_in(centre, now, procedure=proc)
    counter = centre.counters[0]
    call(counter, now)
    for _ in range(RULES.max_calls - 1):
        with transaction():
            tickets.recall(session, session.merge(counter), now=now, rules=RULES)
    assert session.get(Ticket, ticket.id).call_count == RULES.max_calls
    with transaction():
        tickets.recall(session, session.merge(counter), now=now, rules=RULES)
    assert session.get(Ticket, ticket.id).status is TicketStatus.NO_SHOW


def test_counter_busy_and_serving_is_completed_by_next_call(floor, now, session):
    centre, proc, *_ = floor
    first = walk_in(centre, now, procedure=proc)
    walk_in(centre, now, procedure=proc)
    counter = centre.counters[0]
    call(counter, now)
    with pytest.raises(Conflict) as busy:
        call(counter, now)
    assert busy.value.code == "counter_busy"
    with transaction():
        tickets.start(session, session.get(Ticket, first.id), now=now)
    call(counter, now + timedelta(minutes=5))
    assert session.get(Ticket, first.id).status is TicketStatus.DONE


def test_wrong_state_is_refused(floor, now, session):
    centre, proc, *_ = floor
    ticket = walk_in(centre, now, procedure=proc)
    with pytest.raises(Conflict) as err, transaction():
        tickets.complete(session, session.get(Ticket, ticket.id), now=now)
    assert err.value.code == "ticket_wrong_state"
    assert session.get(Ticket, ticket.id).status is TicketStatus.WAITING


def test_check_in_refusals(floor, now, session):
    centre, proc, service_a, _ = floor
    other_centre = make_centre(name="Phường Sài Gòn", address="2 Nguyễn Huệ")
    session.commit()

    def refuse(appt, when, where=centre):
        with pytest.raises(Conflict) as err, transaction():
            tickets.check_in(
                session, session.merge(appt), session.merge(where), now=when, rules=RULES
            )
        return err.value

    appt = book_appointment(session, centre, service_a, proc, now + timedelta(hours=3))
    assert refuse(appt, now).code == "too_early"
    assert refuse(appt, now + timedelta(hours=6)).code == "too_late"
    assert refuse(appt, now - timedelta(days=1)).code == "appointment_other_day"
    err = refuse(appt, now + timedelta(hours=3), other_centre)
    assert err.code == "appointment_other_centre" and err.details["centre_name"] == centre.name
    with transaction():
        first, created = tickets.check_in(
            session, session.merge(appt), centre, now=now + timedelta(hours=3), rules=RULES
        )
    with transaction():
        again, created_again = tickets.check_in(
            session, session.merge(appt), centre, now=now + timedelta(hours=3), rules=RULES
        )
    assert created and not created_again and first.id == again.id
    assert session.query(Ticket).count() == 1


def test_closed_centre_issues_nothing(floor, now):
    centre, proc, *_ = floor
    with pytest.raises(Conflict) as err:
        walk_in(centre, now.replace(hour=12), procedure=proc)  # 19:00 local
    assert err.value.code == "centre_closed_now"


@both_databases
def test_fifty_kiosks_get_unique_gap_free_labels(app, floor, now):
    centre, proc, _service_a, _ = floor
    centre_id = centre.id
    barrier = threading.Barrier(50)
    labels, errors = [], []

    def kiosk():
        with app.app_context():
            try:
                barrier.wait()
                with transaction():
                    c = db.session.get(type(centre), centre_id)
                    t = tickets.issue_walk_in(
                        db.session, c, now=now, procedure=db.session.merge(proc)
                    )
                    labels.append(t.label)
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(repr(exc))

    threads = [threading.Thread(target=kiosk) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(labels) == [f"A{n:03d}" for n in range(1, 51)]


@both_databases
def test_twenty_counters_never_share_a_ticket(app, session, now):
    centre = make_centre()
    service = make_service(centre, "A", counters=20)
    for counter in centre.counters:
        counter.is_open = True
    session.commit()
    total = 300
    for i in range(total):
        walk_in(
            centre,
            now + timedelta(seconds=i),
            service=service,
            priority=PriorityClass.ELDERLY if i % 10 == 0 else PriorityClass.NONE,
        )
    counter_ids = [c.id for c in centre.counters]
    barrier = threading.Barrier(len(counter_ids))
    served: dict[int, list[int]] = {cid: [] for cid in counter_ids}
    errors = []

    def officer(counter_id):
        with app.app_context():
            try:
                barrier.wait()
                while True:
                    with transaction():
                        counter = db.session.get(Counter, counter_id)
                        ticket = tickets.call_next(
                            db.session, counter, now=now + timedelta(hours=1), rules=RULES
                        )
                        if ticket is None:
                            return
                        tickets.start(db.session, ticket, now=now + timedelta(hours=1))
                        served[counter_id].append(ticket.id)
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(repr(exc))

    threads = [threading.Thread(target=officer, args=(cid,)) for cid in counter_ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    all_served = [tid for ids in served.values() for tid in ids]
    assert len(all_served) == len(set(all_served)) == total  # nobody twice, nobody skipped
    session.rollback()  # end this thread's read snapshot before counting
    assert session.query(Ticket).filter(Ticket.status == TicketStatus.WAITING).count() == 0
