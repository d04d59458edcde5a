"""The day itself: a discrete-event loop on the injected clock, every action the engine's
own, in its own transaction."""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.booking.slots import counter_weights
from core.common.db import transaction
from core.common.errors import Conflict
from core.common.timeutil import local_to_utc
from core.floor import counters, tickets
from core.floor import kiosk as kiosk_lookup
from core.models import (
    Centre,
    Counter,
    Procedure,
    Role,
    Service,
    Staff,
    StaffAssignment,
    Ticket,
    TicketStatus,
)
from core.operations.simulation.demand import Citizen, Demand, open_centres
from core.places.calendar import opening_periods


class SimClock:
    """The injected clock: callable like `app.config["CLOCK"]` wants, moved by the driver."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


@dataclass(eq=False)  # compared and hashed by identity: one per counter
class _Desk:
    """A counter with its officer for the day, as the driver sees it."""

    counter_id: int
    centre_id: int
    number: int
    staff_id: int
    ranks: dict[int, int]  # service id → the counter's preference rank
    period_end: datetime | None = None
    state: str = "closed"  # closed, idle or busy
    ticket: str | None = None  # public id of the ticket called or served here
    citizen: Citizen | None = None


@dataclass
class RunStats:
    """What the driver itself counted: tickets it was handed, people the kiosk turned away
    (after closing), officers at work per centre, and engine actions taken."""

    issued: int = 0
    turned_away: int = 0
    officers: dict[int, int] = field(default_factory=dict)
    actions: int = 0
    events: int = 0


class DayRun:
    """The day at a set of centres: citizens arrive and check in, officers open their
    counters at opening time and call, recall, start and complete until closing."""

    def __init__(
        self,
        session: Session,
        clock: SimClock,
        demand: Demand,
        *,
        rules: tickets.FloorRules,
        secret: str,
        centre_ids: Iterable[int] | None = None,
    ) -> None:
        self.session = session
        self.clock = clock
        self.demand = demand
        self.rules = rules
        self.secret = secret
        self.centre_ids = sorted(demand.factors if centre_ids is None else centre_ids)
        self.stats = RunStats()
        self._heap: list[tuple[datetime, int, Callable[..., None], Any]] = []
        self._seq = 0
        self._idle: dict[int, set[_Desk]] = defaultdict(set)
        self._desks: dict[int, list[_Desk]] = defaultdict(list)
        self._citizen_of: dict[int, Citizen] = {}
        self._periods: dict[int, list[tuple[datetime, datetime]]] = {}

    def run(self) -> RunStats:
        """Play the whole day; returns what the driver counted."""
        day = self.demand.day
        centres = open_centres(self.session, day, self.centre_ids)
        for centre in centres:
            self._periods[centre.id] = [
                (local_to_utc(day, a), local_to_utc(day, b))
                for a, b in opening_periods(centre, day)
            ]
        self._seat(centres)
        self.session.rollback()
        for centre_id, periods in self._periods.items():
            for start, end in periods:
                self._at(start, self._open, (centre_id, end))
                self._at(end, self._close_period, centre_id)
        wanted = set(self._periods)
        for citizen in self.demand.citizens:
            if citizen.centre_id not in wanted:
                continue
            seat = self.demand.seats.get(citizen.number)
            if seat is None:
                self._at(citizen.arrives, self._walk_in, citizen)
            elif citizen.offset_minutes is not None:
                at = seat.starts_at + timedelta(minutes=citizen.offset_minutes)
                self._at(at.replace(microsecond=0), self._check_in, citizen)
        while self._heap:
            at, _, action, arg = heapq.heappop(self._heap)
            self.clock.now = at
            self.stats.events += 1
            action(arg)
        return self.stats

    # -- plumbing --

    def _at(self, at: datetime, action: Callable[..., None], arg: Any) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (at, self._seq, action, arg))

    def _after(self, minutes: float, action: Callable[..., None], arg: Any) -> None:
        self._at(self.clock.now + timedelta(seconds=round(minutes * 60)), action, arg)

    def _act(self, fn: Callable[[Session], Any]) -> Any:
        """One engine action in its own transaction, as an API handler runs it."""
        self.stats.actions += 1
        with transaction(self.session) as session:
            return fn(session)

    def _staff(self, session: Session, desk: _Desk) -> Staff:
        staff = session.get(Staff, desk.staff_id)
        assert staff is not None
        return staff

    # -- who works where --

    def _seat(self, centres: list[Centre]) -> None:
        """Officers working at each centre today take its counters: its own officers not
        lent elsewhere, then those sent there; a centre short of officers leaves the
        counters of its best-covered lines closed."""
        ids = [c.id for c in centres]
        day = self.demand.day
        sent = dict(
            self.session.execute(
                select(StaffAssignment.staff_id, StaffAssignment.centre_id).where(
                    StaffAssignment.day == day
                )
            ).all()
        )
        officers: dict[int, list[int]] = defaultdict(list)
        home = self.session.execute(
            select(Staff.id, Staff.centre_id)
            .where(Staff.role == Role.OFFICER, Staff.active.is_(True), Staff.centre_id.in_(ids))
            .where(Staff.in_mobile_pool.is_(False))
            .order_by(Staff.id)
        ).all()
        for staff_id, centre_id in home:
            if sent.get(staff_id, centre_id) == centre_id:
                officers[centre_id].append(staff_id)
        home_of = dict(home)
        for staff_id, centre_id in sorted(sent.items()):
            if centre_id in self._periods and home_of.get(staff_id) != centre_id:
                officers[centre_id].append(staff_id)
        for centre in centres:
            ordered = _opening_order(centre)
            for counter, staff_id in zip(ordered, officers[centre.id], strict=False):
                ranks = {link.service_id: link.rank for link in counter.service_links}
                self._desks[centre.id].append(
                    _Desk(counter.id, centre.id, counter.number, staff_id, ranks)
                )
            self.stats.officers[centre.id] = len(self._desks[centre.id])

    # -- counters --

    def _open(self, arg: tuple[int, datetime]) -> None:
        centre_id, end = arg
        day = self.demand.day
        for desk in self._desks[centre_id]:
            if desk.state != "closed":  # still busy from the last period: carries on
                desk.period_end = end
                continue

            def open_(session: Session, desk: _Desk = desk) -> None:
                staff = self._staff(session, desk)
                counter = counters.counter_for(session, desk.counter_id, staff, day=day)
                counters.open_counter(session, counter, staff, now=self.clock.now)

            self._act(open_)
            desk.period_end = end
            desk.state = "busy"
            self._at(self.clock.now, self._call, desk)

    def _close_period(self, centre_id: int) -> None:
        for desk in sorted(self._idle[centre_id], key=lambda d: d.number):
            self._close(desk)
        self._idle[centre_id].clear()

    def _close(self, desk: _Desk) -> None:
        def close(session: Session) -> None:
            staff = self._staff(session, desk)
            counter = counters.counter_for(session, desk.counter_id, staff, day=self.demand.day)
            counters.close_counter(session, counter, staff, now=self.clock.now)

        self._act(close)
        desk.state, desk.ticket, desk.citizen = "closed", None, None

    def _wake(self, centre_id: int, service_id: int) -> None:
        """A new ticket: the idle counter preferring its line calls."""
        idle = [d for d in self._idle[centre_id] if service_id in d.ranks]
        if not idle:
            return
        desk = min(idle, key=lambda d: (d.ranks[service_id], d.number))
        self._idle[centre_id].discard(desk)
        desk.state = "busy"
        self._at(self.clock.now, self._call, desk)

    def _call(self, desk: _Desk) -> None:
        """Call next (which completes the citizen served here, if any); past the end of
        opening hours, close the counter instead."""
        assert desk.period_end is not None
        if self.clock.now >= desk.period_end:
            self._close(desk)
            return

        def call(session: Session) -> tuple[int, str, datetime] | None:
            staff = self._staff(session, desk)
            counter = counters.held_counter(
                session, desk.counter_id, staff, day=self.demand.day, lock=True
            )
            ticket = tickets.call_next(
                session, counter, now=self.clock.now, rules=self.rules, staff_id=staff.id
            )
            return None if ticket is None else (ticket.id, ticket.public_id, ticket.issued_at)

        called = self._act(call)
        if called is None:
            desk.state, desk.ticket, desk.citizen = "idle", None, None
            self._idle[desk.centre_id].add(desk)
            return
        ticket_id, public_id, issued_at = called
        citizen = self._citizen_of[ticket_id]
        desk.ticket, desk.citizen = public_id, citizen
        waited = (self.clock.now - issued_at).total_seconds() / 60
        if citizen.absent or waited > citizen.patience_minutes:
            self._after(1, self._recall, desk)  # nobody comes: call again in a minute
        else:
            self._after(citizen.walk_minutes, self._start, desk)

    def _recall(self, desk: _Desk) -> None:
        def recall(session: Session) -> TicketStatus:
            staff = self._staff(session, desk)
            counter = counters.held_counter(session, desk.counter_id, staff, day=self.demand.day)
            ticket = tickets.recall(
                session, counter, now=self.clock.now, rules=self.rules, staff_id=staff.id
            )
            return ticket.status

        if self._act(recall) is TicketStatus.NO_SHOW:
            self._call(desk)
        else:
            self._after(1, self._recall, desk)

    def _on_ticket(self, session: Session, desk: _Desk, action: Callable[..., None]) -> None:
        staff = self._staff(session, desk)
        assert desk.ticket is not None
        ticket = tickets.ticket_for_staff(session, desk.ticket, staff, now=self.clock.now)
        action(session, ticket, now=self.clock.now, staff_id=staff.id)

    def _start(self, desk: _Desk) -> None:
        self._act(lambda session: self._on_ticket(session, desk, tickets.start))
        assert desk.citizen is not None
        self._after(desk.citizen.service_minutes, self._finish, desk)

    def _finish(self, desk: _Desk) -> None:
        assert desk.period_end is not None
        if self.clock.now < desk.period_end:
            self._call(desk)
            return
        # Past the end of opening hours: finish with this citizen, call nobody else.
        self._act(lambda session: self._on_ticket(session, desk, tickets.complete))
        self._close(desk)

    # -- citizens --

    def _walk_in(self, citizen: Citizen) -> None:
        def issue(session: Session) -> Ticket:
            centre = session.get(Centre, citizen.centre_id)
            # The citizen names their line at the kiosk along with the procedure, as the
            # tickets API allows (finding the line from the procedure alone costs a load of
            # every line's fields: the same line, much slower).
            return tickets.issue_walk_in(
                session,
                centre,
                now=self.clock.now,
                procedure=session.get(Procedure, citizen.procedure_id),
                service=session.get(Service, citizen.service_id),
                priority=citizen.priority,
            )

        self._issue(citizen, issue)

    def _check_in(self, citizen: Citizen) -> None:
        seat = self.demand.seats[citizen.number]

        def check_in(session: Session) -> Ticket:
            centre = session.get(Centre, citizen.centre_id)
            assert centre is not None
            done = kiosk_lookup.check_in_at_kiosk(
                session,
                centre,
                now=self.clock.now,
                rules=self.rules,
                secret=self.secret,
                code=seat.code,
                last4=seat.last4,
            )
            return done.ticket

        self._issue(citizen, check_in, late=self._walk_in)

    def _issue(
        self,
        citizen: Citizen,
        issue: Callable[[Session], Ticket],
        late: Callable[[Citizen], None] | None = None,
    ) -> None:
        def issued(session: Session) -> tuple[int, int]:
            ticket = issue(session)
            return ticket.id, ticket.service_id

        try:
            ticket_id, service_id = self._act(issued)
        except Conflict as exc:
            if exc.code == "too_late" and late is not None:
                late(citizen)  # the kiosk offers a walk-in ticket instead
                return
            if exc.code != "centre_closed_now":
                raise
            later = self._next_opening(citizen.centre_id)
            if later is None:
                self.stats.turned_away += 1
            else:
                self._at(later, self._walk_in, citizen)  # waits outside until it opens
            return
        self.stats.issued += 1
        self._citizen_of[ticket_id] = citizen
        self._wake(citizen.centre_id, service_id)

    def _next_opening(self, centre_id: int) -> datetime | None:
        return next((a for a, _ in self._periods[centre_id] if a > self.clock.now), None)


def _opening_order(centre: Centre) -> list[Counter]:
    """Counters in the order a centre short of officers opens them: each next one goes to
    the line with the most work (counter share × intake minutes) per counter opened so far
    (D'Hondt), so no line is left with far less than its share."""
    weights = counter_weights(centre.counters)
    intake = {s.id: max(s.intake_minutes, 1) for s in centre.services}
    groups: dict[int, list[Counter]] = defaultdict(list)
    for c in sorted(centre.counters, key=lambda c: c.number):
        if c.active and c.service_links:
            lead = min(c.service_links, key=lambda link: (link.rank, link.service_id))
            groups[lead.service_id].append(c)
    work = {sid: weights.get(sid, 0.0) * intake.get(sid, 10) for sid in groups}
    opened: dict[int, int] = defaultdict(int)
    order: list[Counter] = []
    for _ in range(sum(len(g) for g in groups.values())):
        sid = max(
            (s for s in groups if opened[s] < len(groups[s])),
            key=lambda s: (work[s] / (opened[s] + 1), -s),
        )
        order.append(groups[sid][opened[sid]])
        opened[sid] += 1
    return order
