"""CPU per request of the three hot API paths, in-process: walk-in issue, call-next (+ start)
and booking, on PostgreSQL.

Wall-clock benches (bench/floor.py, bench/booking.py) measure what the machine gives them,
which on a shared machine is whatever the other users leave. CPU time spent by the request
itself does not depend on them: this tool serves each request straight through the app's
WSGI callable (no server, no HTTP client; the WSGI environ is built before the clock starts)
and reports, per path:

- CPU ms per request of the serving thread (`time.thread_time`): Python's cost of the path;
- process CPU ms per request over the whole run (`time.process_time`, after draining the
  live-update dispatcher): also what background threads spent because of the requests;
- SQL statements per request (SQLAlchemy `before_cursor_execute` on the serving thread);
- wall ms per request (p50, p99): includes the database round trips.

`--profile PATH` adds one more pass per path under cProfile, writes PATH.<path>.prof and
prints the top 30 functions by cumulative CPU time (the profiled pass is not in the table).

Runs on a scratch PostgreSQL database (dropped at the end) created from --database-url,
XEPHANG_BENCH_POSTGRES_URL or XEPHANG_TEST_POSTGRES_URL. Not a test: figures depend on the
machine, but far less on its other users than requests per second do.

    python bench/profile_hot.py                    # 300 requests per path
    python bench/profile_hot.py -n 1000 --profile /tmp/hot
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import percentile, postgres_server_url, print_table, scratch_database

PATHS = ("walk-in", "call-next", "start", "booking", "bare", "bare tx")
COUNTERS = 8
SLOTS = 60


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--requests", type=int, default=300, help="measured per path")
    parser.add_argument("--warmup", type=int, default=60, help="unmeasured, per path")
    parser.add_argument("--database-url", default="", help="PostgreSQL server URL")
    parser.add_argument("--profile", metavar="PATH", help="cProfile pass: PATH.<path>.prof")
    parser.add_argument("--top", type=int, default=30, help="functions shown per profile")
    return parser.parse_args()


# --- what is served -------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    body: bytes | None = None
    token: str | None = None

    def environ(self) -> dict:
        from werkzeug.test import EnvironBuilder

        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        builder = EnvironBuilder(
            method=self.method,
            path=self.path,
            data=self.body,
            headers=headers,
            content_type="application/json" if self.body is not None else None,
            environ_base={"REMOTE_ADDR": "127.0.0.1"},
        )
        try:
            return builder.get_environ()
        finally:
            builder.close()


@dataclass
class Served:
    status: int
    body: bytes
    cpu_ms: float
    wall_ms: float
    statements: int


class StatementCounter:
    """SQL statements sent by one thread (the serving one), not by background threads."""

    def __init__(self, engine) -> None:
        from sqlalchemy import event

        self.thread = threading.get_ident()
        self.count = 0
        event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, *_args) -> None:
        if threading.get_ident() == self.thread:
            self.count += 1


class BackendCpu:
    """CPU spent by the PostgreSQL backends of an engine's connections (PostgreSQL on this
    machine: read from /proc). Statements cost the database CPU too, and on a small machine
    the database shares the cores with the web workers."""

    def __init__(self, engine) -> None:
        from sqlalchemy import event

        self.pids: set[int] = set()
        engine.dispose()  # every connection from now on is seen connecting
        event.listen(engine, "connect", self._connected)

    def _connected(self, dbapi_connection, _record) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("SELECT pg_backend_pid()")
        self.pids.add(cursor.fetchone()[0])
        cursor.close()
        dbapi_connection.rollback()

    def ms(self) -> float:
        """CPU ms of every backend seen so far (those gone count from when they were seen)."""
        ticks = 0
        for pid in self.pids:
            try:
                stat = Path(f"/proc/{pid}/stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
        return ticks * 1000 / os.sysconf("SC_CLK_TCK")


class Server:
    """Calls the app's WSGI callable directly, timing only the app."""

    def __init__(self, app, statements: StatementCounter) -> None:
        self.app = app
        self.statements = statements
        self.profiler: cProfile.Profile | None = None

    def serve(self, request: Request) -> Served:
        environ = request.environ()
        status: list[str] = []

        def start_response(line: str, _headers, _exc_info=None):
            status.append(line)

        before = self.statements.count
        if self.profiler is not None:
            self.profiler.enable()
        wall, cpu = time.perf_counter(), time.thread_time()
        result = self.app(environ, start_response)
        try:
            body = b"".join(result)
        finally:
            if hasattr(result, "close"):
                result.close()
        cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
        if self.profiler is not None:
            self.profiler.disable()
        return Served(
            int(status[0].split()[0]),
            body,
            cpu * 1000,
            wall * 1000,
            self.statements.count - before,
        )


