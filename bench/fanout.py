"""Board fan-out benchmark: how fast a call reaches every board, and how many sockets one
machine holds — xephang beside a bare Flask-SocketIO broadcast measured the same way.

What it does, bounded and on loopback only:
1. creates a scratch PostgreSQL database (dropped at the end) with 20 centres, open around
   the clock, each with one line "A", one counter, a kiosk token and a seated officer with
   an API token; walk-in tickets are issued through the kiosk API before each row;
2. starts N Socket.IO clients (python-socketio AsyncClient, websocket transport, up to
   250 per client process) on namespace
   `/board?centre=<code>` — all on one centre, or spread over the 20;
3. makes calls one after another through the counter API (`POST …/call-next` with the
   officer's bearer token, then `start`), a random pause after the previous call reached
   every client (uniform 0–1 s with the default `--gap 0.5`, the same pauses in every row;
   `--gap 0` is back to back, where a call's announcement may queue behind the board
   refresh of the one before), and times, from the moment the call-next response
   arrived to each client's receipt of `ticket_called` (a receipt before the response counts
   as 0 ms): p50 / p99 / max over every delivery, the median of "the last client of a
   call", and the p99 counted from the moment the request was sent (the bare app emits
   inside its request, xephang after its commit on a dispatcher thread) — on (a) one
   gunicorn process in threading mode, (b) two processes sharing a Redis message queue
   (clients split across both, calls through the first);
4. the baseline in the same run: bench/bare_socketio.py served the same way, with
   `POST /emit/<centre>` in place of call-next, to the same clients;
5. `--capacity`: one process, 300, 600, 1000, 1500 … sockets on one centre until p99 passes
   200 ms, with the CPU used by the server and by the client processes, to tell which side
   gave out first.

Not a test: timings depend on the machine (and on whoever else uses it).
`python bench/fanout.py` (full), `python bench/fanout.py --quick` (a minute or two).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import multiprocessing as mp
import os
import queue
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    HOST,
    ROOT,
    free_port,
    percentile,
    postgres_server_url,
    print_table,
    scratch_database,
)
from bench.floor import seat_centre

CENTRES = 20
CLIENTS_PER_PROCESS = 250
DEFAULT_REDIS = "redis://127.0.0.1:6379/13"
RECEIPT_TIMEOUT = 10.0  # seconds to wait for every client to see one call
WARMUP_CALLS = 3


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[100, 300])
    parser.add_argument("--calls", type=int, default=30, help="measured calls per row")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each row (noise)")
    parser.add_argument(
        "--capacity",
        type=int,
        nargs="*",
        default=[300, 600, 1000, 1500, 2000],
        help="socket counts for the capacity steps (none: skip)",
    )
    parser.add_argument("--limit-ms", type=float, default=200.0, help="capacity p99 limit")
    parser.add_argument(
        "--gap",
        type=float,
        default=0.5,
        help="mean seconds (uniformly 0–2× this, seeded) from one call's last receipt to the "
        "next call; 0: back to back",
    )
    parser.add_argument("--quick", action="store_true", help="100 clients, 10 calls, 1 run")
    args = parser.parse_args()
    if args.quick:
        args.clients, args.calls, args.repeat = [100], 10, 1
        args.capacity = [300]
    return args


# --- the floor: 20 centres, one counter each -----------------------------------------------


@dataclass(frozen=True)
class Site:
    code: str
    counter_id: int
    officer: str  # API bearer token
    kiosk: str  # kiosk device bearer token


def build_city(url: str) -> list[Site]:
    """CENTRES always-open centres, each with one counter, its seated officer and a kiosk."""
    from core.common.timeutil import utcnow
    from core.models import Field
    from web.extensions import db
    from xephang import create_app

    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench-secret"})
    now = utcnow()
    sites = []
    with app.app_context():
        db.create_all()
        field_ = Field(name="Hộ tịch", intake_minutes=8)
        db.session.add(field_)
        for i in range(CENTRES):
            floor = seat_centre(
                db.session,
                code=f"{99900 + i}",
                name=f"Trung tâm đo tải {i + 1}",
                field=field_,
                counters=1,
                kiosks=1,
                now=now,
                first=i + 1,
            )
            (counter_id, token), kiosk = floor.officers[0], floor.kiosk_tokens[0]
            sites.append(Site(floor.centre_code, counter_id, token, kiosk))
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    return sites


# --- servers ---------------------------------------------------------------------------------


def _status(port: int, method: str, path: str, body=None, headers=None, timeout=10.0):
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        data = json.dumps(body).encode() if body is not None else None
        hdrs = {"Content-Type": "application/json", "Accept": "application/json"}
        conn.request(method, path, body=data, headers={**hdrs, **(headers or {})})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


@dataclass
class Server:
    port: int
    proc: subprocess.Popen

    def cpu_seconds(self) -> float:
        """CPU used so far by the gunicorn master and its worker."""
        total = 0.0
        for pid in [self.proc.pid, *_children(self.proc.pid)]:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            except (OSError, IndexError, ValueError):
                pass
        return total


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


@contextmanager
def serve(app_spec: str, env: dict[str, str], threads: int) -> Iterator[Server]:
    """One instance as production runs it: deploy/gunicorn.conf.py (gthread, one worker)."""
    port = free_port()
    log = tempfile.NamedTemporaryFile("w+", prefix="xephang-fanout-", suffix=".log")  # noqa: SIM115
    cmd = [
        sys.executable,
        "-m",
        "gunicorn",
        "-c",
        str(ROOT / "deploy" / "gunicorn.conf.py"),
        "--access-logfile",
        "/dev/null",
        "--log-level",
        "warning",
        app_spec,
    ]
    full_env = {
        **os.environ,
        **env,
        "XEPHANG_BIND": f"{HOST}:{port}",
        "XEPHANG_THREADS": str(threads),
    }
    proc = subprocess.Popen(cmd, env=full_env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                raise RuntimeError(f"{app_spec} did not start:\n{log.read()[-4000:]}")
            try:
                if _status(port, "GET", "/health", timeout=2)[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        yield Server(port, proc)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


# --- clients -----------------------------------------------------------------------------------


def _client_process(targets, ready, receipts, stop, index: int) -> None:
    """Hold `targets` [(client id, port, centre)] connected; report (id, centre, label, t).

    python-socketio's AsyncClient on one event loop: hundreds of sockets per process cost
    little CPU, so what is measured is the server, not this side (see the client CPU column).
    """
    import asyncio

    asyncio.run(_hold(targets, ready, receipts, stop, index))


async def _hold(targets, ready, receipts, stop, index: int) -> None:
    import asyncio

    import socketio

    async def one(cid: int, port: int, centre: str):
        client = socketio.AsyncClient(reconnection=False)

        async def on_called(data):
            receipts.put((cid, centre, data.get("label"), time.monotonic()))

        client.on("ticket_called", on_called, namespace="/board")
        try:
            await client.connect(
                f"http://{HOST}:{port}?centre={centre}",
                namespaces=["/board"],
                transports=["websocket"],
                wait_timeout=30,
            )
        except Exception as exc:
            print(f"client {cid}: {exc!r}", file=sys.stderr)
            return None
        return client

    clients = []
    for start in range(0, len(targets), 25):  # 25 handshakes at a time: no thundering herd
        batch = targets[start : start + 25]
        clients += await asyncio.gather(*(one(*t) for t in batch))
    connected = [c for c in clients if c is not None]
    cpu0 = time.process_time()
    ready.put((index, len(connected)))
    while not stop.is_set():
        await asyncio.sleep(0.2)
    cpu = time.process_time() - cpu0
    for client in connected:
        with contextlib.suppress(Exception):  # the process ends anyway
            await client.disconnect()
    ready.put((index, -cpu))


@dataclass
class Fleet:
    """Client processes holding every socket of one row."""

    procs: list
    receipts: mp.Queue
    stop: object
    ready: mp.Queue
    by_centre: dict[str, int]
    connected: int = 0
    client_cpu: float = 0.0


@contextmanager
def fleet(ports: list[int], centres: list[str], clients: int) -> Iterator[Fleet]:
    """`clients` board clients, dealt round-robin over `ports` (instances) and `centres`."""
    ctx = mp.get_context("spawn")
    receipts, ready, stop = ctx.Queue(), ctx.Queue(), ctx.Event()
    targets = [(i, ports[i % len(ports)], centres[i % len(centres)]) for i in range(clients)]
    nprocs = max(1, -(-clients // CLIENTS_PER_PROCESS))
    chunks = [targets[i::nprocs] for i in range(nprocs)]
    procs = [
        ctx.Process(target=_client_process, args=(chunk, ready, receipts, stop, i), daemon=True)
        for i, chunk in enumerate(chunks)
    ]
    by_centre: dict[str, int] = {}
    for _, _, centre in targets:
        by_centre[centre] = by_centre.get(centre, 0) + 1
    f = Fleet(procs, receipts, stop, ready, by_centre)
    for proc in procs:
        proc.start()
    try:
        for _ in procs:
            f.connected += ready.get(timeout=300)[1]
        yield f
    finally:
        stop.set()
        for _ in procs:
            try:
                f.client_cpu += -ready.get(timeout=60)[1]
            except queue.Empty:
                break
        for proc in procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()


# --- one row -----------------------------------------------------------------------------------


@dataclass
class RowResult:
    latencies_ms: list[float] = field(default_factory=list)  # every delivery
    from_sent_ms: list[float] = field(default_factory=list)  # the same, from the request sent
    last_ms: list[float] = field(default_factory=list)  # per call: the slowest client
    http_ms: list[float] = field(default_factory=list)  # the call's own round trip
    missing: int = 0  # deliveries that never came
    strays: int = 0  # deliveries to another centre's board
    connected: int = 0
    server_cpu: float = 0.0
    client_cpu: float = 0.0
    wall: float = 0.0


def product_caller(port: int, sites: dict[str, Site]):
    """Call next at the centre's counter through the API; returns (label, t_sent, t_answered)."""

    def call(centre: str) -> tuple[str, float, float, str]:
        site = sites[centre]
        auth = {"Authorization": f"Bearer {site.officer}"}
        t0 = time.monotonic()
        status, body = _status(
            port, "POST", f"/api/v1/counters/{site.counter_id}/call-next", None, auth
        )
        t1 = time.monotonic()
        if status != 200:
            raise RuntimeError(f"call-next at {centre}: {status} {body[:200]!r}")
        ticket = json.loads(body)["ticket"]
        return ticket["label"], t0, t1, ticket["public_id"]

    def after(centre: str, public_id: str) -> None:
        site = sites[centre]
        auth = {"Authorization": f"Bearer {site.officer}"}
        _status(port, "POST", f"/api/v1/tickets/{public_id}/start", None, auth)

    return call, after


