"""Finding the head of a counter's queue as the queue grows, on PostgreSQL: the claim's lookup
(core.floor.tickets.head_of_queue, two steps along indexes) beside one query that sorts every
waiting ticket of the centre in the same order (the lookup before it), in the same run.

For each queue length: a scratch database holds one centre whose counters serve one line, N
waiting tickets (1 in 50 priority) and twice as many finished ones; both lookups run as
prepared statements (generic plans after warm-up, as psycopg and PostgreSQL do for the web
workers), each inside a transaction that is rolled back, so nothing changes between rounds.
Both must name the same ticket. Prints the median and p99 per lookup, in ms.

Not a test: timings depend on the machine. `python bench/queue_head.py --queues 100 1000 10000`.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import percentile, postgres_server_url, print_table, scratch_database
from bench.floor import build_floor

COUNTERS = 20


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queues", type=int, nargs="+", default=[100, 1000, 5000, 20000])
    parser.add_argument("--rounds", type=int, default=300, help="timed lookups per row")
    return parser.parse_args()


def sort_all(counter_id, centre_id, day):
    """The head in one sorted query over every waiting ticket of the centre."""
    from sqlalchemy import case, or_, select

    from core.models import CounterService, PriorityClass, Ticket, TicketStatus

    link = CounterService
    return (
        select(Ticket.id)
        .join(link, (link.service_id == Ticket.service_id) & (link.counter_id == counter_id))
        .where(
            Ticket.centre_id == centre_id,
            Ticket.day == day,
            Ticket.status == TicketStatus.WAITING,
            or_(Ticket.target_counter_id.is_(None), Ticket.target_counter_id == counter_id),
        )
        .order_by(
            case((Ticket.target_counter_id == counter_id, 0), else_=1),
            case((Ticket.priority != PriorityClass.NONE, 0), else_=1),
            Ticket.queue_time,
            link.rank,
            Ticket.id,
        )
        .limit(1)
        .with_for_update(of=Ticket, skip_locked=True)
        .scalar_subquery()
    )


FILL = """
INSERT INTO tickets (public_id, centre_id, service_id, day, number, label, source, priority,
                     status, queue_time, issued_at, call_count)
SELECT 'q' || :start + g, :centre, :service, :day, :start + g, 'A' || (:start + g),
       'walk_in', CASE WHEN g % 50 = 0 THEN 'elderly' ELSE 'none' END,
       :status, :t0 + g * interval '1 second', :t0 + g * interval '1 second', 0
FROM generate_series(1, :n) AS g
"""


def measure(url: str, queue: int, rounds: int) -> tuple[list[float], list[float]]:
    from sqlalchemy import bindparam, create_engine, select, text

    from core.common.timeutil import local_day, utcnow
    from core.floor import tickets
    from core.models import Centre, Service
    from xephang import create_app

    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench", "SCHEDULER": "off"})
    floor = build_floor(app, kiosks=0, counters=COUNTERS)
    engine = create_engine(url)
    now = utcnow()
    day = local_day(now)
    with engine.begin() as conn:
        centre = conn.execute(select(Centre.id).where(Centre.code == floor.centre_code)).scalar()
        service = conn.execute(select(Service.id).where(Service.centre_id == centre)).scalar()
        base = {"centre": centre, "service": service, "day": day, "t0": now}
        conn.execute(text(FILL), {**base, "start": 0, "n": 2 * queue, "status": "done"})
        conn.execute(text(FILL), {**base, "start": 2 * queue, "n": queue, "status": "waiting"})
        conn.exec_driver_sql("ANALYZE tickets")
    params = {"counter": floor.officers[0][0], "centre": centre, "day": day}
    args = (bindparam("counter"), bindparam("centre"), bindparam("day"))
    lookups = [
        select(tickets.head_of_queue(*args, regular_turn=False)),
        select(sort_all(*args)),
    ]
    times: list[list[float]] = [[], []]
    with engine.connect() as conn:
        for i in range(rounds + 20):  # the first rounds prepare and settle the plans
            heads = []
            for which, lookup in enumerate(lookups):
                started = time.perf_counter()
                heads.append(conn.execute(lookup, params).scalar())
                elapsed = (time.perf_counter() - started) * 1000
                conn.rollback()
                if i >= 20:
                    times[which].append(elapsed)
            if heads[0] != heads[1]:
                raise SystemExit(f"the lookups disagree at queue {queue}: {heads}")
    engine.dispose()
    with app.app_context():
        from web.extensions import db

        db.engine.dispose()
    return times[0], times[1]


def main() -> int:
    args = parse_args()
    rows = []
    for queue in args.queues:
        with scratch_database(postgres_server_url()) as url:
            two_steps, by_sort = measure(url, queue, args.rounds)
        rows.append(
            (
                f"{queue:,}",
                statistics.median(two_steps),
                percentile(two_steps, 99),
                statistics.median(by_sort),
                percentile(by_sort, 99),
                f"{statistics.median(by_sort) / statistics.median(two_steps):.1f}×",
            )
        )
    print_table(
        "Head of a counter's queue on PostgreSQL (ms per lookup, round trip included)",
        ["waiting", "two steps p50", "two steps p99", "sort all p50", "sort all p99", "gain"],
        rows,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
