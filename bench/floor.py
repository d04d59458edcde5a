"""Centre-floor benchmark: walk-in tickets from many kiosks and call-next from many counters,
on gunicorn + PostgreSQL, beside a bare Flask endpoint and a minimal Core transaction served
with the same settings in the same run.

What it does, bounded and on loopback only:
1. creates a scratch PostgreSQL database (dropped at the end) holding one busy centre, open
   around the clock for the run, with one line served by every counter, kiosk device tokens
   and one officer (with an API token) seated at each counter;
2. kiosks: K clients (one process each) POST /api/v1/centres/{code}/tickets as fast as they
   can — the issue rate and its latency;
3. counters: C clients, each the officer of one counter, loop call-next → start over the
   queue the kiosks built — the call-next rate and its latency (start is not counted);
4. under contention (--mixed, default 16 kiosks and 20 counters): both at once for the
   duration, the counters calling again a moment later whenever the queue is empty;
5. audits the database: labels unique and gap-free per line and day, no ticket called twice
   or by two counters (after the mixed row some tickets still wait: counted, not a fault).

Not a test: timings depend on the machine. `python bench/floor.py --kiosks 8 16 --counters 8 20`.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    HOST,
    Call,
    LoadResult,
    ServerSettings,
    gunicorn,
    postgres_server_url,
    print_table,
    run_load,
    scratch_database,
    split,
)

ALWAYS_OPEN = {str(day): [["00:00", "23:59"]] for day in range(7)}
WARMUP = 40


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kiosks", type=int, nargs="+", default=[8, 16])
    parser.add_argument("--counters", type=int, nargs="+", default=[8, 20])
    parser.add_argument(
        "--mixed",
        type=int,
        nargs=2,
        default=[16, 20],
        metavar=("KIOSKS", "COUNTERS"),
        help="last row: kiosks issuing while counters call, at once (0 0: skip)",
    )
    parser.add_argument("--tickets", type=int, default=2000, help="tickets per kiosk row")
    parser.add_argument("--duration", type=float, default=20.0, help="cap per row, seconds")
    parser.add_argument("--worker-class", default="sync", choices=["sync", "gthread"])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=16)
    return parser.parse_args()


def app_env(url: str, settings: ServerSettings) -> dict[str, str]:
    return {
        "XEPHANG_DATABASE_URL": url,
        "XEPHANG_SECRET_KEY": "bench-secret",
        "XEPHANG_CITIZEN_ID_KEY": "bench-citizen-key",
        "XEPHANG_RATE_LIMIT_DEFAULT": "1000000 per minute",
        "XEPHANG_SQL_POOL_SIZE": str(max(settings.concurrency // settings.workers, 2)),
        "XEPHANG_REDIS_URL": "",
        # As in production (deploy/): web processes serve requests, the scheduler runs apart.
        "XEPHANG_SCHEDULER": "off",
    }


@dataclass(frozen=True)
class Floor:
    centre_code: str
    kiosk_tokens: list[str]
    officers: list[tuple[int, str]]  # (counter id, officer's API token)


def seat_centre(
    session, *, code: str, name: str, field, counters: int, kiosks: int, now, first: int = 1
) -> Floor:
    """One always-open centre with one line "A" served by every counter, an officer (with an
    API token) seated at each counter and `kiosks` kiosk devices; not committed. Officers
    are numbered from `first`, so several centres in one database get distinct usernames."""
    from core.access.staff_tokens import issue_staff_token
    from core.common.text import fold
    from core.demo import create_device, create_staff
    from core.floor import counters as counter_ops
    from core.models import Centre, CentreKind, Counter, CounterService, DeviceKind, Role, Service

    centre = Centre(
        code=code,
        name=name,
        kind=CentreKind.WARD,
        address="",
        lat=10.8,
        lon=106.7,
        opening_hours=ALWAYS_OPEN,
        search_text=fold(name),
    )
    session.add(centre)
    session.flush()
    service = Service(centre_id=centre.id, prefix="A", name="Hộ tịch", fields=[field])
    session.add(service)
    session.flush()
    officers = []
    for number in range(1, counters + 1):
        counter = Counter(centre_id=centre.id, number=number)
        session.add(counter)
        session.flush()
        session.add(CounterService(counter_id=counter.id, service_id=service.id, rank=0))
        n = first + number - 1
        staff = create_staff(
            session,
            username=f"officer{n}",
            password="bench-password-1",
            role=Role.OFFICER,
            centre=centre,
            full_name=f"Cán bộ {n}",
            now=now,
        )
        token, _ = issue_staff_token(session, staff, now=now, days=1)
        counter_ops.open_counter(session, counter, staff, now=now)
        officers.append((counter.id, token))
    tokens = [
        create_device(session, kind=DeviceKind.KIOSK, centre=centre, name=f"Kiosk {i}", now=now)[1]
        for i in range(kiosks)
    ]
    return Floor(code, tokens, officers)


def build_floor(app, kiosks: int, counters: int) -> Floor:
    """One centre, one line "A" served by every counter, devices and seated officers."""
    from core.common.timeutil import utcnow
    from core.models import Field
    from web.extensions import db

    with app.app_context():
        db.create_all()
        field = Field(name="Hộ tịch", intake_minutes=8)
        db.session.add(field)
        floor = seat_centre(
            db.session,
            code="99999",
            name="Trung tâm đo tải",
            field=field,
            counters=counters,
            kiosks=kiosks,
            now=utcnow(),
        )
        db.session.commit()
        db.session.remove()
    return floor


# --- counter clients: call-next, then start what was called -----------------------------


def _officer(
    port: int, counter_id: int, token: str, start, duration: float, keep_going: bool, out
) -> None:
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    conn.request("GET", "/health")
    conn.getresponse().read()
    latencies, statuses, errors = [], Counter(), 0
    start.wait(timeout=120)
    began = time.perf_counter()
    stop_at = time.monotonic() + duration
    while time.monotonic() < stop_at:
        t0 = time.perf_counter()
        try:
            conn.request("POST", f"/api/v1/counters/{counter_id}/call-next", headers=headers)
            response = conn.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException):
            errors += 1
            conn.close()
            continue
        latencies.append((time.perf_counter() - t0) * 1000.0)
        statuses[response.status] += 1
        if response.status == 204 and keep_going:
            time.sleep(0.005)  # kiosks are still issuing: call again in a moment
            continue
        if response.status != 200:
            break  # 204: nobody left waiting (anything else is counted and ends this client)
        public_id = json.loads(body)["ticket"]["public_id"]
        conn.request("POST", f"/api/v1/tickets/{public_id}/start", headers=headers)
        conn.getresponse().read()
    out.put((latencies, dict(statuses), errors, began, time.perf_counter()))
    conn.close()


def run_officers(
    port: int, officers: list[tuple[int, str]], duration: float, *, keep_going: bool = False
) -> LoadResult:
    """Officers loop call-next → start until nobody waits (or, `keep_going`, until the end of
    `duration`: kiosks are issuing meanwhile)."""
    ctx = mp.get_context("spawn")
    start, out = ctx.Barrier(len(officers) + 1), ctx.Queue()
    procs = [
        ctx.Process(
            target=_officer, args=(port, cid, tok, start, duration, keep_going, out), daemon=True
        )
        for cid, tok in officers
    ]
    for proc in procs:
        proc.start()
    start.wait(timeout=120)
    results = [out.get(timeout=duration + 120) for _ in procs]
    for proc in procs:
        proc.join(timeout=10)
    result = LoadResult(clients=len(procs), elapsed=0.0)
    result.elapsed = max(r[4] for r in results) - min(r[3] for r in results)
    for latencies, statuses, errors, *_ in results:
        result.latencies_ms.extend(latencies)
        result.statuses.update(statuses)
        result.errors += errors
    return result


# --- kiosk clients ------------------------------------------------------------------------


def kiosk_calls(code: str, count: int) -> list[Call]:
    body = json.dumps({"service": "A"}).encode()
    return [Call("POST", f"/api/v1/centres/{code}/tickets", body) for _ in range(count)]


def run_kiosks(port: int, floor: Floor, clients: int, count: int, duration: float) -> LoadResult:
    """Each kiosk process sends its own device token (the load helper sends one header set
    per client, so tokens ride in the call list as a per-client header)."""
    calls = kiosk_calls(floor.centre_code, count)
    per_client = split(calls, clients)
    for i, chunk in enumerate(per_client):
        token = floor.kiosk_tokens[i % len(floor.kiosk_tokens)]
        per_client[i] = [
            Call(c.method, c.path, c.body, {"Authorization": f"Bearer {token}"}) for c in chunk
        ]
    return run_load(port, per_client, duration)


# --- audit --------------------------------------------------------------------------------


@dataclass(frozen=True)
class FloorAudit:
    issued: int
    duplicate_labels: int
    gaps: int
    called_twice: int
    two_counters: int
    waiting: int


def audit(url: str) -> FloorAudit:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    with engine.connect() as conn:
        issued, distinct_numbers = conn.exec_driver_sql(
            "SELECT count(*), count(DISTINCT (service_id, day, number)) FROM tickets"
        ).one()
        top = conn.exec_driver_sql(
            "SELECT coalesce(sum(m), 0) FROM (SELECT max(number) AS m FROM tickets "
            "GROUP BY service_id, day) t"
        ).scalar()
        called_twice = conn.exec_driver_sql(
            "SELECT count(*) FROM (SELECT ticket_id FROM ticket_events WHERE kind = 'called' "
            "GROUP BY ticket_id HAVING count(*) > 1) t"
        ).scalar()
        two_counters = conn.exec_driver_sql(
            "SELECT count(*) FROM (SELECT ticket_id FROM ticket_events WHERE kind = 'called' "
            "GROUP BY ticket_id HAVING count(DISTINCT counter_id) > 1) t"
        ).scalar()
        waiting = conn.exec_driver_sql(
            "SELECT count(*) FROM tickets WHERE status = 'waiting'"
        ).scalar()
    engine.dispose()
    return FloorAudit(
        issued,
        issued - distinct_numbers,
        top - distinct_numbers,
        called_twice,
        two_counters,
        waiting,
    )


# --- the run ------------------------------------------------------------------------------


def mixed_row(bare_port: int, port: int, floor: Floor, kiosks: int, counters: int, args) -> list:
    """Kiosks issuing and counters calling at the same time, for `duration`, beside the bare
    endpoint at as many clients."""
    from concurrent.futures import ThreadPoolExecutor

    clients = kiosks + counters
    baseline = bare_rows(bare_port, clients, args.tickets, args.duration)
    bare_rate = baseline[0][2].rate
    many = args.tickets * 50  # the duration ends the row, not the count
    run_kiosks(port, floor, 4, counters * 20, args.duration)  # a queue to start from
    with ThreadPoolExecutor(2) as pool:
        issuing = pool.submit(run_kiosks, port, floor, kiosks, many, args.duration)
        calling = pool.submit(
            run_officers, port, floor.officers[:counters], args.duration, keep_going=True
        )
        issued, called = issuing.result(), calling.result()
    return [(label, n, res, bare_rate) for label, n, res in baseline] + [
        (f"POST …/tickets (walk-in, beside {counters} counters)", kiosks, issued, bare_rate),
        (f"POST …/call-next (beside {kiosks} kiosks)", counters, called, bare_rate),
    ]


def bare_rows(port: int, clients: int, count: int, duration: float) -> list[tuple]:
    rows = []
    body = json.dumps({"service": "A"}).encode()
    for path in ("/bare", "/tx"):
        calls = [Call("POST", path, body) for _ in range(count)]
        run_load(port, split(calls[:WARMUP], min(clients, 4)), duration)
        rows.append((f"POST {path}", clients, run_load(port, split(calls, clients), duration)))
    return rows


def main() -> int:
    args = parse_args()
    settings = ServerSettings(args.worker_class, args.workers, args.threads)
    mixed_kiosks, mixed_counters = args.mixed
    kiosks = max(*args.kiosks, mixed_kiosks)
    counters = max(*args.counters, mixed_counters)
    rows: list[tuple[str, int, LoadResult, float]] = []
    with scratch_database(postgres_server_url()) as url:
        from bench import bare_app
        from xephang import create_app

        app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench-secret"})
        floor = build_floor(app, kiosks, counters)
        bare_app.create_tables(url)
        pool = app_env(url, settings)["XEPHANG_SQL_POOL_SIZE"]
        bare_env = {"XEPHANG_BENCH_TX_URL": url, "XEPHANG_SQL_POOL_SIZE": pool}
        print(
            f"server: {settings.describe()} for every row; PostgreSQL scratch database; "
            f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
        )
        with (
            gunicorn("bench.bare_app:app", settings, bare_env) as bare_port,
            gunicorn("wsgi:app", settings, app_env(url, settings)) as port,
        ):
            run_kiosks(port, floor, 4, WARMUP, 10)  # warm workers and connections
            for clients in sorted(set(args.kiosks) | set(args.counters)):
                baseline = bare_rows(bare_port, clients, args.tickets, args.duration)
                bare_rate = baseline[0][2].rate
                rows += [(label, n, res, bare_rate) for label, n, res in baseline]
                if clients in args.kiosks:
                    res = run_kiosks(port, floor, clients, args.tickets, args.duration)
                    rows.append(("POST …/tickets (walk-in)", clients, res, bare_rate))
                if clients in args.counters:
                    res = run_officers(port, floor.officers[:clients], args.duration)
                    rows.append(("POST …/call-next", clients, res, bare_rate))
            if mixed_kiosks and mixed_counters:
                mixed = mixed_row(bare_port, port, floor, mixed_kiosks, mixed_counters, args)
                rows += mixed
        result = audit(url)
    table = [
        [
            label,
            n,
            res.rate,
            res.percentile(50),
            res.percentile(99),
            f"{res.rate / bare:.2f}×",
            ", ".join(f"{s}: {c}" for s, c in sorted(res.statuses.items()))
            + (f", io errors: {res.errors}" if res.errors else ""),
        ]
        for label, n, res, bare in rows
    ]
    print_table(
        "HTTP (req/s, latency per request)",
        ["endpoint", "clients", "req/s", "p50 ms", "p99 ms", "× bare", "statuses"],
        table,
    )
    for label, n, res, bare in rows:
        if "call-next" in label and res.elapsed:
            # Every ticket called (200) was started by its officer before the next call.
            both = (res.count + res.statuses.get(200, 0)) / res.elapsed
            print(
                f"call-next at {n} counters: with the start after each call the officers "
                f"sent {both:,.0f} req/s ({both / bare:.2f}× bare)"
            )
    print(
        f"\ntickets issued: {result.issued:,}; duplicate labels: {result.duplicate_labels}; "
        f"gaps: {result.gaps}; called twice: {result.called_twice}; called by two counters: "
        f"{result.two_counters}; still waiting: {result.waiting}"
    )
    mixed = [(res, bare) for label, _, res, bare in rows if "beside" in label]
    if len(mixed) == 2:
        (issued, bare), (called, _) = mixed
        # Every call answered 200 was followed by its start.
        sent = (issued.count + called.count + called.statuses.get(200, 0)) / max(
            issued.elapsed, called.elapsed
        )
        print(
            f"kiosks and counters at once: {sent:,.0f} req/s in all, walk-ins, calls and "
            f"starts ({sent / bare:.2f}× bare at {issued.clients + called.clients} clients)"
        )
    bad = result.duplicate_labels + result.gaps + result.called_twice + result.two_counters
    print("→ OK" if bad == 0 else "→ FLOOR INVARIANT BROKEN")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
