"""Prometheus metrics shared by every package; `xephang` serves them at /metrics.

Features update these objects; they never create their own registry. One process exports
its own figures (each gunicorn web instance is scraped on its own).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

HTTP_REQUESTS = Counter(
    "xephang_http_requests", "HTTP requests answered", ["method", "endpoint", "status"]
)
HTTP_SECONDS = Histogram(
    "xephang_http_request_seconds",
    "Time to answer an HTTP request",
    ["method", "endpoint"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
TICKETS_ISSUED = Counter("xephang_tickets_issued", "Tickets issued", ["source"])
TICKETS_CALLED = Counter(
    "xephang_tickets_called", "Tickets called to a counter (recalls too)", ["recall"]
)
SOCKET_CLIENTS = Gauge(
    "xephang_socket_clients", "Socket.IO clients connected to this process", ["namespace"]
)
EVENT_LAG = Histogram(
    "xephang_event_delivery_lag_seconds",
    "From a domain event's commit to its delivery to a live client",
    ["namespace"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
