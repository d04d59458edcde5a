"""Taking a walk-in number: field → procedure (searchable) or a line directly → confirm."""

from __future__ import annotations

import secrets

from flask import g, redirect, render_template, request, url_for

from core.common.errors import DomainError, InvalidInput
from core.common.text import parse_id
from core.floor import menu as kiosk_menu
from core.floor.kiosk import issue_walk_in_once
from core.models import PriorityClass
from kiosk.texts import PRIORITY_GROUPS, field_errors, refusal
from web.clock import clock
from web.db import transaction
from web.extensions import db

PER_PAGE = 12
QUERY_MAX = 80


def _page() -> int:
    raw = request.args.get("page", "1")
    return min(parse_id(raw) or 1, 500)


def _query() -> str:
    return request.args.get("q", "").strip()[:QUERY_MAX]


def _procedures(field_id: int | None):
    page = _page()
    found = kiosk_menu.procedures_offered(
        db.session,
        g.kiosk.centre,
        q=_query(),
        field_id=field_id,
        offset=(page - 1) * PER_PAGE,
        limit=PER_PAGE,
    )
    return found, page


def _render_list(template: str, **context):
    """The whole screen, or only the result list for the live search script."""
    if request.args.get("partial") == "1":
        return render_template("kiosk/_procedures.html", **context)
    return render_template(template, **context)


def fields():
    """Fields and lines of the centre; with a query, procedures across every field."""
    centre = g.kiosk.centre
    found, page = _procedures(None) if _query() else (None, 1)
    return _render_list(
        "kiosk/take.html",
        fields=kiosk_menu.fields_offered(db.session, centre),
        lines=kiosk_menu.lines_offered(db.session, centre, now=clock()),
        found=found,
        page=page,
        q=_query(),
        per_page=PER_PAGE,
    )


def field(field_id: int):
    """Procedures of one field the centre takes, searchable."""
    chosen = kiosk_menu.field_offered(db.session, g.kiosk.centre, field_id)
    found, page = _procedures(field_id)
    return _render_list(
        "kiosk/field.html", field=chosen, found=found, page=page, q=_query(), per_page=PER_PAGE
    )


def _choice():
    service = request.values.get("service", "")
    return kiosk_menu.resolve_choice(
        db.session,
        g.kiosk.centre,
        procedure_code=request.values.get("procedure") or None,
        service_id=parse_id(service),
    )


def _confirm_screen(choice, *, errors=None, values=None, status=200):
    ahead, estimate = kiosk_menu.expected_wait(db.session, choice.service, now=clock())
    return render_template(
        "kiosk/confirm.html",
        choice=choice,
        ahead=ahead,
        estimate=estimate,
        groups=PRIORITY_GROUPS,
        form_id=secrets.token_urlsafe(16),
        errors=errors or {},
        values=values or {},
    ), status


def confirm():
    return _confirm_screen(_choice())


def _priority() -> PriorityClass:
    if request.form.get("priority") != "on":
        return PriorityClass.NONE
    try:
        group = PriorityClass(request.form.get("group", ""))
    except ValueError:
        group = PriorityClass.NONE
    if group == PriorityClass.NONE:
        raise InvalidInput({"group": "priority_group_required"})
    return group


def submit():
    """Issue the ticket (once per form, however often it is tapped) and show it."""
    choice = _choice()
    try:
        priority = _priority()
        with transaction():
            result = issue_walk_in_once(
                db.session,
                g.kiosk,
                form_id=request.form.get("form_id", ""),
                now=clock(),
                procedure=choice.procedure,
                service=choice.service if choice.procedure is None else None,
                priority=priority,
            )
            public_id = result.ticket.public_id
    except InvalidInput as err:
        values = {"priority": request.form.get("priority"), "group": request.form.get("group")}
        return _confirm_screen(choice, errors=field_errors(err), values=values, status=422)
    except DomainError as err:
        return render_template(
            "kiosk/answer.html", status=err.status, text=refusal(err), code=err.code
        ), err.status
    return redirect(url_for("kiosk.ticket", public_id=public_id, print=1), code=303)
