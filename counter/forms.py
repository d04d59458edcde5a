"""What officers send from the counter pages: the login form and the action forms' fields."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from core.common.text import parse_id as _parse_id


class LoginForm(FlaskForm):
    username = StringField(
        _l("Tên đăng nhập"),
        validators=[DataRequired(_l("Vui lòng nhập tên đăng nhập.")), Length(max=64)],
    )
    password = PasswordField(
        _l("Mật khẩu"),
        validators=[DataRequired(_l("Vui lòng nhập mật khẩu.")), Length(max=256)],
    )


def safe_next(target: str | None) -> str | None:
    """`target` when it is a path on this site, else None (no open redirects)."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return None
    if "\\" in target or any(ord(ch) < 32 for ch in target):
        return None
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else None


def parse_id(raw: str | None) -> int | None:
    """A positive database id from a form field, else None."""
    return _parse_id(raw)


def parse_public_id(raw: str | None) -> str | None:
    raw = (raw or "").strip()
    return raw if 0 < len(raw) <= 32 and raw.replace("-", "").replace("_", "").isalnum() else None


@dataclass(frozen=True)
class TransferForm:
    """Where to send the counter's ticket: exactly one of service, counter or centre."""

    ticket: str | None
    service_id: int | None = None
    counter_id: int | None = None
    centre_id: int | None = None

    @classmethod
    def from_form(cls, form: Mapping[str, str]) -> TransferForm:
        return cls(
            ticket=parse_public_id(form.get("ticket")),
            service_id=parse_id(form.get("service")),
            counter_id=parse_id(form.get("counter")),
            centre_id=parse_id(form.get("centre")),
        )
