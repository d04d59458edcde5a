"""Domain errors. Each carries a stable code the edges map to HTTP and to a message."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base of every refusal the domain makes; `code` names the reason."""

    code = "domain_error"
    status = 400

    def __init__(self, code: str | None = None, *, field: str | None = None, **details: Any):
        self.code = code or self.code
        self.field = field
        self.details = details
        super().__init__(self.code)


class NotFound(DomainError):
    code = "not_found"
    status = 404


class InvalidInput(DomainError):
    """A field's value is malformed; `errors` maps field → code."""

    code = "invalid"
    status = 422

    def __init__(self, errors: dict[str, str], **details: Any):
        self.errors = errors
        super().__init__("invalid", **details)


class Conflict(DomainError):
    """The request is valid but the state forbids it (slot full, wrong status)."""

    code = "conflict"
    status = 409


class LimitExceeded(DomainError):
    code = "limit"
    status = 429


class Forbidden(DomainError):
    code = "forbidden"
    status = 403


class Unauthorized(DomainError):
    """No credentials, or credentials nobody holds (401)."""

    code = "unauthorized"
    status = 401