# --- the floor and the slots ----------------------------------------------------------------


@dataclass
class Scene:
    centre_code: str
    kiosk_tokens: list[str]
    officers: list[tuple[int, str]]
    slot_ids: list[int]
    procedure: str
    citizens: int = 0


def build_scene(app) -> Scene:
    """The bench floor's always-open centre, plus a procedure and roomy future slots."""
    from bench.floor import build_floor

    floor = build_floor(app, 2, COUNTERS)
    slot_ids, procedure = add_bookable_slots(app, floor.centre_code, SLOTS)
    return Scene(floor.centre_code, floor.kiosk_tokens, floor.officers, slot_ids, procedure)


def add_bookable_slots(app, centre_code: str, count: int) -> tuple[list[int], str]:
    """A procedure of the centre's field and `count` half-hour slots from tomorrow, each with
    room for any bench: (slot ids, procedure code)."""
    from core.catalogue.search import index
    from core.common.text import fold
    from core.common.timeutil import local_day, utcnow
    from core.models import Centre, Procedure, ProcedureLevel, Slot
    from web.extensions import db

    now = utcnow()
    with app.app_context():
        centre = db.session.query(Centre).filter_by(code=centre_code).one()
        service = centre.services[0]
        name = "Thủ tục đăng ký khai sinh"
        db.session.add(
            Procedure(
                code="1.001193",
                name=name,
                name_folded=fold(name),
                field_id=service.fields[0].id,
                level=ProcedureLevel.COMMUNE,
            )
        )
        first = now.replace(minute=0, second=0, microsecond=0) + timedelta(days=1)
        slots = []
        for i in range(count):
            starts = first + timedelta(minutes=30 * i)
            slot = Slot(
                centre_id=centre.id,
                service_id=service.id,
                day=local_day(starts),
                starts_at=starts,
                ends_at=starts + timedelta(minutes=30),
                capacity=100_000,
            )
            db.session.add(slot)
            slots.append(slot)
        db.session.commit()
        slot_ids = [s.id for s in slots]
        db.session.remove()
        index.invalidate()
    return slot_ids, "1.001193"


# --- request streams ------------------------------------------------------------------------


def walk_in(scene: Scene, n: int) -> Request:
    body = json.dumps({"service": "A"}).encode()
    token = scene.kiosk_tokens[n % len(scene.kiosk_tokens)]
    return Request("POST", f"/api/v1/centres/{scene.centre_code}/tickets", body, token)


def booking(scene: Scene, n: int) -> Request:
    scene.citizens += 1
    c = scene.citizens
    body = {
        "slot_id": scene.slot_ids[c % len(scene.slot_ids)],
        "procedure": scene.procedure,
        "full_name": "Nguyễn Thị Lan",
        "phone": f"09{c % 10**8:08d}",
        "citizen_id": f"079185{c % 10**6:06d}",
        "consent": True,
    }
    return Request("POST", "/api/v1/appointments", json.dumps(body).encode())


@dataclass
class Sample:
    served: list[Served] = field(default_factory=list)
    process_cpu_ms: float = 0.0
    database_cpu_ms: float = 0.0

    def add(self, served: Served) -> None:
        self.served.append(served)


def run_simple(server: Server, make: Callable[[int], Request], count: int, expect: int) -> Sample:
    sample = Sample()
    for i in range(count):
        served = server.serve(make(i))
        if served.status != expect:
            raise SystemExit(f"{make(i).path}: {served.status} {served.body[:300]!r}")
        sample.add(served)
    return sample


