"""gunicorn settings for one xephang web instance: `gunicorn -c deploy/gunicorn.conf.py wsgi:app`.

Flask-SocketIO in threading mode (simple-websocket) wants exactly one worker per gunicorn:
scale by running several instances (one per port, e.g. the systemd template
xephang-web@8001, @8002 …) sharing Redis as the Socket.IO message queue (XEPHANG_REDIS_URL),
behind nginx. See deploy/README.md.

Every open websocket pins one thread for its lifetime (plus its reader thread), so
XEPHANG_THREADS must cover the boards and phones connected to this instance *plus* headroom
for HTTP requests; with too few threads, HTTP requests queue behind sockets and time out.

How many instances: one per core (two on a 2-core host), never a single one for a whole
machine. Measured with bench/settings.py (2 cores, 8 clients, the same settings for xephang
and the bare Flask endpoint, median of 4 interleaved rounds; req/s walk-in / call-next,
p99 ms): one gthread process 412 / 200 (p99 37 / 43) with the bare endpoint capped at 1,847
by the GIL; two gthread processes 451 / 236 (35 / 37); four 477 / 256 (39 / 43); sync -w 2
520 / 200 (28 / 33); sync -w 4 497 / 233 (27 / 34). A request spends part of its time waiting
on PostgreSQL, so a second process per machine pays (a thread of the same process can use
the wait, but only one thread runs Python at a time); past one per core the machine is
CPU-bound (web processes, PostgreSQL and clients share the cores) and more processes add
little throughput and some tail latency. Sync workers would serve plain HTTP as well, but
cannot hold websockets, so instances stay gthread with one worker each.

Settings (environment, defaults in xephang/config.py like every other setting):
  XEPHANG_BIND      address to listen on (default 127.0.0.1:8000; several: comma-separated)
  XEPHANG_THREADS   threads of the one worker (default 200)
Command-line options given after `-c deploy/gunicorn.conf.py` override this file.
"""

from __future__ import annotations

import os

from xephang.config import DEFAULTS


def _env(name: str) -> str:
    value = os.environ.get(f"XEPHANG_{name}", "").strip()
    return value or str(DEFAULTS[name])


bind = [part.strip() for part in _env("BIND").split(",") if part.strip()]

# One worker per instance: Flask-SocketIO keeps its clients in the process's memory.
worker_class = "gthread"
workers = 1
threads = int(_env("THREADS"))
# gthread stops accepting past worker_connections; every websocket counts, so keep it above
# the thread count (idle keep-alive HTTP connections need room too).
worker_connections = max(1000, threads + 200)

# The worker's heartbeat comes from its main loop, not from request threads, so long-lived
# websockets do not trip `timeout`; it only catches a worker that stopped responding.
timeout = 30
graceful_timeout = 10
keepalive = 5

# Behind nginx on the same host: trust its X-Forwarded-Proto. The client address comes from
# X-Forwarded-For in the app (XEPHANG_PROXY_HOPS, werkzeug's ProxyFix), not here.
forwarded_allow_ips = "127.0.0.1,::1"

# Logs to stderr (the journal under systemd, `docker logs` in compose). Access log: client,
# request line, status, bytes, duration in ms, user agent.
# The client (%(h)s) is the address ProxyFix found in X-Forwarded-For (XEPHANG_PROXY_HOPS),
# and secrets in query strings are written as [redacted] (xephang/access_log.py).
accesslog = "-"
access_log_format = '%(h)s "%(r)s" %(s)s %(B)s %(M)sms "%(a)s"'
logger_class = "xephang.access_log.GunicornLogger"
errorlog = "-"
loglevel = "info"

# No gunicornc control socket: it defaults to one path per user ($HOME/.gunicorn/gunicorn.ctl),
# which every instance on the host would share. Instances are managed by signals (systemd).
control_socket_disable = True

# Never preload: each instance builds its own app (its own database pool and socket state).
preload_app = False
proc_name = "xephang-web"
