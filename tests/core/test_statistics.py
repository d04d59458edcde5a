"""Daily statistics on a hand-built day: counts, wait percentiles, service time and
estimate error per centre, line, source, hour and field — live folding equal to the stored
rows, and idempotent re-aggregation."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time, timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from core.common.timeutil import local_to_utc
from core.models import (
    DailyStatistic,
    Service,
    Ticket,
    TicketEvent,
    TicketSource,
    TicketStatus,
)
from core.operations.statistics import aggregate_day, eta_error, fold_day, percentile, settled
from tests.conftest import both_databases
from tests.factories import make_centre, make_field, make_procedure, make_service
from web.db import transaction
from web.extensions import db

DAY = date(2026, 12, 7)  # a Monday


def at(hh: int, mm: int) -> datetime:
    return local_to_utc(DAY, time(hh, mm))


def hand_ticket(
    service: Service,
    number: int,
    source: TicketSource,
    issued: datetime,
    *,
    status: TicketStatus,
    calls: tuple[datetime, ...] = (),
    started: datetime | None = None,
    finished: datetime | None = None,
    eta: tuple[int, int] | None = None,
    transferred_from: Ticket | None = None,
    procedure_id: int | None = None,
) -> Ticket:
    """A ticket with exactly the times given, and its "called" audit rows."""
    ticket = Ticket(
        public_id=uuid.uuid4().hex,
        centre_id=service.centre_id,
        service_id=service.id,
        day=DAY,
        number=number,
        label=f"{service.prefix}{number:03d}",
        source=source,
        status=status,
        queue_time=transferred_from.queue_time if transferred_from else issued,
        issued_at=issued,
        called_at=calls[-1] if calls else None,
        started_at=started,
        finished_at=finished,
        call_count=len(calls),
        eta_low_minutes=eta[0] if eta else None,
        eta_high_minutes=eta[1] if eta else None,
        transferred_from_id=transferred_from.id if transferred_from else None,
        procedure_id=procedure_id,
    )
    db.session.add(ticket)
    db.session.flush()
    for moment in calls:
        db.session.add(TicketEvent(ticket_id=ticket.id, kind="called", at=moment, data={}))
    db.session.flush()
    return ticket


@pytest.fixture
def day(session):
    """Line A at one centre, 08:00–09:59 local:

    | ticket | source      | issued | first call | served         | eta     | wait |
    | A001   | walk_in     | 08:00  | 08:10      | 08:12–08:22    | 5–15    | 10   |
    | A002   | walk_in     | 08:05  | 08:35 (+ recall 08:40) | 08:41–08:47 | 5–20 | 30 (10 over) |
    | A003   | appointment | 08:30  | 08:32      | 08:33–08:43    | 0–10    | 2    |
    | A004   | walk_in     | 09:00  | 09:20 ×3   | no-show        | 10–20   | 20   |
    | A005   | remote      | 09:10  | –          | cancelled      | 10–20   | –    |
    | B001   | (transfer of A003 to line B, served 08:45–08:50: served, not issued) |
    """
    centre = make_centre()
    a = make_service(centre, "A", counters=1)
    b = make_service(centre, "B", counters=1, name="Chứng thực")
    walk, appt, remote = TicketSource.WALK_IN, TicketSource.APPOINTMENT, TicketSource.REMOTE
    done = TicketStatus.DONE
    hand_ticket(a, 1, walk, at(8, 0), status=done, calls=(at(8, 10),), started=at(8, 12),
                finished=at(8, 22), eta=(5, 15))  # fmt: skip
    hand_ticket(a, 2, walk, at(8, 5), status=done, calls=(at(8, 35), at(8, 40)),
                started=at(8, 41), finished=at(8, 47), eta=(5, 20))  # fmt: skip
    a3 = hand_ticket(a, 3, appt, at(8, 30), status=TicketStatus.TRANSFERRED, calls=(at(8, 32),),
                     started=at(8, 33), finished=at(8, 43), eta=(0, 10))  # fmt: skip
    hand_ticket(a, 4, walk, at(9, 0), status=TicketStatus.NO_SHOW,
                calls=(at(9, 20), at(9, 22), at(9, 24)), eta=(10, 20))  # fmt: skip
    hand_ticket(a, 5, remote, at(9, 10), status=TicketStatus.CANCELLED, eta=(10, 20))
    hand_ticket(b, 1, appt, at(8, 43), status=done, calls=(at(8, 44),), started=at(8, 45),
                finished=at(8, 50), transferred_from=a3)  # fmt: skip
    session.commit()
    return SimpleNamespace(centre=centre, a=a, b=b)


def cell(session, centre, service=None, source=None, hour=None) -> DailyStatistic:
    q = select(DailyStatistic).where(
        DailyStatistic.day == DAY,
        DailyStatistic.centre_id == centre.id,
        DailyStatistic.by_field.is_(False),
    )
    for column, value in (
        (DailyStatistic.service_id, service.id if service else None),
        (DailyStatistic.source, source),
        (DailyStatistic.hour, hour),
    ):
        q = q.where(column.is_(None) if value is None else column == value)
    return session.scalars(q).one()


def aggregate(now) -> int:
    with transaction() as session:
        return aggregate_day(session, DAY, now=now)


def test_percentile_and_eta_error():
    assert percentile([], 0.5) is None
    assert percentile([10, 30, 2, 20], 0.5) == 15
    assert percentile([10, 30, 2, 20], 0.9) == pytest.approx(27)
    assert eta_error(10, 5, 15) == 0
    assert eta_error(30, 5, 20) == 10
    assert eta_error(2, 5, 20) == 3
    assert eta_error(10, None, None) is None


@both_databases
def test_a_hand_built_day(session, day, now):
    assert aggregate(now) > 0

    whole = cell(session, day.centre)
    # Issued 5 (the transfer's continuation is the same citizen); served 3 (A001, A002, B001).
    assert (whole.issued, whole.served, whole.no_show, whole.cancelled) == (5, 3, 1, 1)
    # Waits to the first call: 10, 30, 2, 20 (A005 never called, B001 is a continuation).
    assert whole.waits == 4
    assert whole.wait_p50 == 15 and whole.wait_p90 == 27
    # Service times of served tickets: 10, 6, 5.
    assert whole.service_avg == pytest.approx(7)
    # Estimates: A001 within, A002 10 over, A003 within, A004 within.
    assert (whole.estimates, whole.estimates_within, whole.eta_error_minutes) == (4, 3, 2.5)

    line_a = cell(session, day.centre, day.a)
    assert (line_a.issued, line_a.served, line_a.waits) == (5, 2, 4)
    line_b = cell(session, day.centre, day.b)
    assert (line_b.issued, line_b.served, line_b.waits, line_b.service_avg) == (0, 1, 0, 5)

    walk_ins = cell(session, day.centre, source="walk_in")
    assert (walk_ins.issued, walk_ins.wait_p50) == (3, 20)
    nine = cell(session, day.centre, hour=9)
    assert (nine.issued, nine.no_show, nine.cancelled, nine.wait_p50) == (2, 1, 1, 20)
    finest = cell(session, day.centre, day.a, "walk_in", 8)
    assert (finest.issued, finest.served, finest.wait_p90) == (2, 2, 28)


@both_databases
def test_re_aggregating_replaces_rather_than_adds(session, day, now):
    first = aggregate(now)
    assert aggregate(now + timedelta(minutes=30)) == first
    assert session.scalar(select(func.count()).select_from(DailyStatistic)) == first
    assert cell(session, day.centre).computed_at == now + timedelta(minutes=30)


def test_a_day_is_settled_once_computed_after_it_was_over(session, day, now):
    with transaction() as s:
        assert not settled(s, DAY)
    aggregate(at(23, 0))
    with transaction() as s:
        assert not settled(s, DAY)
    aggregate(at(23, 0) + timedelta(hours=2, minutes=1))  # 01:01 the next day
    with transaction() as s:
        assert settled(s, DAY)


# --- By field (lĩnh vực) ------------------------------------------------------------------------


@pytest.fixture
def fields_day(session):
    """Line A takes two fields (Hộ tịch, Chứng thực), line B one (Đất đai):

    | ticket | procedure's field | field counted | source      | issued | wait | status    |
    | A001   | Chứng thực        | Chứng thực    | walk_in     | 08:00  | 4    | served 6  |
    | A002   | –                 | not known     | walk_in     | 08:10  | 10   | served 8  |
    | A003   | –                 | not known     | remote      | 08:20  | 30   | no-show   |
    | A004   | Hộ tịch           | Hộ tịch       | appointment | 09:00  | 2    | served 10 |
    | B001   | –                 | Đất đai       | walk_in     | 09:05  | 12   | served 4  |
    | B002   | Hộ tịch           | Hộ tịch       | walk_in     | 09:30  | –    | cancelled |
    | A005   | (transfer of B001 to line A, no procedure: served there, not issued: not known) |
    """
    civil, notary, land = make_field("Hộ tịch"), make_field("Chứng thực"), make_field("Đất đai")
    birth = make_procedure(name="Đăng ký khai sinh", field=civil)
    copy = make_procedure(name="Chứng thực bản sao", field=notary)
    centre = make_centre()
    a = make_service(centre, "A", counters=1, fields=[civil, notary])
    b = make_service(centre, "B", counters=1, fields=[land], name="Đất đai")
    walk, appt, remote = TicketSource.WALK_IN, TicketSource.APPOINTMENT, TicketSource.REMOTE
    done = TicketStatus.DONE

    def served(line, n, source, issued, wait, minutes, procedure=None):
        call = issued + timedelta(minutes=wait)
        return hand_ticket(line, n, source, issued, status=done, calls=(call,), started=call,
                           finished=call + timedelta(minutes=minutes),
                           procedure_id=procedure.id if procedure else None)  # fmt: skip

    served(a, 1, walk, at(8, 0), 4, 6, copy)
    served(a, 2, walk, at(8, 10), 10, 8)
    hand_ticket(a, 3, remote, at(8, 20), status=TicketStatus.NO_SHOW, calls=(at(8, 50),))
    served(a, 4, appt, at(9, 0), 2, 10, birth)
    b1 = served(b, 1, walk, at(9, 5), 12, 4)
    b1.status = TicketStatus.TRANSFERRED
    hand_ticket(b, 2, walk, at(9, 30), status=TicketStatus.CANCELLED, procedure_id=birth.id)
    hand_ticket(a, 5, walk, at(9, 22), status=done, calls=(at(9, 25),), started=at(9, 25),
                finished=at(9, 30), transferred_from=b1)  # fmt: skip
    session.commit()
    return SimpleNamespace(centre=centre, a=a, b=b, civil=civil, notary=notary, land=land)


def field_rows(session, centre) -> dict[int | None, DailyStatistic]:
    q = select(DailyStatistic).where(
        DailyStatistic.day == DAY,
        DailyStatistic.centre_id == centre.id,
        DailyStatistic.by_field.is_(True),
    )
    rows = list(session.scalars(q))
    assert all(r.service_id is None and r.source is None and r.hour is None for r in rows)
    by_id = {r.field_id: r for r in rows}
    assert len(by_id) == len(rows)  # one row per field
    return by_id


@both_databases
def test_the_field_level(session, fields_day, now):
    aggregate(now)
    rows = field_rows(session, fields_day.centre)
    assert set(rows) == {fields_day.civil.id, fields_day.notary.id, fields_day.land.id, None}

    # A004 by its procedure; B002's procedure wins over its line's single field.
    civil = rows[fields_day.civil.id]
    assert (civil.issued, civil.served, civil.cancelled, civil.waits) == (2, 1, 1, 1)
    assert (civil.wait_p50, civil.service_avg) == (2, 10)
    notary = rows[fields_day.notary.id]
    assert (notary.issued, notary.served, notary.wait_p50, notary.service_avg) == (1, 1, 4, 6)
    # B001 had no procedure: the field of its line, which takes only Đất đai.
    land = rows[fields_day.land.id]
    assert (land.issued, land.served, land.wait_p50) == (1, 0, 12)
    # A002, A003 (no procedure on a two-field line) and A005 (B001's continuation, served).
    unknown = rows[None]
    assert (unknown.issued, unknown.served, unknown.no_show, unknown.waits) == (2, 2, 1, 2)
    assert (unknown.wait_p50, unknown.wait_p90) == (20, 28)  # waits 10 and 30
    assert unknown.service_avg == pytest.approx(6.5)  # 8 and 5


@both_databases
def test_the_field_level_does_not_double_count_the_others(session, fields_day, now):
    aggregate(now)
    whole = cell(session, fields_day.centre)  # exactly one row, outside the field level
    assert (whole.issued, whole.served, whole.no_show, whole.cancelled) == (6, 4, 1, 1)
    assert (whole.waits, whole.wait_p50) == (5, 10)  # waits 4, 10, 30, 2, 12
    fields = field_rows(session, fields_day.centre).values()
    for name in ("issued", "served", "no_show", "cancelled", "waits", "estimates"):
        assert sum(getattr(r, name) for r in fields) == getattr(whole, name), name
    # The lines and sources add up to the whole day as before.
    a, b = (
        cell(session, fields_day.centre, fields_day.a),
        cell(session, fields_day.centre, fields_day.b),
    )
    assert (a.issued + b.issued, a.served + b.served) == (6, 4)
    walk = cell(session, fields_day.centre, source="walk_in")
    assert walk.issued == 4
    # Rows with service, source and hour all None: the whole day plus one per field.
    none_keys = select(func.count()).where(
        DailyStatistic.service_id.is_(None),
        DailyStatistic.source.is_(None),
        DailyStatistic.hour.is_(None),
    )
    assert session.scalar(none_keys) == 1 + 4


@both_databases
def test_live_folding_gives_the_stored_rows(session, fields_day, day, now):
    """What the dashboard folds live for a day not aggregated yet is what is then stored."""
    skip = {"id", "computed_at"}
    live = sorted(
        (
            tuple(sorted((k, v) for k, v in cell.row(key, DAY, now).items() if k not in skip))
            for key, cell in fold_day(session, DAY).items()
        ),
        key=repr,
    )
    assert aggregate(now) == len(live)
    columns = [c.name for c in DailyStatistic.__table__.columns if c.name not in skip]
    stored = sorted(
        (
            tuple(sorted((name, getattr(r, name)) for name in columns))
            for r in session.scalars(select(DailyStatistic))
        ),
        key=repr,
    )
    assert stored == live
    assert any(dict(row)["by_field"] for row in stored)
