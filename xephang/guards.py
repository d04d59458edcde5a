"""Request guards: what no route may receive, refused before any view or database sees it.

- Path parameters never hold control characters (PostgreSQL refuses NUL in text, and no
  code, id or name has one) and integer parameters fit PostgreSQL's 32-bit `integer`: the
  URL converters of every rule say so, so such a URL matches no route and answers 404 —
  for every route, including those added later.
- Query strings and form fields never hold control characters (a form field may hold tab,
  CR and LF, which a textarea sends): refused with 422 naming the parameter under /api, the
  error page elsewhere, before the view runs, so nothing changes.
- Bodies are bounded by `MAX_BODY_BYTES` (Flask's MAX_CONTENT_LENGTH and
  MAX_FORM_MEMORY_SIZE): Werkzeug answers 413 when a body whose Content-Length says it is
  larger is read. A chunked body (no Content-Length) Werkzeug would cut at the bound without
  a word — a form read in part, a JSON body refused as malformed — so it is read here, up to
  one byte past the bound, and answers 413 when it is larger.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable

from flask import Flask, current_app, request
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.routing import IntegerConverter, PathConverter, UnicodeConverter

from core.common.errors import DomainError, InvalidInput
from core.common.text import MAX_ID
from web.extensions import api

# Unicode category Cc: C0 controls, DEL and C1 controls.
CONTROL_CLASS = r"\x00-\x1f\x7f-\x9f"
_CONTROL = re.compile(f"[{CONTROL_CLASS}]")
# Tab, LF and CR are what a multi-line form field legitimately sends.
_FORM_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})


class TextConverter(UnicodeConverter):
    """`<name>` and `<string:name>`: one path segment without control characters."""

    def __init__(self, map, minlength: int = 1, maxlength: int | None = None, length=None):
        super().__init__(map, minlength, maxlength, length)
        # UnicodeConverter's regex is "[^/]{min,max}"; keep its bounds (the OpenAPI
        # document reads them from it) and leave control characters out of the class.
        self.regex = self.regex.replace("[^/]", f"[^/{CONTROL_CLASS}]", 1)


class TextPathConverter(PathConverter):
    """`<path:name>`: segments without control characters."""

    regex = f"[^/{CONTROL_CLASS}][^{CONTROL_CLASS}]*?"


class DatabaseIntConverter(IntegerConverter):
    """`<int:name>`: ASCII digits of a value that fits a PostgreSQL integer.

    Werkzeug's `\\d+` also takes other scripts' digits and any length (int() of thousands of
    digits raises); a larger id cannot exist, so it matches nothing (404).
    """

    regex = r"[0-9]{1,10}"

    def __init__(
        self,
        map,
        fixed_digits: int = 0,
        min: int | None = None,
        max: int | None = MAX_ID,
        signed: bool = False,
    ):
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)
        if signed:
            self.regex = r"-?[0-9]{1,10}"


def _text_parameter(converter: TextConverter) -> dict[str, object]:
    """The OpenAPI schema of a `TextConverter` path parameter: what its regex matches."""
    return {"type": "string", "minLength": 1, "pattern": f"^[^/{CONTROL_CLASS}]+$"}


def install_converters(app: Flask) -> None:
    """Replace the default converters; call before any blueprint adds its rules."""
    converters = app.url_map.converters
    converters["default"] = converters["string"] = TextConverter
    converters["path"] = TextPathConverter
    converters["int"] = DatabaseIntConverter
    global _documented
    if not _documented:  # `api` lives as long as the process: tell it once
        api.register_converter(TextConverter, _text_parameter)
        _documented = True


_documented = False


def _first_bad(items: Iterable[tuple[str, str]], bad: re.Pattern[str]) -> str | None:
    for name, value in items:
        if bad.search(name) or bad.search(value):
            return name
    return None


def _bound_chunked_body() -> None:
    """Read a body sent without Content-Length, refusing it past MAX_CONTENT_LENGTH."""
    environ = request.environ
    if request.content_length is not None or not environ.get("wsgi.input_terminated"):
        return  # Werkzeug bounds it (Content-Length), or there is no body to read
    if "chunked" not in request.headers.get("Transfer-Encoding", "").lower():
        return
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    stream, body = environ["wsgi.input"], bytearray()
    while len(body) <= limit:
        chunk = stream.read(min(64 * 1024, limit + 1 - len(body)))
        if not chunk:
            break
        body += chunk
    if len(body) > limit:
        raise RequestEntityTooLarge()
    environ["wsgi.input"] = io.BytesIO(bytes(body))


def _refuse_control_characters() -> None:
    """Refuse a request whose query string or form holds control characters."""
    args: MultiDict[str, str] = request.args
    name = _first_bad(args.items(multi=True), _CONTROL)
    if name is None and request.mimetype in _FORM_TYPES:
        name = _first_bad(request.form.items(multi=True), _FORM_CONTROL)
    if name is None:
        return
    if request.path.startswith("/api/"):
        field = name if name.isprintable() else "query"
        raise InvalidInput({field: "invalid_characters"})
    raise DomainError("invalid_characters")


def init_app(app: Flask) -> None:
    limit = app.config["MAX_BODY_BYTES"]
    app.config["MAX_CONTENT_LENGTH"] = limit
    app.config["MAX_FORM_MEMORY_SIZE"] = limit
    app.before_request(_bound_chunked_body)
    app.before_request(_refuse_control_characters)