def bare_caller(port: int):
    seq = iter(range(1, 10**9))

    def call(centre: str) -> tuple[str, float, float, str]:
        label = f"A{next(seq):03d}"
        t0 = time.monotonic()
        status, body = _status(port, "POST", f"/emit/{centre}", {"label": label})
        t1 = time.monotonic()
        if status != 200:
            raise RuntimeError(f"emit: {status} {body[:200]!r}")
        return label, t0, t1, ""

    return call, lambda centre, public_id: None


def measure(
    f: Fleet, call, after, centres: list[str], calls: int, servers: list[Server], gap: float
):
    result = RowResult(connected=f.connected)
    pace = random.Random(calls)  # the same pauses in every row of a run
    cpu0 = sum(s.cpu_seconds() for s in servers)
    wall0 = time.monotonic()
    for n in range(WARMUP_CALLS + calls):
        centre = centres[n % len(centres)]
        expected = f.by_centre.get(centre, 0)
        label, t_sent, t_answered, public_id = call(centre)
        seen: set[int] = set()
        deadline = time.monotonic() + RECEIPT_TIMEOUT
        times, from_sent = [], []
        while len(seen) < expected and time.monotonic() < deadline:
            try:
                cid, at_centre, got_label, t = f.receipts.get(timeout=0.5)
            except queue.Empty:
                continue
            if at_centre != centre:
                result.strays += n >= WARMUP_CALLS
                continue
            if got_label != label or cid in seen:
                continue  # a late delivery of an earlier call
            seen.add(cid)
            times.append(max(0.0, t - t_answered) * 1000.0)
            from_sent.append((t - t_sent) * 1000.0)
        after(centre, public_id)
        if n < WARMUP_CALLS:
            continue
        result.missing += expected - len(seen)
        result.latencies_ms += times
        result.from_sent_ms += from_sent
        result.http_ms.append((t_answered - t_sent) * 1000.0)
        if times:
            result.last_ms.append(max(times))
        time.sleep(pace.uniform(0, 2 * gap))
    result.wall = time.monotonic() - wall0
    result.server_cpu = sum(s.cpu_seconds() for s in servers) - cpu0
    return result