def run_floor(server: Server, scene: Scene, count: int) -> tuple[Sample, Sample]:
    """Officers in turn: call-next (completing the ticket served there), then start it."""
    calls, starts = Sample(), Sample()
    for i in range(count):
        counter_id, token = scene.officers[i % len(scene.officers)]
        served = server.serve(
            Request("POST", f"/api/v1/counters/{counter_id}/call-next", None, token)
        )
        if served.status != 200:
            raise SystemExit(f"call-next: {served.status} {served.body[:300]!r}")
        calls.add(served)
        public_id = json.loads(served.body)["ticket"]["public_id"]
        served = server.serve(Request("POST", f"/api/v1/tickets/{public_id}/start", None, token))
        if served.status != 200:
            raise SystemExit(f"start: {served.status} {served.body[:300]!r}")
        starts.add(served)
    return calls, starts


# --- the run --------------------------------------------------------------------------------


def timed_pass(app, backends: BackendCpu, fn: Callable[[], object]) -> tuple[object, float, float]:
    """Run `fn`, then let the live-update dispatcher finish; process CPU ms of both."""
    from display.bridge import bridge_of

    return timed_cpu(backends, lambda: (fn(), bridge_of(app).drain())[0])


def timed_cpu(backends: BackendCpu, fn: Callable[[], object]) -> tuple[object, float, float]:
    """`fn()`, this process's CPU ms and the database backends' CPU ms while it ran."""
    database = backends.ms()
    cpu = time.process_time()
    result = fn()
    cpu = (time.process_time() - cpu) * 1000
    return result, cpu, backends.ms() - database


def cpu_profiler() -> cProfile.Profile:
    """cProfile timing CPU, not wall: waiting for PostgreSQL is not Python's cost."""
    return cProfile.Profile(time.thread_time)


def print_profile(profiler: cProfile.Profile, path: str, out: str, top: int) -> None:
    target = f"{out}.{path}.prof"
    profiler.dump_stats(target)
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(top)
    print(f"\n--- cProfile {path} (top {top} by cumulative time; {target}) ---")
    print(text.getvalue().split("\n", 4)[-1].rstrip())


def yardsticks(url: str, n: int, warm: int) -> tuple[Sample, Sample]:
    """bench.bare_app's /bare and /tx, served the same way: the floor of any request."""
    os.environ["XEPHANG_BENCH_TX_URL"] = url
    from bench import bare_app

    bare_app.create_tables(url)
    backends = BackendCpu(bare_app._engine)
    server = Server(bare_app.app, StatementCounter(bare_app._engine))
    body = json.dumps({"slot_id": 1, "full_name": "Nguyễn Thị Lan"}).encode()
    samples = []
    for path in ("/bare", "/tx"):

        def one(_i: int, path: str = path) -> Request:
            return Request("POST", path, body)

        run_simple(server, one, warm, 201)
        sample, cpu, database = timed_cpu(backends, lambda one=one: run_simple(server, one, n, 201))
        sample.process_cpu_ms, sample.database_cpu_ms = cpu / n, database / n
        samples.append(sample)
    bare_app._engine.dispose()
    return samples[0], samples[1]


