"""Error handling: problem+json under /api, friendly Vietnamese pages elsewhere."""

from __future__ import annotations

import logging

from flask import Flask, render_template, request
from flask_limiter.errors import RateLimitExceeded
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import DBAPIError
from werkzeug.exceptions import HTTPException

from core.common.errors import DomainError
from web.messages import message
from web.problems import from_domain, problem

log = logging.getLogger(__name__)

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    429: "rate_limited",
    500: "server_error",
}


def _wants_problem() -> bool:
    return request.path.startswith("/api/")


def _page(status: int, code: str):
    return render_template("error.html", status=status, text=message(code)), status


def init_app(app: Flask) -> None:
    @app.errorhandler(DomainError)
    def _domain(err: DomainError):
        if _wants_problem():
            return from_domain(err)
        return _page(err.status, err.code)

    @app.errorhandler(CSRFError)
    def _csrf(err: CSRFError):
        if _wants_problem():
            return problem(400, "csrf")
        return _page(400, "csrf")

    @app.errorhandler(RateLimitExceeded)
    def _limited(err: RateLimitExceeded):
        if _wants_problem():
            return problem(429, "rate_limited", limit=str(err.limit.limit))
        return _page(429, "rate_limited")

    @app.errorhandler(HTTPException)
    def _http(err: HTTPException):
        status = err.code or 500
        code = _CODES.get(status, "bad_request")
        response = app.make_response(
            problem(status, code) if _wants_problem() else _page(status, code)
        )
        # The exception's own headers, e.g. a 405's Allow (RFC 9110: it must be sent).
        for name, value in err.get_headers():
            if name.lower() != "content-type":
                response.headers[name] = value
        return response

    @app.errorhandler(DBAPIError)
    def _database(err: DBAPIError):
        if not err.connection_invalidated:
            return _unexpected(err)
        # The database went away (restart, failover): SQLAlchemy has dropped the pooled
        # connections, the next request reconnects. Nothing was written.
        log.warning("database connection lost on %s %s: %s", request.method, request.path, err)
        response = (
            problem(503, "database_unavailable")
            if _wants_problem()
            else _page(503, "database_unavailable")
        )
        response = app.make_response(response)
        response.headers["Retry-After"] = "2"
        return response

    @app.errorhandler(Exception)
    def _unexpected(err: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        if _wants_problem():
            return problem(500, "server_error")
        return _page(500, "server_error")
