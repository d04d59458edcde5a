"""What every JSON API blueprint shares: request parsing whose refusals are problem+json,
the documented shapes of tickets and problems, and bearer-token authentication.

Feature packages may not import each other, so the kiosk, counter and public ticket APIs
meet here rather than copying one another.
"""

from __future__ import annotations

import unicodedata
from typing import Any

import marshmallow as ma
from flask import Response, current_app, jsonify, request
from flask.blueprints import BlueprintSetupState
from flask_login import current_user
from flask_smorest import Blueprint
from marshmallow import fields, validate
from webargs import core as webargs_core
from webargs.flaskparser import FlaskParser

from core.common.errors import DomainError, InvalidInput
from core.common.timeutil import EARLIEST_DAY, LATEST_DAY
from web.auth import bearer_token
from web.extensions import api, csrf, limiter
from web.messages import MESSAGES

BEARER = "bearerAuth"


def field_codes(messages: Any) -> dict[str, str]:
    """{location: {field: [code, …]}} from webargs → {field: code}; unknown text → a code."""
    inner = messages
    if isinstance(messages, dict) and len(messages) == 1:
        inner = next(iter(messages.values()))
    if not isinstance(inner, dict):
        return {"body": "invalid_value"}
    found: dict[str, str] = {}
    for name, value in inner.items():
        while isinstance(value, dict | list) and value:
            value = next(iter(value.values())) if isinstance(value, dict) else value[0]
        code = value if isinstance(value, str) and value in MESSAGES else "invalid_value"
        found["body" if name == "_schema" else str(name)] = code
    return found or {"body": "invalid_value"}


class ProblemParser(FlaskParser):
    """Webargs parsing whose refusals are domain errors (problem+json, localised)."""

    def _raw_load_json(self, req: Any) -> Any:
        # Any non-empty body is read as JSON: clients that forget the Content-Type still work.
        data = req.get_data(cache=True)
        if not data:
            return webargs_core.missing
        try:
            return webargs_core.parse_json(data)
        except (ValueError, RecursionError):
            raise DomainError("invalid_json") from None

    def _handle_invalid_json_error(self, error: Any, req: Any, *args: Any, **kwargs: Any) -> Any:
        raise DomainError("invalid_json")

    def handle_error(  # type: ignore[override]
        self, error: Any, req: Any, schema: Any, *, error_status_code: Any, error_headers: Any
    ) -> Any:
        raise InvalidInput(field_codes(error.messages))


