"""Staff API tokens for scripts and integrations: trade credentials for a token, revoke it.

`POST /auth/token` answers the same way, in about the same time, for an unknown username,
a wrong password and a switched-off account (`core.access.principals.staff_by_login`), and counts against
the sign-in form's limit (`RATE_LIMIT_LOGIN` per client address, one budget for both). These
endpoints neither read nor set the session cookie, so no CSRF check applies: a forged
request could not read the token in the answer.
"""

from __future__ import annotations

from typing import Any

from flask import Response, current_app

from core.access import staff_tokens
from core.access.principals import principal_for_token, staff_by_login
from core.common.errors import Forbidden, Unauthorized
from core.common.timeutil import iso
from counter import schemas as s
from counter.access import login_attempts
from web.api import ApiBlueprint, Problem, json_response, secured
from web.auth import bearer_token
from web.clock import clock
from web.db import transaction
from web.extensions import db, limiter
from web.settings import staff_token_days

blp = ApiBlueprint(
    "auth_api",
    __name__,
    url_prefix="/api/v1",
    description="Staff API tokens, for scripts and integrations",
    cookie_csrf=False,
)
# The answer carries a secret: no cache may keep it.
_NO_STORE = {"Cache-Control": "no-store"}
_default_limit = limiter.limit(lambda: current_app.config["RATE_LIMIT_DEFAULT"])


@blp.route("/auth/token", methods=["POST"])
@login_attempts
@blp.arguments(s.TokenRequest)
@blp.response(201, s.TokenIssued, description="A new token, shown only now")
@blp.alt_response(
    401,
    schema=Problem,
    description="invalid_login: unknown username, wrong password or "
    "switched-off account (one answer for all three)",
)
@blp.alt_response(
    422,
    schema=Problem,
    description="Missing username or password; days outside 1 to "
    "max_days (errors.days, with max_days)",
)
@blp.alt_response(429, schema=Problem, description="Too many log-in attempts from this address")
def issue_token(body: dict[str, Any]):
    """Sign in with a staff account's username and password and get an API bearer token.

    The token is valid for `days` (the configured default when absent) unless revoked
    earlier: by `DELETE /auth/token`, by a change of the account's password or by its
    deactivation. An account may hold several tokens, one per script.
    """
    default, maximum = staff_token_days()
    # Checked before the password, so a refusal here says nothing about the credentials.
    days = staff_tokens.check_days(body.get("days", default), max_days=maximum)
    # The password check reads and is slow on purpose: outside the write transaction, which
    # on SQLite holds the one writer's lock.
    staff = staff_by_login(db.session, body["username"], body["password"])
    if staff is None:
        raise Unauthorized("invalid_login")
    with transaction() as session:
        token, expires_at = staff_tokens.issue_staff_token(
            session, staff, now=clock(), days=days, max_days=maximum, name=body.get("name") or ""
        )
    return json_response({"token": token, "expires_at": iso(expires_at)}, 201, _NO_STORE)


@blp.route("/auth/token", methods=["DELETE"])
@_default_limit
@blp.response(204, description="Revoked: refused from now on by every web process")
@blp.alt_response(
    401,
    schema=Problem,
    description="unauthorized (no token), token_invalid (unknown, expired or revoked)",
)
@blp.alt_response(403, schema=Problem, description="A device token: revoke devices elsewhere")
@blp.alt_response(429, schema=Problem, description="Too many requests from this address")
@blp.doc(**secured())
def revoke_token():
    """Revoke the staff token this request carries (`Authorization: Bearer <token>`).

    Its other tokens, and the account, stay as they are. A signed-in session is not enough:
    the token to revoke is the one sent.
    """
    token = bearer_token()
    if token is None:
        raise Unauthorized()
    session = db.session()
    now = clock()
    if principal_for_token(session, token, devices=False, staff=True, now=now) is None:
        if principal_for_token(session, token, devices=True, staff=False, now=now) is not None:
            raise Forbidden("forbidden")
        raise Unauthorized("token_invalid")
    with transaction() as session:
        staff_tokens.revoke_staff_token(session, token)
    return Response(status=204, headers=_NO_STORE)
