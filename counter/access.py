"""Officer sign-in and sign-out, and the guard every counter page sits behind.

Sessions only (no "remember me"): counter PCs are shared, and an officer who leaves the
browser open should not stay signed in past the browser session.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_user, logout_user

from core.access.principals import staff_by_login
from core.floor import counters
from core.models import Role, Staff
from counter.forms import LoginForm, safe_next
from web.clock import clock
from web.db import transaction
from web.extensions import db, limiter
from web.messages import message


def staff_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Send anonymous visitors to the sign-in page, then back to where they were going."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if not current_user.is_authenticated:
            flash(_("Vui lòng đăng nhập để tiếp tục."), "info")
            target = request.full_path if request.query_string else request.path
            return redirect(url_for("counter.login", next=target))
        return view(*args, **kwargs)

    return wrapped


def me() -> Staff:
    """The signed-in staff member as a model object (not the request-local proxy)."""
    return current_user._get_current_object()


def login_limit() -> str:
    return current_app.config.get("RATE_LIMIT_LOGIN", "10 per minute;60 per hour")


# Log-in attempts per client address, one budget for the sign-in form and the token API
# (counter.auth_api): either way they guess the same passwords.
login_attempts = limiter.shared_limit(login_limit, scope="staff-login", methods=["POST"])


def home(staff: Staff) -> str:
    """Where staff land after sign-in: managers, operators and admins on the dashboard,
    officers at the counter choice."""
    if staff.role in (Role.MANAGER, Role.OPERATOR, Role.ADMIN):
        return url_for("dashboard.overview")
    return url_for("counter.choose")


def login():
    """GET: the sign-in form. Signed-in staff go straight on."""
    if current_user.is_authenticated:
        return redirect(safe_next(request.args.get("next")) or home(me()))
    return render_template("counter/login.html", form=LoginForm(), failed=None)


@login_attempts
def login_submit():
    """POST: check the credentials; one generic refusal whatever was wrong."""
    form = LoginForm()
    if not form.validate_on_submit():
        return render_template("counter/login.html", form=form, failed=None), 422
    staff = staff_by_login(db.session, form.username.data or "", form.password.data or "")
    if staff is None:
        form.password.data = ""
        return render_template(
            "counter/login.html", form=form, failed=message("invalid_login")
        ), 401
    target = safe_next(request.args.get("next"))
    session.clear()  # nothing from before sign-in carries over (session fixation)
    login_user(staff)
    flash(_("Xin chào %(name)s.", name=staff.full_name), "success")
    return redirect(target or home(staff), 303)


@staff_required
def logout():
    """POST: close the counters left free and sign out."""
    with transaction() as s:
        closed = counters.release_counters(s, me(), now=clock())
    numbers = ", ".join(str(c.number) for c in closed)
    logout_user()
    session.clear()
    if numbers:
        flash(_("Đã đóng quầy số %(numbers)s và đăng xuất.", numbers=numbers), "success")
    else:
        flash(_("Bạn đã đăng xuất."), "success")
    return redirect(url_for("counter.login"), 303)
