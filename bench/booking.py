"""Booking and procedure-search benchmark: xephang on gunicorn + PostgreSQL, side by side with
a bare Flask endpoint and a minimal SQLAlchemy Core transaction on the same server settings.

What it does, bounded and on loopback only:
1. creates a scratch PostgreSQL database (dropped at the end) and lays out the demo city with
   `flask demo setup` (168 + 1 centres, the imported catalogue, 14 days of slots);
2. serves `bench.bare_app` and `wsgi:app` side by side with the same gunicorn settings and,
   for each concurrency level in turn, drives each with N concurrent clients (one process
   each) in interleaved rounds (each round a slice of every row, back to back; "× bare" is
   the median of the rounds' ratios, so a drift in the host's speed skews a round's rows
   alike), POSTing the same booking bodies from distinct citizens into slots of the city: once
   spread over slots with seats for five times the requests, no seat drawn twice (the hot
   path: a 409 only when clients race for a slot's seats), once as a rush on slots seating
   80% of them, drawn at random, so slots fill up and bookings meet 409 with alternatives;
3. counts afterwards, from the database, slots with booked > capacity and slots whose
   `booked` differs from the appointments holding a seat there — both must be 0;
4. times `core.catalogue.search.index.search` in-process over the full catalogue with realistic
   queries, with and without diacritics, and GET /api/v1/procedures?q= over HTTP.

Not a test: timings depend on the machine. Run `make bench` or
`python bench/booking.py --clients 8 16 32`; see `--help`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

# `python bench/booking.py` puts bench/ on the path, not the repository root it imports from.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    ROOT,
    Call,
    LoadResult,
    ServerSettings,
    gunicorn,
    percentile,
    postgres_server_url,
    print_table,
    run_load,
    scratch_database,
    split,
)

# Seats in the slots chosen for a row, per request: plenty, or short so the tail meets 409s.
SPREAD_SEATS = 5
RUSH_SEATS = 0.8
WARMUP_CALLS = 60
SEARCH_QUERIES = (
    # (query, kind): what citizens type, often without diacritics on a phone keyboard.
    ("ho tich", "plain"),
    ("khai sinh", "plain"),
    ("dang ky ket hon", "plain"),
    ("chung thuc ban sao", "plain"),
    ("cu tru", "plain"),
    ("dat dai", "plain"),
    ("giay phep xay dung", "plain"),
    ("thue", "plain"),
    ("hộ tịch", "diacritics"),
    ("đăng ký khai sinh", "diacritics"),
    ("chứng thực chữ ký", "diacritics"),
    ("cấp giấy chứng nhận quyền sử dụng đất", "diacritics"),
    ("đăng ký thường trú", "diacritics"),
    ("hộ kinh doanh", "diacritics"),
    ("1.001193", "code"),
    ("2.000", "code"),
)


@dataclass
class Row:
    """One endpoint at one concurrency level, over every round."""

    label: str
    clients: int
    ok_status: int
    result: LoadResult | None = None
    # This row's rate over the bare endpoint's, one per round (each measured back to back).
    ratios: list[float] = field(default_factory=list)
    overbooked: int | None = None
    mismatched: int | None = None
    lost: int | None = None

    def add(self, result: LoadResult, bare_rate: float) -> None:
        """One round's measurement, pooled with the earlier rounds'."""
        self.ratios.append(result.rate / bare_rate if bare_rate else 0.0)
        if self.result is None:
            self.result = result
            return
        self.result.elapsed += result.elapsed
        self.result.latencies_ms.extend(result.latencies_ms)
        self.result.statuses.update(result.statuses)
        self.result.errors += result.errors


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--clients", type=int, nargs="+", default=[8], help="concurrency levels (default: 8)"
    )
    parser.add_argument(
        "--requests", type=int, default=3000, help="requests per row (default 3000)"
    )
    parser.add_argument(
        "--duration", type=float, default=20.0, help="cap per row, seconds (default 20)"
    )
    # MEASURED.md: sync -w 2 had the highest rate and lowest p99 on 2 cores for both a bare
    # endpoint and a database transaction (4,028 / 1,013 req/s, p99 3.2 / 12 ms at 8 conns).
    parser.add_argument("--worker-class", default="sync", choices=["sync", "gthread"])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=16, help="gthread only")
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="interleaved rounds per concurrency level, each a slice of every row (default 3)",
    )
    parser.add_argument("--search-rounds", type=int, default=100)
    parser.add_argument("--seed", type=int, default=20260731)
    parser.add_argument("--skip-search", action="store_true")
    return parser.parse_args()


# --- the city ---------------------------------------------------------------------------


def app_env(url: str, settings: ServerSettings) -> dict[str, str]:
    """Environment for xephang processes in a bench run (server and CLI alike)."""
    return {
        "XEPHANG_DATABASE_URL": url,
        "XEPHANG_SECRET_KEY": "bench-secret",
        "XEPHANG_CITIZEN_ID_KEY": "bench-citizen-key",
        # The limiter stays in the request path, but a bench from one address must not trip it.
        "XEPHANG_RATE_LIMIT_BOOKING": "1000000 per minute",
        "XEPHANG_RATE_LIMIT_DEFAULT": "1000000 per minute",
        "XEPHANG_SQL_POOL_SIZE": str(max(settings.concurrency // settings.workers, 2)),
        "XEPHANG_REDIS_URL": "",
        # As in production (deploy/): web processes serve requests, the scheduler runs apart.
        "XEPHANG_SCHEDULER": "off",
    }


def build_city(url: str, settings: ServerSettings) -> float:
    """Schema plus `flask demo setup`; returns seconds taken.

    The schema comes from the models (`create_all`): `make migrations-check` proves the
    migrations build the same one, and a bench must not wait for a migration to land.
    """
    from web.extensions import db
    from xephang import create_app

    started = time.monotonic()
    app = create_app({"DATABASE_URL": url})
    with app.app_context():
        db.create_all()
        db.engine.dispose()
        if "demo" not in app.cli.commands:
            raise SystemExit("`flask demo setup` is not available in this tree")
    env = {**os.environ, **app_env(url, settings)}
    done = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "demo", "setup"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"flask demo setup failed:\n{done.stdout}\n{done.stderr}")
    return time.monotonic() - started


@dataclass(frozen=True)
class Target:
    slot_id: int
    procedure: str
    seats: int


def bookable_targets(app, rng: random.Random) -> list[Target]:
    """Free slots of the city, each with a procedure its service takes, shuffled."""
    from datetime import timedelta

    from core.booking.availability import free_slots
    from core.catalogue.search import index
    from core.common.timeutil import utcnow
    from web.extensions import db

    with app.app_context():
        now = utcnow()
        seen: dict[int, Target] = {}
        # Common procedures of different fields and levels, as the search would find them.
        for query in ("khai sinh", "chung thuc", "ket hon", "thuong tru", "dat dai", "thue"):
            for entry in index.search(db.session, query, limit=3).items:
                for slot in free_slots(
                    db.session, entry, now=now + timedelta(hours=2), days=14, limit=20_000
                ):
                    seen.setdefault(slot.id, Target(slot.id, entry.code, slot.remaining))
        db.session.remove()
    targets = list(seen.values())
    rng.shuffle(targets)
    return targets


def take_targets(pool: list[Target], seats_wanted: int) -> list[Target]:
    taken: list[Target] = []
    seats = 0
    while pool and seats < seats_wanted:
        target = pool.pop()
        taken.append(target)
        seats += target.seats
    if seats < seats_wanted:
        raise SystemExit("the demo city has too few free seats for this many requests")
    return taken


def booking_calls(
    targets: list[Target], count: int, first_citizen: int, rng, *, each_seat_once: bool = False
) -> list[Call]:
    """`count` bookings by new citizens into `targets`, drawn at random; with
    `each_seat_once`, no slot more often than it had free seats, as citizens who pick from
    the free slots shown to them would (a 409 then only comes of two racing for a seat)."""
    if each_seat_once:
        seats = [target for target in targets for _ in range(target.seats)]
        if len(seats) < count:
            raise SystemExit("too few free seats for this many requests")
        picks = rng.sample(seats, count)
    else:
        picks = [rng.choice(targets) for _ in range(count)]
    calls = []
    for n, target in enumerate(picks, start=first_citizen):
        body = {
            "slot_id": target.slot_id,
            "procedure": target.procedure,
            "full_name": "Nguyễn Thị Lan",
            "phone": f"09{n % 10**8:08d}",
            # Valid structure: HCMC (079), 20th century woman (1), born 1985, then n.
            "citizen_id": f"079185{n % 10**6:06d}",
            "consent": True,
        }
        calls.append(Call("POST", "/api/v1/appointments", json.dumps(body).encode()))
    return calls


@dataclass(frozen=True)
class SeatAudit:
    overbooked: int
    mismatched: int
    appointments: int


def audit(app) -> SeatAudit:
    """Overbooking as the database sees it, after the fact."""
    from sqlalchemy import func, select

    from core.models import Appointment, AppointmentStatus, Slot
    from web.extensions import db

    with app.app_context():
        session = db.session
        overbooked = session.scalar(
            select(func.count()).select_from(Slot).where(Slot.booked > Slot.capacity)
        )
        holding = (
            select(Appointment.slot_id, func.count().label("n"))
            .where(Appointment.status == AppointmentStatus.BOOKED)
            .group_by(Appointment.slot_id)
            .subquery()
        )
        mismatched = session.scalar(
            select(func.count())
            .select_from(Slot)
            .outerjoin(holding, holding.c.slot_id == Slot.id)
            .where(Slot.booked != func.coalesce(holding.c.n, 0))
        )
        appointments = session.scalar(select(func.count()).select_from(Appointment))
        db.session.remove()
    return SeatAudit(overbooked, mismatched, appointments)


# --- search in-process ------------------------------------------------------------------


def search_in_process(app, rounds: int) -> tuple[int, list[tuple[str, list[float]]]]:
    from core.catalogue.search import index
    from web.extensions import db

    timings: dict[str, list[float]] = {"plain": [], "diacritics": [], "code": []}
    with app.app_context():
        index.invalidate()
        t0 = time.perf_counter()
        size = index.search(db.session, "").total  # builds the index: timed apart
        build_ms = (time.perf_counter() - t0) * 1000
        for _ in range(rounds):
            for query, kind in SEARCH_QUERIES:
                t0 = time.perf_counter()
                index.search(db.session, query, limit=20)
                timings[kind].append((time.perf_counter() - t0) * 1000)
        db.session.remove()
    print(f"catalogue index: {size:,} procedures, built in {build_ms:.0f} ms")
    every = [t for ts in timings.values() for t in ts]
    return size, [
        ("without diacritics", timings["plain"]),
        ("with diacritics", timings["diacritics"]),
        ("procedure code", timings["code"]),
        ("all queries", every),
    ]


def search_calls(count: int) -> list[Call]:
    queries = [q for q, _ in SEARCH_QUERIES]
    return [
        Call("GET", f"/api/v1/procedures?q={quote(queries[i % len(queries)])}")
        for i in range(count)
    ]


# --- driving servers --------------------------------------------------------------------


def measure(
    port: int, calls: list[Call], clients: int, duration: float, warmup: list[Call]
) -> LoadResult:
    """Warm the server's workers (connections, caches) uncounted, then measure `calls`."""
    if warmup:
        run_load(port, split(warmup, min(clients, 4)), duration)
    return run_load(port, split(calls, clients), duration)


