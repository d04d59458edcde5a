"""City operations benchmark: slot generation and one balancing pass over the whole city.

What it does, in-process, on a scratch PostgreSQL database (dropped at the end):
1. builds the demo city the way `flask demo setup` does (168 + 1 centres, the catalogue,
   services and counters), then adds a mobile pool and officer accounts at every centre,
   and `--history-days` open days of past walk-in tickets (so the forecast reads history);
2. times slot generation for the city for `--days` days, from empty and once more (the
   idempotent re-run a rolling scheduler makes);
3. books the central wards' slots full (the crowd the city described) and times one
   balancing pass: load over every centre × `--days` days, the dispatch plan, accepting it,
   and the centre suggestions for one procedure;
4. times what the dashboard and booking suggestions then cost: storing the load snapshot,
   a day's statistics aggregation, and the operations API answers through the app;
5. prints a table of timings and what the pass found.

Not a test: timings depend on the machine. `python bench/operations.py --help`.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

# `python bench/operations.py` puts bench/ on the path, not the repository root it imports from.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, postgres_server_url, print_table, scratch_database

# A Monday, 07:00 in Ho Chi Minh City: the whole day is still ahead.
NOW = datetime(2026, 12, 7, 0, 0, tzinfo=UTC)
DATA = ROOT / "data"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=14, help="days of slots and of balancing")
    parser.add_argument("--history-days", type=int, default=20, help="past open days of tickets")
    parser.add_argument("--walk-ins-per-counter", type=float, default=12.0)
    parser.add_argument("--pool", type=int, default=30, help="officers in the mobile pool")
    parser.add_argument("--officers", type=int, default=3, help="officer accounts per centre")
    parser.add_argument("--crowded", type=int, default=12, help="central centres booked full")
    parser.add_argument("--repeat", type=int, default=3, help="balancing passes (best is shown)")
    parser.add_argument("--seed", type=int, default=20260731)
    return parser.parse_args()


def timed(fn, *args, **kw):
    started = time.perf_counter()
    result = fn(*args, **kw)
    return result, time.perf_counter() - started


def build_city(session) -> None:
    from core import demo
    from core.places import importers

    for path in (DATA / "hcmc_units.csv", DATA / "city_centres.csv"):
        importers.import_centres(session, path)
    importers.import_procedures(session, DATA / "procedures.csv")
    demo.seed_demo(session, now=NOW)
    session.commit()


def add_staff(session, args) -> None:
    """A mobile pool and officer accounts at every centre (one cheap shared hash)."""
    from sqlalchemy import insert, select

    from core.models import Centre, Role, Staff

    rows = [
        {
            "username": f"pool{i}",
            "full_name": f"Tổ lưu động {i}",
            "password_hash": "x",
            "role": Role.OFFICER,
            "centre_id": None,
            "in_mobile_pool": True,
            "created_at": NOW,
        }
        for i in range(args.pool)
    ]
    for centre_id, code in session.execute(select(Centre.id, Centre.code)):
        rows.extend(
            {
                "username": f"bench.{code}.{i}",
                "full_name": f"Cán bộ {i}",
                "password_hash": "x",
                "role": Role.OFFICER,
                "centre_id": centre_id,
                "in_mobile_pool": False,
                "created_at": NOW,
            }
            for i in range(args.officers)
        )
    session.execute(insert(Staff), rows)
    session.commit()


def add_history(session, args, rng: random.Random) -> int:
    """Walk-in tickets on past open days, a morning-heavy profile, volume by counters."""
    from sqlalchemy import insert, select
    from sqlalchemy.orm import selectinload

    from core.booking.slots import counter_weights
    from core.common.timeutil import local_day, local_to_utc
    from core.models import Centre, Counter, Ticket, TicketSource, TicketStatus
    from core.places.calendar import is_open_day

    centres = session.scalars(
        select(Centre).options(
            selectinload(Centre.services),
            selectinload(Centre.counters).selectinload(Counter.service_links),
        )
    ).all()
    days, day = [], local_day(NOW)
    while len(days) < args.history_days:
        day -= timedelta(days=1)
        if day.weekday() < 5:
            days.append(day)
    hours = [(7, 45), (8, 0), (8, 20), (9, 0), (9, 30), (10, 0), (10, 40), (13, 20), (14, 30)]
    weights = [2, 3, 3, 3, 2, 2, 1, 2, 1]
    total, batch = 0, []
    for centre in centres:
        shares = counter_weights(centre.counters)
        for day in days:
            if not is_open_day(centre, day):
                continue
            for service in centre.services:
                count = int(args.walk_ins_per_counter * shares.get(service.id, 0))
                for n in range(count):
                    h, m = rng.choices(hours, weights)[0]
                    at = local_to_utc(day, datetime.min.time().replace(hour=h, minute=m))
                    batch.append(
                        {
                            "public_id": f"b{service.id}-{day:%m%d}-{n}",
                            "centre_id": centre.id,
                            "service_id": service.id,
                            "day": day,
                            "number": n + 1,
                            "label": f"{service.prefix}{n + 1:03d}",
                            "source": TicketSource.WALK_IN,
                            "status": TicketStatus.DONE,
                            "queue_time": at,
                            "issued_at": at,
                        }
                    )
        if len(batch) > 20000:
            session.execute(insert(Ticket), batch)
            total += len(batch)
            batch = []
    if batch:
        session.execute(insert(Ticket), batch)
        total += len(batch)
    session.commit()
    return total


def crowd_the_centre(session, count: int) -> list[str]:
    """Book full every slot of the `count` wards nearest the old District 1."""
    from sqlalchemy import select, update

    from core.booking.availability import haversine_km
    from core.models import Centre, CentreKind, Slot

    wards = session.execute(
        select(Centre.id, Centre.code, Centre.lat, Centre.lon).where(
            Centre.kind == CentreKind.WARD, Centre.lat.is_not(None)
        )
    ).all()
    wards.sort(key=lambda c: (haversine_km(10.7769, 106.7009, c.lat, c.lon), c.code))
    chosen = wards[:count]
    session.execute(
        update(Slot).where(Slot.centre_id.in_([c.id for c in chosen])).values(booked=Slot.capacity)
    )
    session.commit()
    return [c.code for c in chosen]


def balancing_pass(session, days: int, history=None):
    from core.common.timeutil import local_day
    from core.operations.balancing import BalancingPolicy, load
    from core.operations.dispatch import dispatch_plan

    policy = BalancingPolicy()
    report, t_load = timed(
        load, session, None, local_day(NOW), days, now=NOW, policy=policy, history=history
    )
    plan, t_plan = timed(dispatch_plan, session, report, now=NOW, policy=policy)
    return report, plan, t_load, t_plan


def main() -> int:
    args = parse_args()
    rng = random.Random(args.seed)
    from web.extensions import db
    from xephang import create_app

    with scratch_database(postgres_server_url()) as url:
        app = create_app(
            {
                "DATABASE_URL": url,
                "SECRET_KEY": "bench",
                "CITIZEN_ID_KEY": "bench",
                "CLOCK": lambda: NOW,
                "SCHEDULER": "off",
                "RATE_LIMITS_ENABLED": False,
            }
        )
        with app.app_context():
            db.create_all()
            session = db.session
            _, t_city = timed(build_city, session)
            add_staff(session, args)
            tickets, t_hist = timed(add_history, session, args, rng)
            print(f"city built in {t_city:.1f} s; {tickets:,} past tickets in {t_hist:.1f} s")
            rows = run(session, args)
            db.session.remove()
            db.engine.dispose()
    print_table(
        f"City operations on PostgreSQL ({args.days} days; best of {args.repeat} passes)",
        ["step", "seconds", "what"],
        rows,
    )
    return 0


def run(session, args) -> list[tuple[str, float, str]]:
    from sqlalchemy import func, select

    from core.booking.slots import SlotPolicy, generate_slots
    from core.catalogue.search import index
    from core.common.timeutil import local_day
    from core.models import Centre, Slot
    from core.operations.balancing import BalancingPolicy
    from core.operations.dispatch import accept_plan
    from core.operations.forecast import HistoryCache
    from core.operations.suggestions import centres_with_room

    rows = []
    gen, t_gen = timed(generate_slots, session, now=NOW, days=args.days, policy=SlotPolicy())
    session.commit()
    rows.append(("generate slots (empty)", t_gen, f"{gen.created:,} slots created"))
    again, t_again = timed(generate_slots, session, now=NOW, days=args.days, policy=SlotPolicy())
    session.commit()
    rows.append(
        ("generate slots (re-run)", t_again, f"{again.created} created, {again.resized} resized")
    )
    crowded = crowd_the_centre(session, args.crowded)
    centres = session.scalar(select(func.count()).select_from(Centre))
    passes = [balancing_pass(session, args.days) for _ in range(args.repeat)]
    session.rollback()
    report, plan, _, _ = passes[0]
    t_load = min(p[2] for p in passes)
    t_plan = min(p[3] for p in passes)
    overloaded = sum(1 for c in report.centres.values() if c.overloaded)
    deficit = sum(c.deficit for c in report.centres.values())
    rows.append(
        (
            "load, history read (cold)",
            t_load,
            f"{centres} centres, {len(report.centres):,} centre-days, "
            f"{len(report.services):,} line-days; {overloaded} overloaded, {deficit} officers short",
        )
    )
    cache = HistoryCache()
    _, t_history = timed(cache.get, session, now=NOW, policy=BalancingPolicy())
    rows.append(("  of which: history (2 scans of tickets)", t_history, "once a day with a cache"))
    warm = [
        balancing_pass(session, args.days, cache.get(session, now=NOW, policy=BalancingPolicy()))
        for _ in range(args.repeat)
    ]
    session.rollback()
    t_warm = min(p[2] for p in warm)
    rows.append(("load, history cached (warm)", t_warm, "every later pass of the day"))
    moved = sum(m.officers for m in plan.moves)
    pooled = sum(m.officers for m in plan.moves if m.from_centre_id is None)
    rows.append(
        (
            "dispatch plan",
            t_plan,
            f"{len(plan.moves)} moves, {moved} officers ({pooled} pool-days), "
            f"{sum(u.officers for u in plan.unmet)} short unmet",
        )
    )
    rows.append(
        (
            "balancing pass, cold (load + plan)",
            t_load + t_plan,
            f"crowded: {len(crowded)} wards booked full",
        )
    )
    rows.append(("balancing pass, warm (load + plan)", t_warm + t_plan, ""))
    accepted, t_accept = timed(accept_plan, session, plan, now=NOW)
    session.commit()
    rows.append(
        (
            "accept plan",
            t_accept,
            f"{accepted.assignments_created} assignments, {accepted.slots_created} slots "
            f"created, {accepted.slots_resized} resized",
        )
    )
    entry = index.get(session, "1.001193") or next(iter(index.search(session, "khai sinh").items))
    day = local_day(NOW) + timedelta(days=1)
    history = cache.get(session, now=NOW, policy=BalancingPolicy())
    ranked, t_rank = timed(
        centres_with_room, session, entry, day, now=NOW, lat=10.7769, lon=106.7009, history=history
    )
    rows.append(
        (
            "suggestions (one procedure, one day, warm)",
            t_rank,
            f"{len(ranked)} centres; first {ranked[0].centre_code if ranked else '-'}",
        )
    )
    rows.extend(dashboard_queries(session, report, entry.code, args))
    slots = session.scalar(select(func.count()).select_from(Slot))
    rows.append(("(slots in the database)", 0.0, f"{slots:,}"))
    return rows


def _median_request(client, path: str, headers: dict, repeat: int) -> tuple[float, int]:
    """Median seconds of `repeat` GETs of `path` (after one unmeasured), and its status."""
    client.get(path, headers=headers)
    times, status = [], 0
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get(path, headers=headers)
        times.append(time.perf_counter() - started)
        status = response.status_code
    times.sort()
    return times[len(times) // 2], status


def dashboard_queries(session, report, procedure: str, args) -> list[tuple[str, float, str]]:
    """What the dashboard and the booking suggestions cost once the pass has run: storing
    the load snapshot, aggregating a day's statistics, and the operations API answers (median
    of `--repeat` requests through the app, in-process, with an operator's token)."""
    from flask import current_app
    from sqlalchemy import select

    from core.access.staff_tokens import issue_staff_token
    from core.common.timeutil import local_day
    from core.models import Centre, CentreKind, Role, Staff
    from core.operations.statistics import aggregate_day
    from core.places import load as load_snapshot

    rows = []
    stored, t_store = timed(load_snapshot.store, session, report.centres, now=NOW)
    session.commit()
    rows.append(("store load snapshot", t_store, f"{stored:,} centre-days"))
    today = local_day(NOW)
    past = [today - timedelta(days=n) for n in range(1, 8)]
    written, t_agg = 0, 0.0
    for day in past:
        n, t = timed(aggregate_day, session, day, now=NOW)
        session.commit()
        written, t_agg = written + n, t_agg + t
    rows.append(
        ("daily statistics, one city day", t_agg / len(past), f"{written // len(past):,} rows")
    )
    operator = Staff(
        username="bench.operator",
        full_name="Điều phối viên",
        password_hash="x",
        role=Role.OPERATOR,
        created_at=NOW,
    )
    session.add(operator)
    session.flush()
    token, _ = issue_staff_token(session, operator, now=NOW, days=1)
    headers = {"Authorization": f"Bearer {token}"}
    session.commit()
    ward = session.scalars(
        select(Centre.code).where(Centre.kind == CentreKind.WARD).order_by(Centre.code)
    ).first()
    place = "lat=10.7769&lon=106.7009"
    queries = [
        ("GET /load, city × 7 days", "/api/v1/load?days=7"),
        ("GET /load, city × 1 day", "/api/v1/load?days=1"),
        ("GET /stats/centres, today (live)", "/api/v1/stats/centres"),
        ("GET /stats/centres, past day", f"/api/v1/stats/centres?date={past[0]}"),
        ("GET /dispatch-plan", "/api/v1/dispatch-plan"),
        (
            "GET /stats/centres/<ward>, 7 days",
            f"/api/v1/stats/centres/{ward}?from={past[-1]}&to={today}",
        ),
        ("GET /suggestions (with snapshot)", f"/api/v1/suggestions?procedure={procedure}&{place}"),
        ("GET /centres?procedure= (ranked)", f"/api/v1/centres?procedure={procedure}&{place}"),
    ]
    client = current_app.test_client()
    for label, path in queries:
        seconds, status = _median_request(client, path, headers, args.repeat)
        what = f"HTTP {status}" if status != 200 else f"median of {args.repeat}"
        rows.append((label, seconds, what))
    return rows


if __name__ == "__main__":
    sys.exit(main())