def issue_tickets(port: int, sites: dict[str, Site], centres: list[str], count: int) -> None:
    """Enough waiting tickets for `count` calls rotating over `centres`, via the kiosk API."""
    for n in range(count):
        site = sites[centres[n % len(centres)]]
        status, body = _status(
            port,
            "POST",
            f"/api/v1/centres/{site.code}/tickets",
            {"service": "A"},
            {"Authorization": f"Bearer {site.kiosk}"},
        )
        if status not in (200, 201):
            raise RuntimeError(f"walk-in ticket: {status} {body[:200]!r}")


# --- configurations ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    name: str
    processes: int  # 1: threading, one process; 2: two processes on Redis


def product_env(url: str, redis_url: str) -> dict[str, str]:
    return {
        "XEPHANG_DATABASE_URL": url,
        "XEPHANG_REDIS_URL": redis_url,
        "XEPHANG_SECRET_KEY": "bench-secret",
        "XEPHANG_CITIZEN_ID_KEY": "bench-citizen-key",
        "XEPHANG_RATE_LIMITS_ENABLED": "0",
        "XEPHANG_SQL_POOL_SIZE": "20",
        "XEPHANG_SCHEDULER": "off",  # as in deploy/: timed jobs run in their own process
    }


def run_row(
    kind: str,
    processes: int,
    clients: int,
    spread: bool,
    calls: int,
    url: str,
    sites: dict[str, Site],
    redis_url: str,
    gap: float,
) -> RowResult:
    centres = list(sites) if spread else [next(iter(sites))]
    threads = clients + 100
    channel = f"xephang-fanout-{uuid.uuid4().hex[:8]}"
    with ExitStack() as stack:
        servers = []
        for _ in range(processes):
            if kind == "xephang":
                env = product_env(url, redis_url if processes > 1 else "")
                servers.append(stack.enter_context(serve("wsgi:app", env, threads)))
            else:
                env = {"XEPHANG_BENCH_CHANNEL": channel}
                if processes > 1:
                    env["XEPHANG_BENCH_REDIS_URL"] = redis_url
                servers.append(stack.enter_context(serve("bench.bare_socketio:app", env, threads)))
        first = servers[0].port
        if kind == "xephang":
            issue_tickets(first, sites, centres, WARMUP_CALLS + calls)
            call, after = product_caller(first, sites)
        else:
            call, after = bare_caller(first)
        f = stack.enter_context(fleet([s.port for s in servers], centres, clients))
        result = measure(f, call, after, centres, calls, servers, gap)
    result.client_cpu = f.client_cpu
    return result


