"""The counter pages: choose and open a counter, then call and serve tickets at it.

Each action is a small POST form: the view checks the officer holds the counter, makes one
queue-engine call inside a transaction, flashes the outcome and redirects back to the
workstation (post/redirect/get, so a reload never repeats an action).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from flask import abort, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy.orm import Session

from core.access.principals import centres_of
from core.common.errors import Conflict
from core.common.timeutil import local_day, to_local
from core.floor import counters, tickets
from core.models import Counter, Staff, Ticket, TicketStatus
from core.places.directory import get_centre
from counter.access import me, staff_required
from counter.forms import TransferForm, parse_public_id
from web.clock import clock
from web.db import transaction
from web.extensions import db
from web.messages import message
from web.settings import floor_rules

Flash = tuple[str, str]
Action = Callable[[Session, Counter, Staff, datetime], list[Flash]]


def _to_workstation(counter_id: int):
    return redirect(url_for("counter.workstation", counter_id=counter_id), 303)


# ---------------------------------------------------------------- choosing a counter


@staff_required
def choose():
    """GET: the counters of the centres the officer works at today."""
    now = clock()
    staff = me()
    centres = counters.centres_for(db.session, staff, local_day(now))
    roams = centres_of(db.session, staff, local_day(now)) is None
    picked = (request.args.get("centre") or "").strip()[:16]
    if roams and picked:
        centre = get_centre(db.session, picked)
        if centre is None or not centre.active:
            flash(message("centre_not_found"), "error")
        elif centre not in centres:
            centres.insert(0, centre)
    dispatched = {
        c.id for c in centres if counters.is_dispatched(db.session, staff, c.id, local_day(now))
    }
    return render_template(
        "counter/choose.html",
        centres=centres,
        dispatched=dispatched,
        roams=roams,
        picked=picked,
        today=to_local(now),
    )


@staff_required
def open_counter(counter_id: int):
    """POST: take the counter and go to its workstation."""
    now = clock()
    try:
        with transaction() as s:
            counter = counters.counter_for(s, counter_id, me(), day=local_day(now))
            counters.open_counter(s, counter, me(), now=now)
    except Conflict as err:
        flash(message(err.code, **err.details), "error")
        return redirect(url_for("counter.choose"), 303)
    flash(_("Đã mở quầy số %(number)s.", number=counter.number), "success")
    return _to_workstation(counter_id)


@staff_required
def close_counter(counter_id: int):
    """POST: close the counter and go back to the choice of counters."""
    now = clock()
    try:
        with transaction() as s:
            counter = counters.counter_for(s, counter_id, me(), day=local_day(now))
            counters.close_counter(s, counter, me(), now=now)
    except Conflict as err:
        flash(message(err.code, **err.details), "error")
        if err.code == "counter_has_ticket":
            return _to_workstation(counter_id)
    else:
        flash(_("Đã đóng quầy số %(number)s.", number=counter.number), "success")
    return redirect(url_for("counter.choose"), 303)


# ---------------------------------------------------------------- the workstation


def _held_or_redirect(counter_id: int, now: datetime) -> Counter | None:
    """The counter when the officer holds it; else None after flashing why."""
    counter = counters.counter_for(db.session, counter_id, me(), day=local_day(now))
    try:
        return counters.held_counter(db.session, counter_id, me(), day=local_day(now))
    except Conflict as err:
        if err.code == "counter_closed":
            flash(
                _("Quầy số %(number)s đang đóng. Hãy mở quầy để làm việc.", number=counter.number),
                "info",
            )
        else:
            flash(message(err.code, **err.details), "error")
        return None


@staff_required
def workstation(counter_id: int):
    """GET: the current ticket, the waiting queue and the action buttons."""
    now = clock()
    counter = _held_or_redirect(counter_id, now)
    if counter is None:
        return redirect(url_for("counter.choose"), 303)
    current = tickets.current_ticket(db.session, counter)
    came_from = (
        db.session.get(Ticket, current.transferred_from_id)
        if current is not None and current.transferred_from_id
        else None
    )
    return render_template(
        "counter/workstation.html",
        counter=counter,
        current=current,
        came_from=came_from,
        queues=counters.waiting_at(db.session, counter, day=local_day(now)),
        served=counters.served_today(db.session, counter, day=local_day(now)),
        targets=counters.transfer_targets(db.session, counter, current),
        max_calls=floor_rules().max_calls,
        now=now,
    )


@staff_required
def queue_json(counter_id: int):
    """GET: the waiting counts the workstation refreshes every few seconds (labels only)."""
    now = clock()
    counter = counters.counter_for(db.session, counter_id, me(), day=local_day(now))
    current = tickets.current_ticket(db.session, counter)
    queues = counters.waiting_at(db.session, counter, day=local_day(now))
    response = jsonify(
        counter=counter.number,
        is_open=counter.is_open,
        current={"label": current.label, "status": current.status.value} if current else None,
        served_today=counters.served_today(db.session, counter, day=local_day(now)),
        waiting_total=sum(q.waiting for q in queues),
        services=[
            {
                "id": q.service.id,
                "prefix": q.service.prefix,
                "name": q.service.name,
                "waiting": q.waiting,
                "priority": q.priority,
                "next": [{"label": label, "priority": prio} for label, prio in q.next_labels],
            }
            for q in queues
        ],
        updated_at=to_local(now).strftime("%H:%M:%S"),
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@staff_required
def transfer_page(counter_id: int):
    """GET: the transfer choices as a page of their own (the dialog's no-script fallback)."""
    now = clock()
    counter = _held_or_redirect(counter_id, now)
    if counter is None:
        return redirect(url_for("counter.choose"), 303)
    current = tickets.current_ticket(db.session, counter)
    if current is None:
        flash(message("no_current_ticket"), "error")
        return _to_workstation(counter_id)
    return render_template(
        "counter/transfer.html",
        counter=counter,
        current=current,
        targets=counters.transfer_targets(db.session, counter, current),
    )


# ---------------------------------------------------------------- actions


def _act(counter_id: int, action: Action):
    """Run one action at the counter the officer holds; refusals become a message."""
    now = clock()
    try:
        with transaction() as s:
            counter = counters.held_counter(s, counter_id, me(), day=local_day(now))
            outcome = action(s, counter, me(), now)
    except Conflict as err:
        outcome = [("error", message(err.code, **err.details))]
    for category, text in outcome:
        flash(text, category)
    return _to_workstation(counter_id)


def _posted_ticket() -> str | None:
    return parse_public_id(request.form.get("ticket"))


def _call_next(s: Session, counter: Counter, staff: Staff, now: datetime) -> list[Flash]:
    serving = tickets.current_ticket(s, counter)
    ticket = tickets.call_next(s, counter, now=now, rules=floor_rules(), staff_id=staff.id)
    outcome = []
    if serving is not None:  # call_next completes the ticket being served first
        outcome.append(("success", _("Đã hoàn thành số %(label)s.", label=serving.label)))
    if ticket is None:
        outcome.append(("info", _("Không còn ai chờ.")))
    else:
        outcome.append(("success", _("Đã gọi số %(label)s.", label=ticket.label)))
    return outcome


def _recall(s: Session, counter: Counter, staff: Staff, now: datetime) -> list[Flash]:
    counters.ticket_at(s, counter, _posted_ticket())
    rules = floor_rules()
    ticket = tickets.recall(s, counter, now=now, rules=rules, staff_id=staff.id)
    if ticket.status == TicketStatus.NO_SHOW:
        text = _(
            "Số %(label)s đã được gọi %(calls)s lần mà không có mặt nên được ghi nhận vắng mặt.",
            label=ticket.label,
            calls=ticket.call_count,
        )
        return [("warning", text)]
    text = _(
        "Đã gọi lại số %(label)s (lần %(calls)s).", label=ticket.label, calls=ticket.call_count
    )
    return [("success", text)]


def _start(s: Session, counter: Counter, staff: Staff, now: datetime) -> list[Flash]:
    ticket = counters.ticket_at(s, counter, _posted_ticket())
    tickets.start(s, ticket, now=now, staff_id=staff.id)
    return [("success", _("Bắt đầu phục vụ số %(label)s.", label=ticket.label))]


def _complete(s: Session, counter: Counter, staff: Staff, now: datetime) -> list[Flash]:
    ticket = counters.ticket_at(s, counter, _posted_ticket())
    tickets.complete(s, ticket, now=now, staff_id=staff.id)
    return [("success", _("Đã hoàn thành số %(label)s.", label=ticket.label))]


def _no_show(s: Session, counter: Counter, staff: Staff, now: datetime) -> list[Flash]:
    ticket = counters.ticket_at(s, counter, _posted_ticket())
    tickets.no_show(s, ticket, now=now, staff_id=staff.id)
    return [("warning", _("Đã ghi nhận số %(label)s vắng mặt.", label=ticket.label))]


def _transfer(s: Session, counter: Counter, staff: Staff, now: datetime) -> list[Flash]:
    form = TransferForm.from_form(request.form)
    ticket = counters.ticket_at(s, counter, form.ticket)
    new = counters.transfer_from(
        s,
        counter,
        ticket,
        now=now,
        service_id=form.service_id,
        counter_id=form.counter_id,
        centre_id=form.centre_id,
        staff_id=staff.id,
    )
    if new.centre_id != counter.centre_id:
        where = new.centre.name
    elif new.target_counter_id is not None:
        where = _("quầy số %(number)s", number=s.get(Counter, new.target_counter_id).number)
    else:
        where = new.service.name
    text = _(
        "Đã chuyển số %(old)s đến %(where)s. Số mới: %(new)s (giữ nguyên thứ tự chờ).",
        old=ticket.label,
        where=where,
        new=new.label,
    )
    return [("success", text)]


# URL segment → action.
ACTIONS: dict[str, Action] = {
    "call-next": _call_next,
    "recall": _recall,
    "start": _start,
    "complete": _complete,
    "no-show": _no_show,
    "transfer": _transfer,
}


@staff_required
def act(counter_id: int, action: str):
    """POST /counter/<id>/<action>: one of ACTIONS."""
    if action not in ACTIONS:
        abort(404)
    return _act(counter_id, ACTIONS[action])
