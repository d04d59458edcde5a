"""Access logs that never keep a secret from a URL.

A few links must carry a secret the first time they are opened — a manage link in a
message (`?token=`), a kiosk's set-up link — and trade it at once for a cookie (see
booking/owner.py, kiosk/binding.py). The request line of that first visit still reaches
the access logs: werkzeug's (`make run`), gunicorn's (deploy/gunicorn.conf.py uses
`GunicornLogger` below) and nginx's (deploy/nginx: a log format with the same rule). Each
writes the value of a secret parameter as `[redacted]`.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from flask import Flask
from gunicorn.glogging import Logger

# Query parameters whose value is a secret.
SECRET_PARAMETERS = ("token", "manage_token")
_SECRET_VALUE = re.compile(
    r"(?i)(?<![^?&;\s])((?:%s)=)[^&;#\s\"]*" % "|".join(SECRET_PARAMETERS)  # noqa: UP031
)
REDACTED = "[redacted]"


def redact(text: str) -> str:
    """`text` with the value of every secret query parameter replaced."""
    return _SECRET_VALUE.sub(r"\1" + REDACTED, text)


def _redacted(value: Any) -> Any:
    return redact(value) if isinstance(value, str) else value


class RedactingFilter(logging.Filter):
    """Redacts the request lines werkzeug's development server logs."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_redacted(arg) for arg in record.args)
        return True


class GunicornLogger(Logger):
    """gunicorn's logger, with secrets redacted from the request line, query and Referer."""

    def atoms(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> dict:
        atoms = super().atoms(resp, req, environ, request_time)
        # Every atom: the request line, the query, the Referer, and the environ and header
        # atoms a format may name. Only requests that could carry a secret pay for it.
        suspect = f"{environ.get('QUERY_STRING', '')} {environ.get('HTTP_REFERER', '')}"
        if any(name in suspect.lower() for name in SECRET_PARAMETERS):
            atoms = {key: _redacted(value) for key, value in atoms.items()}
        return atoms


_filter = RedactingFilter()


def init_app(app: Flask) -> None:
    werkzeug = logging.getLogger("werkzeug")
    if _filter not in werkzeug.filters:
        werkzeug.addFilter(_filter)
