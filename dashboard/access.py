"""Who may open the dashboard pages: centre managers (their own centre), city operators and
admins (the whole city). Anonymous visitors are sent to the staff sign-in page and back;
officers get a page that says the dashboard is not for them."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from core.models import Centre, Role, Staff

CITY_ROLES = (Role.OPERATOR, Role.ADMIN)
DASHBOARD_ROLES = (Role.MANAGER, *CITY_ROLES)


def me() -> Staff:
    """The signed-in staff member as a model object (not the request-local proxy)."""
    return current_user._get_current_object()


def sees_city(staff: Staff) -> bool:
    return staff.role in CITY_ROLES


def may_see(staff: Staff, centre: Centre) -> bool:
    """Operators and admins see every centre; a manager only their own."""
    return sees_city(staff) or (staff.role == Role.MANAGER and staff.centre_id == centre.id)


def refused(status: int, heading: str, text: str):
    """A refusal page in the dashboard's own layout (403 or 404), never a bare error."""
    return render_template(
        "dashboard/refused.html", status=status, heading=heading, text=text
    ), status


def forbidden():
    return refused(
        403,
        _("Bạn không có quyền xem trang này"),
        _(
            "Trang điều hành dành cho lãnh đạo trung tâm (xem trung tâm của mình) và cán bộ "
            "điều hành thành phố. Nếu bạn cần quyền này, vui lòng liên hệ quản trị hệ thống."
        ),
    )


def dashboard_page(*, city: bool = False) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: managers, operators and admins only (`city`: operators and admins only)."""

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if not current_user.is_authenticated:
                flash(_("Vui lòng đăng nhập để tiếp tục."), "info")
                target = request.full_path if request.query_string else request.path
                return redirect(url_for("counter.login", next=target))
            staff = me()
            allowed = CITY_ROLES if city else DASHBOARD_ROLES
            if staff.role not in allowed or (staff.role == Role.MANAGER and not staff.centre_id):
                return forbidden()
            return view(*args, **kwargs)

        return wrapped

    return decorate
