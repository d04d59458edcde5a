"""RFC 9457 problem+json responses shared by every API."""

from __future__ import annotations

from typing import Any

from flask import Response, json

from core.common.errors import DomainError, InvalidInput
from web.messages import message

PROBLEM_TYPE_BASE = "https://xephang.example/problems/"

_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def problem(
    status: int,
    code: str,
    /,
    *,
    detail: str | None = None,
    errors: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + code,
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "code": code,
        "detail": detail or message(code, **extra),
    }
    if errors:
        body["errors"] = {f: message(c) for f, c in errors.items()}
    # Details only add members: a detail named like one (e.g. `status`) never overwrites it.
    body.update({k: v for k, v in extra.items() if v is not None and k not in body})
    return Response(json.dumps(body), status=status, mimetype="application/problem+json")


def from_domain(err: DomainError, **extra: Any) -> Response:
    """A problem response for a domain refusal."""
    errors = (
        err.errors
        if isinstance(err, InvalidInput)
        else ({err.field: err.code} if err.field else None)
    )
    details = {**err.details, **extra}
    return problem(err.status, err.code, errors=errors, **details)
