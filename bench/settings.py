"""Which gunicorn settings suit xephang: the floor's hot paths and the bare endpoint served
with the same settings, for several settings, measured in interleaved rounds.

The machine is shared: other work comes and goes within seconds, which skews a setting
measured alone. Here every setting's two servers (bench.bare_app and wsgi:app) are up at
once and each round measures every setting back to back (the bare endpoint, the bare Core
transaction, walk-ins from the kiosks, call-next + start until the queue is empty, then
bookings by new citizens), so a burst of other load hits each row alike; the table shows
the median of the rounds.

Bounded and on loopback only; a scratch PostgreSQL database, dropped at the end; the floor
audit (unique, gap-free labels, nobody called twice) runs on everything issued.

    python bench/settings.py                                  # sync 2/3/4, gthread 2×8
    python bench/settings.py --settings sync:2 gthread:1:16 --rounds 5
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.booking import Target, booking_calls
from bench.common import (
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
from bench.floor import app_env, audit, build_floor, run_kiosks, run_officers
from bench.profile_hot import add_bookable_slots

PATHS = ("bare", "bare tx", "walk-in", "call-next", "booking")

DEFAULT_SETTINGS = ["sync:2", "sync:3", "sync:4", "gthread:2:8"]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--settings",
        nargs="+",
        default=DEFAULT_SETTINGS,
        help="worker class:workers[:threads], e.g. sync:3 gthread:2:8",
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument(
        "--tickets", type=int, default=1000, help="walk-ins (and bookings) per round"
    )
    parser.add_argument("--duration", type=float, default=15.0, help="cap per row, seconds")
    return parser.parse_args()


def parse_setting(text: str) -> ServerSettings:
    parts = text.split(":")
    if parts[0] not in ("sync", "gthread") or len(parts) not in (2, 3):
        raise SystemExit(f"bad setting {text!r}: use sync:N or gthread:N:T")
    threads = int(parts[2]) if len(parts) == 3 else 1
    return ServerSettings(parts[0], int(parts[1]), threads)


def main() -> int:
    args = parse_args()
    settings = [parse_setting(s) for s in args.settings]
    body = json.dumps({"service": "A"}).encode()
    rows: dict[ServerSettings, dict[str, list[LoadResult]]] = {
        s: {path: [] for path in PATHS} for s in settings
    }
    with scratch_database(postgres_server_url()) as url:
        from bench import bare_app
        from xephang import create_app

        app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench-secret"})
        floor = build_floor(app, args.clients, args.clients)
        slot_ids, procedure = add_bookable_slots(app, floor.centre_code, 60)
        targets = [Target(slot_id, procedure, 100_000) for slot_id in slot_ids]
        rng, citizens = random.Random(7), 0
        bare_app.create_tables(url)
        print(
            f"{len(settings)} settings × {args.rounds} rounds, {args.clients} clients, "
            f"{args.tickets} walk-ins per round; load average {os.getloadavg()[0]:.1f} "
            f"on {os.cpu_count()} cores"
        )
        with ExitStack() as stack:
            ports = {}
            for setting in settings:
                # The limiter stays in the path, but a bench from one address must not trip it.
                env = {**app_env(url, setting), "XEPHANG_RATE_LIMIT_BOOKING": "1000000 per minute"}
                bare_env = {
                    "XEPHANG_BENCH_TX_URL": url,
                    "XEPHANG_SQL_POOL_SIZE": env["XEPHANG_SQL_POOL_SIZE"],
                }
                bare = stack.enter_context(gunicorn("bench.bare_app:app", setting, bare_env))
                port = stack.enter_context(gunicorn("wsgi:app", setting, env))
                ports[setting] = (bare, port)
                # Warm every worker: connections, compiled statements, token cache.
                run_kiosks(port, floor, 4, 40, 10)
                run_officers(port, floor.officers[: args.clients], 10)
                run_load(bare, split([Call("POST", "/bare", body)] * 40, 4), 10)
                run_load(bare, split([Call("POST", "/tx", body)] * 40, 4), 10)
                run_load(port, split(booking_calls(targets, 40, citizens, rng), 4), 10)
                citizens += 40
            for round_ in range(args.rounds):
                for setting in settings:
                    bare, port = ports[setting]
                    calls = [Call("POST", "/bare", body)] * (args.tickets * 2)
                    rows[setting]["bare"].append(
                        run_load(bare, split(calls, args.clients), args.duration)
                    )
                    tx = [Call("POST", "/tx", body)] * args.tickets
                    rows[setting]["bare tx"].append(
                        run_load(bare, split(tx, args.clients), args.duration)
                    )
                    rows[setting]["walk-in"].append(
                        run_kiosks(port, floor, args.clients, args.tickets, args.duration)
                    )
                    rows[setting]["call-next"].append(
                        run_officers(port, floor.officers[: args.clients], args.duration)
                    )
                    bookings = booking_calls(targets, args.tickets, citizens, rng)
                    citizens += args.tickets
                    booked = run_load(port, split(bookings, args.clients), args.duration)
                    if set(booked.statuses) != {201}:
                        print(f"bookings answered {dict(booked.statuses)}, not all 201")
                    rows[setting]["booking"].append(booked)
                print(f"round {round_ + 1} done; load average {os.getloadavg()[0]:.1f}")
        result = audit(url)
    table = []
    for setting in settings:
        bares = rows[setting]["bare"]
        for name in PATHS:
            results = rows[setting][name]
            rate = statistics.median(r.rate for r in results)
            # Each round's rows ran back to back: its own ratio cancels most of the drift.
            ratios = [r.rate / b.rate for r, b in zip(results, bares, strict=True)]
            table.append(
                [
                    setting.describe(),
                    name,
                    rate,
                    statistics.median(r.percentile(50) for r in results),
                    statistics.median(r.percentile(99) for r in results),
                    f"{statistics.median(ratios):.2f}×",
                    " / ".join(f"{r.rate:,.0f}" for r in results),
                ]
            )
    print_table(
        f"Median of {args.rounds} interleaved rounds at {args.clients} clients "
        "(× bare: the median of each round's ratio; call-next: each officer starts the ticket "
        "before calling again, start not counted; booking: a new citizen each time)",
        ["server", "path", "req/s", "p50 ms", "p99 ms", "× bare", "req/s per round"],
        table,
    )
    bad = result.duplicate_labels + result.gaps + result.called_twice + result.two_counters
    print(
        f"\ntickets issued: {result.issued:,}; duplicate labels: {result.duplicate_labels}; "
        f"gaps: {result.gaps}; called twice: {result.called_twice}; called by two counters: "
        f"{result.two_counters} → {'OK' if bad == 0 else 'FLOOR INVARIANT BROKEN'}"
    )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