def summary(results: list[RowResult]) -> dict[str, float]:
    lat = [x for r in results for x in r.latencies_ms]
    last = [x for r in results for x in r.last_ms]
    p99s = [percentile(r.latencies_ms, 99) for r in results]
    return {
        "p50": percentile(lat, 50),
        "p99": percentile(lat, 99),
        "max": max(lat) if lat else float("nan"),
        "p99_sent": percentile([x for r in results for x in r.from_sent_ms], 99),
        "last": percentile(last, 50),
        "http": percentile([x for r in results for x in r.http_ms], 50),
        "p99_runs": " / ".join(f"{p:.0f}" for p in p99s),
        "missing": sum(r.missing for r in results),
        "strays": sum(r.strays for r in results),
        "connected": min(r.connected for r in results),
        "server_cpu": sum(r.server_cpu for r in results) / sum(r.wall for r in results) * 100,
        "client_cpu": sum(r.client_cpu for r in results) / sum(r.wall for r in results) * 100,
    }


def main() -> int:
    args = parse_args()
    redis_url = os.environ.get("XEPHANG_BENCH_REDIS_URL", DEFAULT_REDIS)
    rows = []
    capacity_rows = []
    with scratch_database(postgres_server_url()) as url:
        sites = {s.code: s for s in build_city(url)}
        print(
            f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; every server: "
            "gunicorn -c deploy/gunicorn.conf.py (gthread, 1 worker, threads = clients + 100); "
            f"{args.calls} calls per run, 0–{2 * args.gap:.1f} s apart, {args.repeat} run(s) "
            "per row; "
            "PostgreSQL scratch "
            f"database; Redis {redis_url}",
            flush=True,
        )
        for processes in (1, 2):
            setup = "1 process" if processes == 1 else "2 processes + Redis"
            for clients in args.clients:
                for spread in (False, True):
                    where = "20 centres" if spread else "1 centre"
                    for kind in ("bare Flask-SocketIO", "xephang"):
                        runs = [
                            run_row(
                                "xephang" if kind == "xephang" else "bare",
                                processes,
                                clients,
                                spread,
                                args.calls,
                                url,
                                sites,
                                redis_url,
                                args.gap,
                            )
                            for _ in range(args.repeat)
                        ]
                        s = summary(runs)
                        rows.append((kind, setup, clients, where, s))
                        print(
                            f"  {kind:20} {setup:20} {clients:5} {where:10} p50 {s['p50']:.1f} "
                            f"p99 {s['p99']:.1f} (runs {s['p99_runs']}) max {s['max']:.1f}",
                            flush=True,
                        )
        for clients in args.capacity:
            s_bare = summary(
                [run_row("bare", 1, clients, False, args.calls, url, sites, redis_url, args.gap)]
            )
            s = summary(
                [run_row("xephang", 1, clients, False, args.calls, url, sites, redis_url, args.gap)]
            )
            capacity_rows.append((clients, s, s_bare))
            print(
                f"  capacity {clients}: xephang p99 {s['p99']:.1f}, from request "
                f"{s['p99_sent']:.1f} (server CPU {s['server_cpu']:.0f}%, clients "
                f"{s['client_cpu']:.0f}%), bare p99 {s_bare['p99']:.1f}, from request "
                f"{s_bare['p99_sent']:.1f}",
                flush=True,
            )
            # Judged from the request: xephang announces before its HTTP answer, so time
            # from the answer alone would flatter it as sockets grow.
            if s["p99_sent"] > args.limit_ms or s["missing"] or s["connected"] < clients:
                break
    print_table(
        "Board fan-out: call-next response (bare: emit response) → `ticket_called` at every "
        "client, ms",
        [
            "server",
            "setup",
            "clients",
            "boards on",
            "p50",
            "p99",
            "max",
            "last client p50",
            "p99 per run",
            "p99 from request",
            "call HTTP p50",
            "missing",
            "strays",
        ],
        [
            (
                kind,
                setup,
                clients,
                where,
                s["p50"],
                s["p99"],
                s["max"],
                s["last"],
                s["p99_runs"],
                s["p99_sent"],
                s["http"],
                s["missing"],
                s["strays"],
            )
            for kind, setup, clients, where, s in rows
        ],
    )
    if capacity_rows:
        print_table(
            f"Sockets one process holds (1 centre, {args.calls} calls; limit: p99 from the "
            f"call-next request {args.limit_ms:.0f} ms)",
            [
                "sockets",
                "connected",
                "xephang p50",
                "xephang p99",
                "xephang p99 from request",
                "bare p99",
                "bare p99 from request",
                "server CPU %",
                "client CPU %",
                "missing",
            ],
            [
                (
                    n,
                    s["connected"],
                    s["p50"],
                    s["p99"],
                    s["p99_sent"],
                    b["p99"],
                    b["p99_sent"],
                    s["server_cpu"],
                    s["client_cpu"],
                    s["missing"],
                )
                for n, s, b in capacity_rows
            ],
        )
    print(
        "\nCPU % is of one core over the measured calls (200% = both cores of this machine). "
        f"Load average at the end: {os.getloadavg()[0]:.1f}."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