def run_servers(app, url: str, settings: ServerSettings, args, pool) -> list[Row]:
    """Both servers up at once (an idle one costs nothing); for each concurrency level the
    yardsticks and xephang are measured back to back, so a change in the machine's other
    load between levels skews them alike."""
    from bench import bare_app

    bare_app.create_tables(url)
    pool_size = app_env(url, settings)["XEPHANG_SQL_POOL_SIZE"]
    bare_env = {"XEPHANG_BENCH_TX_URL": url, "XEPHANG_SQL_POOL_SIZE": pool_size}
    rng = random.Random(args.seed + 1)
    rows: list[Row] = []
    with (
        gunicorn("bench.bare_app:app", settings, bare_env) as bare_port,
        gunicorn("wsgi:app", settings, app_env(url, settings)) as port,
    ):
        # Warm every xephang worker: catalogue index, connections, the booking path.
        run_load(port, split(search_calls(WARMUP_CALLS), 4), 10)
        warm = booking_calls(take_targets(pool, WARMUP_CALLS), WARMUP_CALLS, 0, rng)
        run_load(port, split(warm, 4), 10)
        citizen = WARMUP_CALLS
        for clients in args.clients:
            # Spread: seats for five times the requests, each drawn at most once, so every
            # booking may succeed (the hot path; clients still race for a slot's seats). Rush:
            # seats for 80%, drawn at random: slots fill up and later bookings get 409 with
            # alternatives, as on the morning a popular centre's week opens.
            spread = booking_calls(
                take_targets(pool, args.requests * SPREAD_SEATS),
                args.requests,
                citizen,
                rng,
                each_seat_once=True,
            )
            citizen += args.requests
            rush = booking_calls(
                take_targets(pool, int(args.requests * RUSH_SEATS)), args.requests, citizen, rng
            )
            citizen += args.requests
            searches = search_calls(args.requests)
            level = {
                "bare": Row("POST /bare (bare Flask JSON)", clients, 201),
                "tx": Row("POST /tx (bare Core tx)", clients, 201),
                "spread": Row("POST /api/v1/appointments (spread)", clients, 201, lost=0),
                "rush": Row("POST /api/v1/appointments (rush)", clients, 201, lost=0),
                "search": Row("GET /api/v1/procedures?q=", clients, 200),
            }
            # The rows take turns, a slice of their requests per round: the host's speed drifts
            # within minutes, and a drift then skews one round's rows alike.
            for r in range(args.rounds):
                part = slice(r * len(spread) // args.rounds, (r + 1) * len(spread) // args.rounds)
                # The same bodies as the bookings: parsing costs the same.
                bare_calls = [Call("POST", "/bare", c.body) for c in spread[part]]
                result = measure(bare_port, bare_calls, clients, args.duration, bare_calls[:20])
                bare_rate = result.rate
                level["bare"].add(result, bare_rate)
                tx_calls = [Call("POST", "/tx", c.body) for c in spread[part]]
                result = measure(bare_port, tx_calls, clients, args.duration, tx_calls[:20])
                level["tx"].add(result, bare_rate)
                for name, bookings in (("spread", spread[part]), ("rush", rush[part])):
                    before = audit(app)
                    result = run_load(port, split(bookings, clients), args.duration)
                    after = audit(app)
                    row = level[name]
                    row.add(result, bare_rate)
                    row.overbooked, row.mismatched = after.overbooked, after.mismatched
                    created = after.appointments - before.appointments
                    row.lost = (row.lost or 0) + created - result.statuses.get(201, 0)
                if not args.skip_search:
                    result = measure(port, searches[part], clients, args.duration, [])
                    level["search"].add(result, bare_rate)
            rows.extend(row for row in level.values() if row.result is not None)
    return rows


# --- report -----------------------------------------------------------------------------


def report_http(rows: list[Row]) -> None:
    table = []
    for row in rows:
        res = row.result
        assert res is not None
        ok = res.statuses.get(row.ok_status, 0)
        others = {s: n for s, n in res.statuses.items() if s not in (row.ok_status, 409)}
        table.append(
            [
                row.label,
                row.clients,
                res.rate,
                ok / res.elapsed if res.elapsed else 0.0,
                res.percentile(50),
                res.percentile(99),
                f"{statistics.median(row.ratios):.2f}×",
                res.statuses.get(409, 0),
                (", ".join(f"{s}: {n}" for s, n in sorted(others.items())) or "0")
                + (f", io errors: {res.errors}" if res.errors else ""),
                "" if row.overbooked is None else row.overbooked,
                "" if row.mismatched is None else row.mismatched,
                "" if row.lost is None else row.lost,
            ]
        )
    print_table(
        "HTTP (req/s = all answers per second; ok/s = 201 for POST, 200 for GET; × bare = "
        "median of the rounds' ratios to the bare endpoint measured just before)",
        [
            "endpoint",
            "clients",
            "req/s",
            "ok/s",
            "p50 ms",
            "p99 ms",
            "× bare",
            "409",
            "other status",
            "overbooked",
            "booked≠appts",
            "201≠rows",
        ],
        table,
    )


def report_search(size: int, timings: list[tuple[str, list[float]]]) -> None:
    print_table(
        f"core.catalogue.search.index.search in-process over {size:,} procedures (ms per query)",
        ["queries", "calls", "p50 ms", "p99 ms", "max ms"],
        [
            [label, len(ts), percentile(ts, 50), percentile(ts, 99), max(ts)]
            for label, ts in timings
        ],
    )


def describe_machine(url: str, settings: ServerSettings, args) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    with engine.connect() as conn:
        pg = conn.exec_driver_sql("SHOW server_version").scalar()
        city = conn.exec_driver_sql(
            "SELECT (SELECT count(*) FROM centres), (SELECT count(*) FROM procedures), "
            "(SELECT count(*) FROM slots), (SELECT coalesce(sum(capacity), 0) FROM slots)"
        ).one()
    engine.dispose()
    print(
        f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} "
        "(other work on the machine skews every row alike; compare ratios, rerun when busy); "
        f"Python {sys.version.split()[0]}; PostgreSQL {pg}\n"
        f"server: {settings.describe()} (the same for every row), SQL pool "
        f"{app_env(url, settings)['XEPHANG_SQL_POOL_SIZE']} per worker, rate limiter on "
        f"(limits raised), no Redis\n"
        f"city: {city[0]} centres, {city[1]:,} procedures, {city[2]:,} slots, "
        f"{city[3]:,} seats\n"
        f"load: {args.requests} requests per row in {args.rounds} interleaved rounds (cap "
        f"{args.duration:.0f} s a slice), one client process per connection, keep-alive where "
        f"the worker allows it"
    )


def main() -> int:
    args = parse_args()
    logging.getLogger("alembic").setLevel(logging.WARNING)  # keep the report readable
    settings = ServerSettings(args.worker_class, args.workers, args.threads)
    rng = random.Random(args.seed)
    with scratch_database(postgres_server_url()) as url:
        print(f"scratch database ready; building the demo city ({settings.describe()}) …")
        took = build_city(url, settings)
        print(f"demo city built in {took:.1f} s")
        describe_machine(url, settings, args)
        from xephang import create_app

        app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench-secret"})
        pool = bookable_targets(app, rng)
        if not args.skip_search:
            size, timings = search_in_process(app, args.search_rounds)
        rows = run_servers(app, url, settings, args, pool)
        final = audit(app)
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f}")
    report_http(rows)
    if not args.skip_search:
        report_search(size, timings)
    bad = final.overbooked + final.mismatched
    print(
        f"\noverbooked slots: {final.overbooked}; slots whose booked ≠ appointments: "
        f"{final.mismatched} → {'OK' if bad == 0 else 'OVERBOOKING FOUND'}"
    )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
