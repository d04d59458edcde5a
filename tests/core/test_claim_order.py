"""The database claim of "call next" follows the pure queue policy exactly.

core.floor.tickets claims the head of a counter's queue in one SQL UPDATE for speed; the rules
live, readable and unit-tested, in core.floor.queue_policy.pick_next. Random floors (priority
mix, queue times with ties, transfers to this or another counter, two services ranked
differently, any priority streak) must give the same ticket both ways.
"""

from __future__ import annotations

import random
from datetime import timedelta

from sqlalchemy import select

from core.common.timeutil import local_day
from core.floor import queue_policy, tickets
from core.models import Counter, CounterService, PriorityClass, Ticket, TicketSource, TicketStatus
from tests.conftest import both_databases
from tests.factories import make_centre, make_service

SCENARIOS = 40


def _waiting(session, centre_id):
    rows = session.execute(
        select(
            Ticket.id,
            Ticket.service_id,
            Ticket.priority,
            Ticket.queue_time,
            Ticket.target_counter_id,
        ).where(Ticket.centre_id == centre_id, Ticket.status == TicketStatus.WAITING)
    ).all()
    return [
        queue_policy.Waiting(
            r.id, r.service_id, r.priority != PriorityClass.NONE, r.queue_time, r.target_counter_id
        )
        for r in rows
    ]


@both_databases
def test_sql_claim_agrees_with_pick_next(app, session, now):
    centre = make_centre()
    service_a = make_service(centre, "A", counters=1)
    service_b = make_service(centre, "B", counters=1, name="Đất đai")
    me, other = centre.counters
    # This counter serves B first, then A (the other counter serves only B).
    session.query(CounterService).filter_by(counter_id=me.id).update({"rank": 1})
    session.add(CounterService(counter_id=me.id, service_id=service_b.id, rank=0))
    session.commit()
    ranks = {service_b.id: 0, service_a.id: 1}
    rng = random.Random(20261207)
    day = local_day(now)
    for scenario in range(SCENARIOS):
        for n in range(rng.randint(0, 12)):
            service = rng.choice([service_a, service_b])
            session.add(
                Ticket(
                    public_id=f"s{scenario}n{n}",
                    centre_id=centre.id,
                    service_id=service.id,
                    day=day,
                    number=scenario * 100 + n + 1,
                    label=f"{service.prefix}{n:03d}",
                    source=TicketSource.WALK_IN,
                    priority=rng.choice([PriorityClass.NONE] * 3 + [PriorityClass.ELDERLY]),
                    status=TicketStatus.WAITING,
                    # Few distinct times, so ties are common and the id decides.
                    queue_time=now + timedelta(minutes=rng.randint(0, 4)),
                    issued_at=now,
                    call_count=0,
                    target_counter_id=rng.choice([None] * 4 + [me.id, other.id]),
                )
            )
        streak = rng.randint(0, 3)
        interleave = rng.randint(0, 2)
        session.get(Counter, me.id).priority_streak = streak
        session.flush()
        expected = queue_policy.pick_next(
            _waiting(session, centre.id),
            counter_id=me.id,
            service_rank=ranks,
            priority_streak=streak,
            interleave=interleave,
        )
        claimed = tickets._claim_next(
            session,
            session.get(Counter, me.id),
            day,
            now,
            regular_turn=interleave > 0 and streak >= interleave,
        )
        assert (claimed.id if claimed else None) == (expected.id if expected else None), (
            f"scenario {scenario}: streak {streak}, interleave {interleave}"
        )
        session.rollback()
        session.query(Ticket).delete()
        session.commit()
