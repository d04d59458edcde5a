"""Operator endpoints: `/health` (database and Redis reachability) and `/metrics` (Prometheus).

Health: the database is the truth. Reachable database → 200, `status` "ok", or "degraded"
when Redis is configured but unreachable (booking, check-in and calling still work; live
boards in other processes and shared rate limits do not). Unreachable database → 503,
`status` "down". A load balancer takes an instance out only on 503.

Metrics: this process's own figures (one gunicorn worker per instance, each scraped on its
own). HTTP requests are counted by URL rule — never the raw path, so an attacker cannot
grow the label set — with "unmatched" for 404s outside any rule. Tickets issued and called
come from committed domain events. Socket.IO figures (`xephang_socket_clients`,
`xephang_event_delivery_lag_seconds`) are kept by display/. Only clients in
`XEPHANG_METRICS_ALLOW` may read `/metrics`; others get 404.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import threading
import time
from importlib import metadata
from typing import Any

from flask import Flask, Response, abort, current_app, g, jsonify, request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import text

from core.common import events
from web.extensions import db, limiter
from web.metrics import HTTP_REQUESTS, HTTP_SECONDS, SOCKET_CLIENTS, TICKETS_CALLED, TICKETS_ISSUED

log = logging.getLogger(__name__)

REDIS_TIMEOUT = 0.5  # seconds: a health check must answer fast even when Redis hangs
NAMESPACES = ("/board", "/ticket", "/counter")  # shown at 0 before any client connects

_subscribe_lock = threading.Lock()
_subscribed = False

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


# --- domain events → ticket counters (once per process) --------------------------------


def _on_issued(event: events.DomainEvent) -> None:
    TICKETS_ISSUED.labels(source=str(event.data.get("source", "unknown"))).inc()


def _on_called(event: events.DomainEvent) -> None:
    recall = bool(event.data.get("recall", event.name == "ticket.recalled"))
    TICKETS_CALLED.labels(recall="true" if recall else "false").inc()


def subscribe_once() -> None:
    """Subscribe the ticket counters to domain events; later calls (another create_app in the
    same process, as tests do) change nothing, so no event is counted twice."""
    global _subscribed
    with _subscribe_lock:
        if _subscribed:
            return
        events.subscribe("ticket.issued", _on_issued)
        events.subscribe("ticket.called", _on_called)
        events.subscribe("ticket.recalled", _on_called)
        _subscribed = True


# --- request metrics -----------------------------------------------------------------------


def _endpoint() -> str:
    rule = request.url_rule
    return rule.rule if rule is not None else "unmatched"


def _before() -> None:
    g._metrics_started = time.perf_counter()


def _after(response: Response) -> Response:
    started = g.pop("_metrics_started", None)
    endpoint = _endpoint()
    HTTP_REQUESTS.labels(request.method, endpoint, str(response.status_code)).inc()
    if started is not None:
        HTTP_SECONDS.labels(request.method, endpoint).observe(time.perf_counter() - started)
    return response


# --- health --------------------------------------------------------------------------------


class _Transitions:
    """Logs a component going down and coming back once each, not on every health check."""

    def __init__(self) -> None:
        self._down: set[str] = set()
        self._lock = threading.Lock()

    def report(self, what: str, ok: bool, error: BaseException | None = None) -> None:
        with self._lock:
            changed = (what in self._down) == ok
            if ok:
                self._down.discard(what)
            else:
                self._down.add(what)
        if changed and ok:
            log.warning("health: %s reachable again", what)
        elif changed:
            log.warning("health: %s unreachable (%s: %s)", what, type(error).__name__, error)


_transitions = _Transitions()


def _database_ok() -> bool:
    try:
        db.session.execute(text("SELECT 1"))
    except Exception as exc:
        _transitions.report("database", False, exc)
        return False
    else:
        _transitions.report("database", True)
        return True
    finally:
        try:
            db.session.rollback()
        except Exception:
            log.debug("health: rollback after the database check failed", exc_info=True)


def _redis_client(app: Flask) -> Redis | None:
    url = app.config.get("REDIS_URL") or ""
    if not url:
        return None
    client = app.extensions.get("xephang_health_redis")
    if client is None:
        client = Redis.from_url(
            url,
            socket_timeout=REDIS_TIMEOUT,
            socket_connect_timeout=REDIS_TIMEOUT,
            retry_on_timeout=False,
        )
        app.extensions["xephang_health_redis"] = client
    return client


def _redis_ok(app: Flask) -> bool | None:
    client = _redis_client(app)
    if client is None:
        return None
    try:
        client.ping()
    except (RedisError, OSError) as exc:
        _transitions.report("Redis", False, exc)
        return False
    _transitions.report("Redis", True)
    return True


@functools.cache
def _version() -> str:
    try:
        return metadata.version("xephang")
    except metadata.PackageNotFoundError:
        return "unknown"


def health_report(app: Flask) -> tuple[dict[str, Any], int]:
    started = time.perf_counter()
    database = _database_ok()
    redis_ok = _redis_ok(app)
    if not database:
        status, code = "down", 503
    elif redis_ok is False:
        status, code = "degraded", 200
    else:
        status, code = "ok", 200
    body = {
        "status": status,
        "database": database,
        "redis": redis_ok,
        "version": _version(),
        "checked_ms": round((time.perf_counter() - started) * 1000, 1),
    }
    return body, code


# --- metrics allow-list --------------------------------------------------------------------


def parse_networks(value: str) -> list[Network] | None:
    """CIDR list from the setting; None means everyone ("*")."""
    networks: list[Network] = []
    for part in (p.strip() for p in value.split(",")):
        if not part:
            continue
        if part == "*":
            return None
        networks.append(ipaddress.ip_network(part, strict=False))
    return networks


def client_allowed(address: str | None, networks: list[Network] | None) -> bool:
    if networks is None:
        return True
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in net for net in networks)


# --- wiring --------------------------------------------------------------------------------


def init_app(app: Flask) -> None:
    subscribe_once()
    for namespace in NAMESPACES:
        SOCKET_CLIENTS.labels(namespace=namespace)
    # Fails at start-up, not at the first scrape, when the setting is malformed.
    app.extensions["xephang_metrics_allow"] = parse_networks(app.config["METRICS_ALLOW"])
    app.before_request(_before)
    app.after_request(_after)

    @app.get("/health")
    @limiter.exempt
    def health():
        body, code = health_report(current_app)
        response = jsonify(body)
        response.status_code = code
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.get("/metrics")
    @limiter.exempt
    def metrics():
        if not client_allowed(request.remote_addr, app.extensions["xephang_metrics_allow"]):
            abort(404)
        return Response(generate_latest(), content_type=CONTENT_TYPE_LATEST)
