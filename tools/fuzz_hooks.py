"""schemathesis hooks for tools/fuzz_api.py: credentials per operation and real values.

Loaded by schemathesis (SCHEMATHESIS_HOOKS=fuzz_hooks) in its own process; the city's tokens
and values come from tools/fuzz_api.py in XEPHANG_FUZZ_CITY.

- Credentials: each operation that requires the bearer scheme gets the token of who really
  calls it: the kiosk's device token for the kiosk's routes, an officer's staff token for
  counters and tickets, a centre manager's for load and statistics, the city operator's for
  dispatch plans, a script account's for revoking its token. schemathesis still sends some
  requests without it (ignored_auth), which must answer 401.
- Real values: half the positive cases have up to three path parameters, query parameters or
  body fields replaced by values that exist (a centre code, a ticket, a free slot, a booking
  code with its manage token or phone digits …), so requests get past "not found" into the
  code behind it. Negative cases are left as generated.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

import schemathesis
from hypothesis import strategies as st

CITY: dict[str, Any] = json.loads(os.environ.get("XEPHANG_FUZZ_CITY", "{}"))
TOKENS: dict[str, str] = CITY.get("tokens", {})
VALUES: dict[str, list[Any]] = CITY.get("values", {})

# Who calls which secured operation, by path (first match wins).
_CALLERS = (
    (re.compile(r"^/api/v1/centres/\{code\}/(check-ins|tickets)$"), "kiosk"),
    (re.compile(r"^/api/v1/(counters/|tickets/|centres/\{code\}/queue$)"), "officer"),
    # A centre manager sees their centre's load and figures (403 for another centre's);
    # dispatch plans are the city's, for operators.
    (re.compile(r"^/api/v1/(load|stats/)"), "manager"),
    (re.compile(r"^/api/v1/dispatch-plan"), "operator"),
    (re.compile(r"^/api/v1/auth/token$"), "script"),
)


def _caller(case: schemathesis.Case, ctx: schemathesis.AuthContext) -> str:
    path = ctx.operation.path
    return next((who for pattern, who in _CALLERS if pattern.search(path)), "operator")


@schemathesis.auth(cache_by_key=_caller).apply_to(
    schemathesis.openapi.require_security_scheme("bearerAuth")
)
class StaffAndDeviceTokens:
    def get(self, case: schemathesis.Case, ctx: schemathesis.AuthContext) -> str:
        return TOKENS[_caller(case, ctx)]

    def set(self, case: schemathesis.Case, data: str, ctx: schemathesis.AuthContext) -> None:
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {data}"


def _path_value(path: str, name: str) -> list[Any]:
    """Real values for path parameter `name` of `path`."""
    if name == "code":
        if path.startswith("/api/v1/appointments"):
            return VALUES.get("booking", [])
        if path.startswith("/api/v1/procedures"):
            return VALUES.get("procedure", [])
        if re.search(r"/centres/\{code\}/(check-ins|tickets|queue)$", path):
            return [CITY.get("kiosk_centre")]
        return VALUES.get("centre", [])
    return VALUES.get(name, [])


def _choices(case: schemathesis.Case) -> list[tuple[str, str, Any]]:
    """(where, name, value) replacements that make `case` reach real data."""
    path = case.operation.path
    out: list[tuple[str, str, Any]] = []
    for name in case.path_parameters or {}:
        out += [("path", name, value) for value in _path_value(path, name)]
    for name, key in _FIELDS.items():
        if isinstance(case.query, dict) and name in case.query:
            out += [("query", name, value) for value in VALUES.get(key, [])]
        if isinstance(case.body, dict) and name in case.body:
            out += [("body", name, value) for value in VALUES.get(key, [])]
    return out


# Query and body fields (present in a case) that get real values: field → kind of value.
_FIELDS = {
    "procedure": "procedure",
    "centre": "centre",
    "slot_id": "slot_id",
    "service": "service",
    "code": "booking",  # a check-in's booking code …
    "phone_last4": "phone_last4",  # … and the phone it was booked with
    "counter": "counter_number",  # a transfer to a counter
    "username": "username",  # a staff token asked for with real credentials
    "password": "password",
}


def _replace(case: schemathesis.Case, where: str, name: str, value: Any) -> schemathesis.Case:
    if where == "path":
        case.path_parameters = {**case.path_parameters, name: value}
        if name == "code" and case.operation.path.startswith("/api/v1/appointments"):
            tokens = dict(zip(VALUES["booking"], VALUES.get("manage_token", []), strict=False))
            case.headers = {**(case.headers or {}), "X-Manage-Token": tokens.get(value, "")}
    elif where == "query":
        case.query = {**case.query, name: value}
    else:
        case.body = {**case.body, name: value}
    return case


@schemathesis.hook
def flatmap_case(ctx: Any, case: schemathesis.Case) -> Any:
    meta = case.meta
    if meta is not None and not meta.generation.mode.is_positive:
        # A negative case keeps what makes it negative: a real value put in its place would
        # make the request valid while schemathesis still counts it as invalid.
        return st.just(case)
    choices = _choices(case)
    if not choices:
        return st.just(case)
    # Up to three at once: a check-in needs both its booking code and the phone's digits.
    picked = st.lists(st.sampled_from(choices), min_size=1, max_size=3).map(
        lambda chosen: _replace_all(case, chosen)
    )
    return st.one_of(st.just(case), picked)


def _replace_all(case: schemathesis.Case, chosen: list[tuple[str, str, Any]]) -> schemathesis.Case:
    for choice in chosen:
        case = _replace(case, *choice)
    return case