def measure_app(url: str, args: argparse.Namespace) -> dict[str, Sample]:
    from display.bridge import bridge_of
    from web.extensions import db
    from xephang import create_app

    n, warm = args.requests, args.warmup
    app = create_app(
        {
            "DATABASE_URL": url,
            "SECRET_KEY": "bench-secret",
            "CITIZEN_ID_KEY": "bench-citizen-key",
            # The limiter stays in the path, as in production; one client must not trip it.
            "RATE_LIMIT_BOOKING": "1000000 per minute",
            "RATE_LIMIT_DEFAULT": "1000000 per minute",
            "REDIS_URL": "",
            "SCHEDULER": "off",
        }
    )
    scene = build_scene(app)
    with app.app_context():
        backends = BackendCpu(db.engine)
        server = Server(app, StatementCounter(db.engine))
    results: dict[str, Sample] = {}

    def profiled(label: str, fn: Callable[[], object]) -> None:
        if args.profile:
            server.profiler = cpu_profiler()
            fn()
            print_profile(server.profiler, label, args.profile, args.top)
            server.profiler = None

    def walk_ins(count: int) -> Sample:
        return run_simple(server, lambda i: walk_in(scene, i), count, 201)

    def bookings(count: int) -> Sample:
        return run_simple(server, lambda i: booking(scene, i), count, 201)

    # Walk-ins: they also fill the queue that the officers call from below.
    walk_ins(warm)
    sample, cpu, database = timed_pass(app, backends, lambda: walk_ins(n))
    sample.process_cpu_ms, sample.database_cpu_ms = cpu / n, database / n
    results["walk-in"] = sample
    profiled("walk-in", lambda: walk_ins(n))

    # Warm-up, measured (and profiled) passes call exactly the tickets issued above.
    run_floor(server, scene, warm)
    (calls, starts), cpu, database = timed_pass(app, backends, lambda: run_floor(server, scene, n))
    # CPU of the pair, split by the two requests' shares of the serving thread's CPU.
    call_cpu = sum(s.cpu_ms for s in calls.served)
    share = call_cpu / (call_cpu + sum(s.cpu_ms for s in starts.served))
    calls.process_cpu_ms, starts.process_cpu_ms = cpu * share / n, cpu * (1 - share) / n
    calls.database_cpu_ms = database * share / n
    starts.database_cpu_ms = database * (1 - share) / n
    results["call-next"], results["start"] = calls, starts
    profiled("call-next + start", lambda: run_floor(server, scene, n))

    bookings(warm)
    sample, cpu, database = timed_pass(app, backends, lambda: bookings(n))
    sample.process_cpu_ms, sample.database_cpu_ms = cpu / n, database / n
    results["booking"] = sample
    profiled("booking", lambda: bookings(n))

    with app.app_context():
        bridge_of(app).drain()
        db.session.remove()
        db.engine.dispose()
    return results


LABELS = {
    "walk-in": "POST /centres/{code}/tickets",
    "call-next": "POST /counters/{id}/call-next",
    "start": "POST /tickets/{id}/start",
    "booking": "POST /appointments",
    "bare": "bench.bare_app POST /bare",
    "bare tx": "bench.bare_app POST /tx (Core)",
}


def report(results: dict[str, Sample]) -> None:
    rows = []
    for path in PATHS:
        sample = results[path]
        cpu = [s.cpu_ms for s in sample.served]
        wall = [s.wall_ms for s in sample.served]
        sql = Counter(s.statements for s in sample.served)
        rows.append(
            [
                f"{path}: {LABELS[path]}",
                len(cpu),
                sum(cpu) / len(cpu),
                percentile(cpu, 50),
                sample.process_cpu_ms,
                sample.database_cpu_ms,
                " ".join(f"{k}×{v}" if len(sql) > 1 else str(k) for k, v in sorted(sql.items())),
                percentile(wall, 50),
                percentile(wall, 99),
            ]
        )
    print_table(
        "In-process, PostgreSQL, one request at a time (ms per request)",
        [
            "path",
            "requests",
            "cpu mean",
            "cpu p50",
            "process cpu",
            "db cpu",
            "SQL",
            "wall p50",
            "wall p99",
        ],
        rows,
    )
    print(
        "\ncpu = the serving thread's CPU (time.thread_time); process cpu = this process's "
        "CPU over the pass (time.process_time, the live-update dispatcher included) per "
        "request; db cpu = the PostgreSQL backends' CPU per request (/proc, 10 ms ticks "
        "summed over the pass); SQL = statements per request (count×requests when they vary; "
        "the pool's connection check and COMMIT are not counted)."
    )


def main() -> int:
    args = parse_args()
    server_url = args.database_url or postgres_server_url()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    with scratch_database(server_url) as url:
        results = measure_app(url, args)
        results["bare"], results["bare tx"] = yardsticks(url, args.requests, args.warmup)
    report(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