class ApiBlueprint(Blueprint):
    """A smorest blueprint for bearer-token APIs: problem+json parsing, CSRF only for cookies.

    `cookie_csrf=False` drops even that check, for endpoints that never act on the session
    cookie (staff tokens: credentials or a bearer token in the request itself).
    """

    ARGUMENTS_PARSER = ProblemParser()

    def __init__(self, *args: Any, cookie_csrf: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        csrf.exempt(self)
        if cookie_csrf:
            self.before_request(_csrf_for_cookie_sessions)
        self.record_once(_document_bearer)


def without_rate_limits(blueprint: Blueprint, *, except_views: tuple[str, ...] = ()) -> None:
    """Tell Flask-Limiter up front that no rate limit applies to `blueprint`'s endpoints.

    For APIs called only by authenticated devices and staff (kiosks, counters), which carry no
    limits: Flask-Limiter otherwise resolves the empty set of limits on every request, about
    5% of a call-next or a start (bench/profile_hot.py). `except_views` names the view
    functions of the blueprint that do carry a limit; a limit added to any other endpoint
    would be ignored.
    """
    name = blueprint.name
    limited = frozenset(f"{name}.{view}" for view in except_views)

    @limiter.request_filter
    def _unlimited() -> bool:
        return request.blueprint == name and request.endpoint not in limited


def _csrf_for_cookie_sessions() -> None:
    """A bearer token cannot be forged by another site; a session cookie can be sent by one.

    The blueprint is exempt from the app-wide CSRF check so devices and scripts can call it,
    so a write that relies on the officer's session cookie is checked here instead (pages
    send the token in the X-CSRFToken header).
    """
    if bearer_token() is not None or request.method in ("GET", "HEAD", "OPTIONS"):
        return
    if not request.cookies:
        return  # no session cookie, so no signed-in officer: nothing to load or check
    if current_user.is_authenticated and current_app.config.get("WTF_CSRF_ENABLED", True):
        csrf.protect()


def _document_bearer(state: BlueprintSetupState) -> None:
    spec = api.spec
    if spec is not None and BEARER not in spec.components.security_schemes:
        spec.components.security_scheme(
            BEARER,
            {
                "type": "http",
                "scheme": "bearer",
                "description": "A kiosk or display device token, or a staff API token. "
                "Staff pages may use their session cookie instead (with X-CSRFToken).",
            },
        )


def secured() -> dict[str, Any]:
    """`@blp.doc(**secured())`: the operation needs a bearer token (or a staff session)."""
    return {"security": [{BEARER: []}]}


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    response = jsonify(body)
    response.status_code = status
    response.headers.update(headers or {})
    return response


# --- Request fields ---------------------------------------------------------------------------


def codes(**extra: str) -> dict[str, str]:
    """Marshmallow error messages as message codes of `web.messages`."""
    return {"required": "required", "null": "required", **extra}


class Text(fields.String):
    """A string without control characters or lone surrogates (databases refuse NUL and
    unencodable text, and neither belongs in a code or a name)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        if any(unicodedata.category(ch) in {"Cc", "Cs"} for ch in text):
            raise self.make_error("invalid")
        return text


# What `Text` takes, as a JSON Schema pattern (a field may document a stricter one).
NO_CONTROLS = r"^[^\x00-\x1f\x7f-\x9f]*$"


def text(max_length: int, *, required: bool = False, **kw: Any) -> Text:
    metadata = {"pattern": NO_CONTROLS, **kw.pop("metadata", {})}
    return Text(
        required=required,
        validate=validate.Length(max=max_length, error="too_long"),
        error_messages=codes(invalid="invalid_value"),
        metadata=metadata,
        **kw,
    )


# EARLIEST_DAY to LATEST_DAY as a pattern, OpenAPI 3.0 having no bounds for a date string
# (tests/xephang/test_openapi.py holds the two together).
DAY_PATTERN = r"^20[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"


def day(description: str, **kw: Any) -> fields.Date:
    """A local day, YYYY-MM-DD, from EARLIEST_DAY to LATEST_DAY (else out_of_range)."""
    return fields.Date(
        validate=validate.Range(min=EARLIEST_DAY, max=LATEST_DAY, error="out_of_range"),
        error_messages=codes(invalid="invalid_date", format="invalid_date"),
        metadata={"description": description, "pattern": DAY_PATTERN},
        **kw,
    )


class InputSchema(ma.Schema):
    class Meta:
        # Ignore what we do not know: clients may send more than this version reads.
        unknown = ma.EXCLUDE


# --- Hot request bodies, read by hand ----------------------------------------------------------
#
# The busiest endpoints (walk-in tickets, bookings) read their JSON body with `BodyReader`
# instead of loading a marshmallow schema: the same refusals (field → message code, the
# first one per field, fields in the schema's order, schema-wide checks only when every
# field passed) at a fraction of the CPU. The schema stays the body's documentation
# (`documented_body`); tests hold the two together.

_UNSET: Any = object()
_BAD_TEXT = frozenset({"Cc", "Cs"})


def json_object() -> dict[str, Any]:
    """The request body as a JSON object ({} when empty), whatever the Content-Type.

    Raises DomainError invalid_json for malformed JSON and InvalidInput {"body":
    "invalid_value"} for JSON that is not an object, as the schema-based parsing does.
    """
    data = request.get_data(cache=True)
    if not data:
        return {}
    try:
        value = webargs_core.parse_json(data)
    except (ValueError, RecursionError):
        raise DomainError("invalid_json") from None
    if not isinstance(value, dict):
        raise InvalidInput({"body": "invalid_value"})
    return value


def _clean_text(value: str) -> bool:
    return value.isprintable() or not any(unicodedata.category(ch) in _BAD_TEXT for ch in value)


class BodyReader:
    """Reads the fields of a JSON object one by one, collecting refusals as message codes."""

    __slots__ = ("data", "errors")

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self.errors: dict[str, str] = {}

    def _get(self, name: str, required: bool, allow_none: bool, code: str = "required") -> Any:
        value = self.data.get(name, _UNSET)
        if value is _UNSET:
            if required:
                self.errors[name] = code
            return _UNSET
        if value is None and not allow_none:
            self.errors[name] = code
            return _UNSET
        return value

    def text(
        self, name: str, max_length: int, *, required: bool = False, allow_none: bool = False
    ) -> str | None:
        """A `text()` field: a string without control characters, at most `max_length`."""
        value = self._get(name, required, allow_none)
        if value is _UNSET or value is None:
            return None
        if not isinstance(value, str) or not _clean_text(value):
            self.errors[name] = "invalid_value"
            return None
        if len(value) > max_length:
            self.errors[name] = "too_long"
            return None
        return value

    def choice(self, name: str, choices: frozenset[str], default: str) -> str:
        """A string field that must be one of `choices` (`default` when absent)."""
        value = self.data.get(name, _UNSET)
        if value is _UNSET:
            return default
        if value is None:
            self.errors[name] = "required"
        elif not isinstance(value, str) or value not in choices:
            self.errors[name] = "invalid_choice"
        else:
            return value
        return default

    def integer(self, name: str, minimum: int, maximum: int, *, required: bool = False) -> int:
        """A strict integer field (no strings, floats or booleans) within bounds."""
        value = self._get(name, required, False)
        if value is _UNSET:
            return 0
        if not isinstance(value, int) or isinstance(value, bool):
            self.errors[name] = "invalid_integer"
            return 0
        if not minimum <= value <= maximum:
            self.errors[name] = "out_of_range"
            return 0
        return value

    def consent(self, name: str) -> bool:
        """A `consent_field`: exactly true or false; anything else is consent_required."""
        value = self._get(name, True, False, code="consent_required")
        if value is _UNSET:
            return False
        # JSON true or false only (false is refused with the other fields, by the domain);
        # 1 and 0 are not booleans.
        if value is True or value is False:
            return value
        self.errors[name] = "consent_required"
        return False

    def refuse(self, name: str, code: str) -> None:
        self.errors[name] = code

    def check(self) -> None:
        """Raise InvalidInput with every refusal collected so far."""
        if self.errors:
            raise InvalidInput(self.errors)


def documented_body(blp: Blueprint, schema: type[ma.Schema]) -> Any:
    """Decorator: document `schema` as the operation's JSON body (the handler reads the
    body itself, with `BodyReader`)."""
    return blp.doc(
        requestBody={"required": True, "content": {"application/json": {"schema": schema}}}
    )


# --- Documented response shapes (the presenters build the bodies) ------------------------------


class Problem(ma.Schema):
    """RFC 9457 problem details. Extension members carry what `detail` speaks of (a ticket's
    `label`, a counter's `number`, a `date`, the refused `plan` …), so more may appear."""

    class Meta:
        unknown = ma.INCLUDE  # documented as additionalProperties: extension members

    type = fields.String()
    title = fields.String()
    status = fields.Integer()
    code = fields.String(metadata={"description": "Stable reason code."})
    detail = fields.String(metadata={"description": "Message in the request's language."})
    errors = fields.Dict(keys=fields.String(), values=fields.String())


class Eta(ma.Schema):
    low = fields.Integer(metadata={"description": "Minutes, lower end of the range."})
    high = fields.Integer(metadata={"description": "Minutes, upper end of the range."})


class TicketPublic(ma.Schema):
    """A queue ticket as anyone holding its public id sees it: no personal data."""

    public_id = fields.String(metadata={"description": "Unguessable id of the live ticket."})
    label = fields.String(metadata={"example": "A023"})
    centre = fields.String(metadata={"description": "Centre code."})
    centre_name = fields.String()
    service = fields.String(metadata={"description": "Prefix of the line (A, B, …)."})
    service_name = fields.String()
    procedure = fields.String(allow_none=True, metadata={"description": "Procedure code."})
    source = fields.String(metadata={"description": "appointment | walk_in | remote"})
    priority = fields.String(
        metadata={
            "description": "none | elderly | disability | pregnant | meritorious | young_child"
        }
    )
    status = fields.String(
        metadata={
            "description": "waiting | called | serving | done | no_show | transferred | cancelled"
        }
    )
    queue_time = fields.String(metadata={"description": "ISO 8601 (+07:00): place in the queue."})
    issued_at = fields.String()
    called_at = fields.String(allow_none=True)
    counter = fields.Integer(allow_none=True, metadata={"description": "Counter number."})
    position = fields.Integer(metadata={"description": "Waiting tickets ahead in its line."})
    eta_minutes = fields.Nested(Eta, allow_none=True, metadata={"description": "While waiting."})
