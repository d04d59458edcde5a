"""Benchmark machinery: scratch PostgreSQL database, gunicorn on loopback, HTTP load, tables.

The load comes from one process per client: each is single-threaded, so a client never
waits for the GIL behind another client and the latency it records is the server's (plus
loopback), not Python's thread switching. Every run is bounded by a request count and a
duration, talks only to 127.0.0.1, and stops by itself.
"""

from __future__ import annotations

import http.client
import multiprocessing as mp
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
HOST = "127.0.0.1"


def postgres_server_url() -> str:
    """Where to create the scratch database: the bench's own setting, the tests', or local."""
    return (
        os.environ.get("XEPHANG_BENCH_POSTGRES_URL")
        or os.environ.get("XEPHANG_TEST_POSTGRES_URL")
        or DEFAULT_POSTGRES
    )


@contextmanager
def scratch_database(server_url: str) -> Iterator[str]:
    """A new, empty PostgreSQL database for one bench run; dropped afterwards."""
    import sqlalchemy as sa

    name = f"xephang_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield (
            sa.engine.make_url(server_url).set(database=name).render_as_string(hide_password=False)
        )
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class ServerSettings:
    """gunicorn settings, the same for every server measured in one run."""

    worker_class: str = "sync"
    workers: int = 2
    threads: int = 1

    def args(self) -> list[str]:
        args = ["-k", self.worker_class, "-w", str(self.workers)]
        if self.worker_class == "gthread":
            args += ["--threads", str(self.threads)]
        return args

    def describe(self) -> str:
        text = f"gunicorn -k {self.worker_class} -w {self.workers}"
        return text + (f" --threads {self.threads}" if self.worker_class == "gthread" else "")

    @property
    def concurrency(self) -> int:
        """Requests one server handles at once: the database pool must cover it."""
        return self.workers * (self.threads if self.worker_class == "gthread" else 1)


def _get(port: int, path: str, timeout: float = 2.0) -> int:
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


@contextmanager
def gunicorn(
    app_spec: str, settings: ServerSettings, env: dict[str, str], ready_path: str = "/health"
) -> Iterator[int]:
    """Serve `app_spec` on a free loopback port until the block ends; yields the port."""
    port = free_port()
    log = tempfile.NamedTemporaryFile("w+", prefix="xephang-bench-", suffix=".log")  # noqa: SIM115
    cmd = [
        sys.executable,
        "-m",
        "gunicorn",
        app_spec,
        "--bind",
        f"{HOST}:{port}",
        "--chdir",
        str(ROOT),
        "--log-level",
        "warning",
        "--error-logfile",
        log.name,
        *settings.args(),
    ]
    # The server's own output goes to the log too: shown if it fails to start, else quiet.
    server = subprocess.Popen(
        cmd, env={**os.environ, **env}, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        _wait_ready(server, port, ready_path, log)
        yield port
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


def _wait_ready(server: subprocess.Popen, port: int, path: str, log) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            break
        try:
            if _get(port, path) == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    log.seek(0)
    raise RuntimeError(f"gunicorn did not become ready on port {port}:\n{log.read()[-4000:]}")


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    body: bytes | None = None
    headers: dict[str, str] | None = None


@dataclass
class LoadResult:
    clients: int
    elapsed: float
    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: int = 0

    @property
    def count(self) -> int:
        return len(self.latencies_ms)

    @property
    def rate(self) -> float:
        return self.count / self.elapsed if self.elapsed else 0.0

    def percentile(self, p: float) -> float:
        return percentile(self.latencies_ms, p)


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


_JSON = {"Content-Type": "application/json", "Accept": "application/json"}


def _client(port: int, calls: list[Call], start, duration: float, out) -> None:
    """One client: keep-alive connection, its calls in order, until done or `duration` is up."""
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    conn.request("GET", "/health")  # connected before the start line
    conn.getresponse().read()
    latencies, statuses, errors = [], Counter(), 0
    start.wait(timeout=120)
    began = time.perf_counter()
    stop_at = time.monotonic() + duration
    for call in calls:
        if time.monotonic() >= stop_at:
            break
        t0 = time.perf_counter()
        try:
            headers = {**_JSON, **call.headers} if call.headers else _JSON
            conn.request(call.method, call.path, body=call.body, headers=headers)
            response = conn.getresponse()
            response.read()
        except (OSError, http.client.HTTPException):
            errors += 1
            conn.close()  # the next request reconnects
            continue
        latencies.append((time.perf_counter() - t0) * 1000.0)
        statuses[response.status] += 1
        if response.will_close:
            conn.close()
    out.put((latencies, dict(statuses), errors, began, time.perf_counter()))
    conn.close()


def run_load(port: int, calls_per_client: list[list[Call]], duration: float) -> LoadResult:
    """Drive the server with one process per client, started together; bounded in time."""
    ctx = mp.get_context("spawn")  # children import nothing of the app or the database
    # Every client connects, then all are released together (the +1 is this process).
    start, out = ctx.Barrier(len(calls_per_client) + 1), ctx.Queue()
    procs = [
        ctx.Process(target=_client, args=(port, calls, start, duration, out), daemon=True)
        for calls in calls_per_client
    ]
    for proc in procs:
        proc.start()
    start.wait(timeout=120)
    results = [out.get(timeout=duration + 120) for _ in procs]
    for proc in procs:
        proc.join(timeout=10)
    result = LoadResult(clients=len(procs), elapsed=0.0)
    first = min(r[3] for r in results)
    last = max(r[4] for r in results)
    result.elapsed = last - first
    for latencies, statuses, errors, *_ in results:
        result.latencies_ms.extend(latencies)
        result.statuses.update(statuses)
        result.errors += errors
    return result


def split(calls: list[Call], clients: int) -> list[list[Call]]:
    """Deal calls round-robin to clients."""
    return [calls[i::clients] for i in range(clients)]


def print_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    cells = [[str(h) for h in headers]] + [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    print(f"\n{title}")
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(cells[0], widths, strict=True)) + " |"
    print(line)
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in cells[1:]:
        print(
            "| "
            + " | ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
            + " |"
        )


def _fmt(value: object) -> str:
    if isinstance(value, float):
        if value != value:  # NaN
            return "–"
        return f"{value:,.0f}" if value >= 100 else f"{value:.2f}" if value < 10 else f"{value:.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)
