"""The OpenAPI document as the API behaves: every refusal documented where it can happen,
as what is served (`application/problem+json`, the Problem schema).

flask-smorest documents each feature's own `alt_response`s as `application/json`, adds its
generic 422 for `@arguments`, and a `default` error response to every operation. What is
served differs: every refusal is problem+json (xephang/errors.py), and some refusals come
from app-wide layers an operation's decorators never mention — body parsing (400),
authentication (401, 403), unknown path values and URL converters (404), the body bound
(413), request guards and argument parsing (422), rate limits (429), a lost database
connection (503). One pass over the finished document, here, states them for each operation
from what the app really does: its security, parameters and body, and the limits
Flask-Limiter holds for its view. No `default` is left: a client (or a fuzzer) can rely on
the listed statuses being the only ones.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from http import HTTPStatus
from typing import Any

from apispec import BasePlugin
from flask import Flask, current_app
from werkzeug.routing import Rule

from web.api import NO_CONTROLS
from web.extensions import api, limiter

PROBLEM_TYPE = "application/problem+json"
PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
_JSON_TYPES = ("application/json", PROBLEM_TYPE)
_METHODS = ("get", "put", "post", "delete", "patch")

# Refusals app-wide layers make, with what they mean here.
_ADDED = {
    400: "The body is not JSON (or not UTF-8)",
    401: "No or unknown bearer token (or no signed-in session)",
    403: "The token or session may not act here",
    404: "No such resource (unknown or malformed path value)",
    413: "Body larger than XEPHANG_MAX_BODY_BYTES",
    422: "Invalid parameters or body (`errors`: field → message); control characters anywhere",
    429: "Too many requests from this client (rate limit)",
    503: "The database connection was lost and is being remade: nothing was done, try again",
}
# When to try again: always after a lost database connection (xephang/errors.py); after a
# rate limit (Flask-Limiter) but not after a per-citizen limit (one remote ticket a day …).
_RETRY_AFTER = {
    "503": ("Seconds to wait before trying again.", True),
    "429": (
        "Seconds to wait, when the request rate is over the limit; absent for a "
        "per-citizen limit, which `detail` explains.",
        False,
    ),
}


def _problem_content(response: dict[str, Any]) -> dict[str, Any]:
    """The response's problem schema (the feature's own, e.g. with `alternatives`)."""
    for media in _JSON_TYPES:
        schema = response.get("content", {}).get(media, {}).get("schema")
        if schema and schema.get("$ref") != "#/components/schemas/Error":
            return {PROBLEM_TYPE: {"schema": schema}}
    return {PROBLEM_TYPE: {"schema": PROBLEM_REF}}


def _problem(status: int, description: str | None = None) -> dict[str, Any]:
    return {
        "description": description or HTTPStatus(status).phrase,
        "content": {PROBLEM_TYPE: {"schema": PROBLEM_REF}},
    }


def _operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in doc.get("paths", {}).items():
        for method in _METHODS:
            if method in item:
                yield path, method, item[method]


def _endpoints(app: Flask) -> dict[tuple[str, str], Rule]:
    """(OpenAPI path, method) → the URL rule behind it."""
    plugin = api.flask_plugin
    found = {}
    for rule in app.url_map.iter_rules():
        for method in rule.methods or ():
            found[(plugin.flaskpath2openapi(rule.rule), method.lower())] = rule
    return found


def _rate_limited(app: Flask, rule: Rule | None) -> bool:
    """Whether Flask-Limiter holds a limit for the rule's view (its own or its blueprint's)."""
    if rule is None:
        return False
    view = app.view_functions[rule.endpoint]
    manager = limiter.limit_manager
    if manager.decorated_limits(f"{view.__module__}.{view.__name__}"):
        return True
    blueprint = rule.endpoint.rpartition(".")[0]
    return bool(blueprint and manager.blueprint_limits(app, blueprint))


def _parameters(doc: dict[str, Any], path: str, op: dict[str, Any]) -> list[dict[str, Any]]:
    return [*doc["paths"][path].get("parameters", []), *op.get("parameters", [])]


def _refusals(op: dict[str, Any], params: list[dict[str, Any]], limited: bool) -> set[int]:
    """The refusals app-wide layers make for this operation."""
    statuses = set()
    if op.get("security"):
        statuses |= {401, 403}
    if any(p.get("in") == "path" for p in params):
        statuses.add(404)
    if "requestBody" in op:
        statuses |= {400, 413, 422}
    if any(p.get("in") in ("query", "header") for p in params):
        statuses.add(422)
    if limited:
        statuses.add(429)
    # Every operation reads the database; a connection cut under it answers 503.
    statuses.add(503)
    return statuses


def _document_guard(params: list[dict[str, Any]]) -> None:
    """Query strings never carry control characters (xephang/guards.py): say so on every
    string query parameter that does not already say more."""
    for param in params:
        schema = param.get("schema", {})
        if param.get("in") == "query" and schema.get("type") == "string":
            schema.setdefault("pattern", NO_CONTROLS)


def truthful(doc: dict[str, Any], app: Flask) -> dict[str, Any]:
    """`doc` (flask-smorest's) with every refusal as served: see the module's docstring."""
    doc = copy.deepcopy(doc)
    components = doc.setdefault("components", {})
    shared = components.get("responses", {})
    rules = _endpoints(app)
    for path, method, op in _operations(doc):
        responses = op.setdefault("responses", {})
        responses.pop("default", None)
        for code, response in list(responses.items()):
            if not code.isdigit() or int(code) < 400:
                continue
            if "$ref" in response:  # flask-smorest's shared UNPROCESSABLE_ENTITY, etc.
                name = response["$ref"].rsplit("/", 1)[-1]
                response = copy.deepcopy(shared.get(name, {}))
            response["content"] = _problem_content(response)
            responses[code] = response
        limited = _rate_limited(app, rules.get((path, method)))
        params = _parameters(doc, path, op)
        _document_guard(params)
        for status in sorted(_refusals(op, params, limited)):
            responses.setdefault(str(status), _problem(status, _ADDED[status]))
        for code, (description, required) in _RETRY_AFTER.items():
            if code in responses:
                responses[code].setdefault("headers", {})["Retry-After"] = {
                    "description": description,
                    "required": required,
                    "schema": {"type": "integer", "minimum": 0},
                }
        op["responses"] = dict(sorted(responses.items()))
    # flask-smorest's generic error schema and shared responses: no longer referenced.
    components.pop("responses", None)
    components.get("schemas", {}).pop("Error", None)
    return doc


class SchemaRules(BasePlugin):
    """Adds a request schema's cross-field rules (its `openapi_rules`, e.g. "a procedure or a
    service") to its component: the same rules its `validates_schema` checks, which the
    marshmallow plugin cannot see."""

    def schema_helper(self, name: str, definition: dict, **kwargs: Any) -> dict | None:
        schema = kwargs.get("schema")
        cls = schema if isinstance(schema, type) else type(schema)
        rules = getattr(cls, "openapi_rules", None)
        return copy.deepcopy(rules) if rules else None


def init_app(app: Flask) -> None:
    """Serve the truthful document at flask-smorest's address (after the blueprints)."""
    endpoint = "api-docs.openapi_json"
    cached: list[str] = []

    def openapi_json():
        if not cached:  # the document is fixed once the app is built
            cached.append(
                json.dumps(truthful(api.spec.to_dict(), current_app._get_current_object()))
            )
        return current_app.response_class(cached[0], mimetype="application/json")

    app.view_functions[endpoint] = openapi_json
