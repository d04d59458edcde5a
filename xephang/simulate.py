"""`flask simulate day`: a city day on scratch databases, without and with the dispatch plan.

The operator's database is never touched: the demo city is built in a scratch database (a
temporary SQLite file, or fresh databases on the PostgreSQL server of `--database-url`),
officers are seated and citizens book ahead there, and that state is copied: once as it is
(the day as staffed) and once after the dispatch plan has been computed and accepted. The
day itself is played by core.operations.simulation, one engine transaction per action.

The engine costs about 3 ms of CPU per action and a city day is some 200,000 actions: too
slow for one process. So the day is played in batches of centres (a few thousand citizens
each), in parallel processes, each batch on its own copy: centres do not interact during a
day, and officers moved by the plan are already in the copy. The plan changes nothing at a
centre that neither receives nor lends officers and the day is deterministic, so run 2
replays only the centres the plan touches (`--full` replays them all; the tests check that
an untouched centre's day comes out the same, and that batches change nothing).
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import click
import sqlalchemy as sa
from flask import Flask
from flask.cli import AppGroup
from sqlalchemy.orm import Session

from core import demo
from core.booking.slots import generate_slots
from core.catalogue import search as catalogue
from core.common.timeutil import local_day, local_to_utc
from core.models import Centre
from core.operations import simulation
from core.operations.balancing import BalancingPolicy
from core.operations.simulation import (
    Audit,
    CentreResult,
    Demand,
    DemandOptions,
    RunStats,
    TicketRow,
)
from core.places import importers
from core.places.calendar import is_public_holiday
from display.bridge import EXTENSION_KEY
from web.clock import clock
from web.db import transaction
from web.extensions import db
from web.settings import booking_rules, citizen_key, floor_rules, secret, slot_policy
from xephang import create_app
from xephang.cli import CENTRE_FILES, PROCEDURE_FILE

simulate_cli = AppGroup("simulate", help="Simulations on a scratch database.")

RUNS = ("without", "with")
# Below this many citizens a second process costs more than it saves.
PARALLEL_FROM = 5000
# Citizens per batch at most: the engine finds a counter's current ticket by scanning the
# day's tickets (no index on tickets.counter_id), so a copy holding fewer centres is faster.
BATCH_CITIZENS = 3000


# --- scratch databases --------------------------------------------------------------------------


class SqliteStore:
    """Scratch SQLite files in a folder: a fresh temporary one, or next to a given file."""

    def __init__(self, path: Path | None = None) -> None:
        self._temporary = path is None
        if path is None:
            self.folder = Path(tempfile.mkdtemp(prefix="xephang-sim-"))
            self.stem = "city"
        else:
            if path.exists():
                raise click.ClickException(
                    f"{path} exists: the simulation builds its own database and never "
                    "touches an existing one"
                )
            path.parent.mkdir(parents=True, exist_ok=True)
            self.folder, self.stem = path.parent, path.stem
        self.kept: list[str] = []

    def _path(self, name: str) -> Path:
        return self.folder / (f"{self.stem}.db" if name == "base" else f"{self.stem}-{name}.db")

    def url(self, name: str) -> str:
        return f"sqlite:///{self._path(name)}"

    def create(self, name: str, template: str | None = None) -> None:
        target = self._path(name)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{target}{suffix}").unlink(missing_ok=True)
        if template is not None:
            shutil.copyfile(self._path(template), target)

    def drop(self, name: str) -> None:
        if not self._temporary and name in ("base", "plan"):
            self.kept.append(str(self._path(name)))
            return
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self._path(name)}{suffix}").unlink(missing_ok=True)

    def close(self, *, failed: bool = False) -> None:
        if self._temporary:
            shutil.rmtree(self.folder, ignore_errors=True)
        elif failed:  # nothing worth keeping, and the path must be free for the next try
            for name in ("base", "plan"):
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{self._path(name)}{suffix}").unlink(missing_ok=True)


class PostgresStore:
    """Scratch databases created on a PostgreSQL server (copies from templates), dropped
    at the end; the database named in the URL is only used to connect."""

    def __init__(self, url: str) -> None:
        self.server = sa.engine.make_url(url)
        self.prefix = f"xephang_sim_{secrets.token_hex(4)}"
        self.admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
        self.created: list[str] = []
        self.kept: list[str] = []

    def _name(self, name: str) -> str:
        return f"{self.prefix}_{name}"

    def url(self, name: str) -> str:
        return self.server.set(database=self._name(name)).render_as_string(hide_password=False)

    def create(self, name: str, template: str | None = None) -> None:
        sql = f'CREATE DATABASE "{self._name(name)}"'
        if template is not None:
            sql += f' TEMPLATE "{self._name(template)}"'
        try:
            with self.admin.connect() as conn:
                conn.exec_driver_sql(sql)
        except sa.exc.SQLAlchemyError as exc:
            raise click.ClickException(
                f"cannot create a scratch database on {self.server.render_as_string()}: "
                f"{getattr(exc, 'orig', exc)} (the role needs CREATEDB)"
            ) from exc
        self.created.append(name)

    def drop(self, name: str) -> None:
        with self.admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{self._name(name)}" WITH (FORCE)')
        if name in self.created:
            self.created.remove(name)

    def close(self, *, failed: bool = False) -> None:
        for name in list(self.created):
            self.drop(name)
        self.admin.dispose()


Store = SqliteStore | PostgresStore


def open_store(database_url: str | None) -> Store:
    """Where the scratch databases go: a temporary folder by default."""
    if not database_url:
        return SqliteStore()
    url = sa.engine.make_url(database_url)
    if url.get_backend_name() == "sqlite":
        if not url.database or url.database == ":memory:":
            raise click.BadParameter("give a file path", param_hint="--database-url")
        return SqliteStore(Path(url.database))
    if url.get_backend_name() == "postgresql":
        return PostgresStore(database_url)
    raise click.BadParameter("SQLite or PostgreSQL only", param_hint="--database-url")


@contextmanager
def scratch_app(
    url: str, config: dict[str, Any], sim_clock: simulation.SimClock
) -> Iterator[Flask]:
    """An app on a scratch database with the simulated clock, no Redis and no live screens
    (a board somewhere must never show a simulated ticket); closed cleanly for copying."""
    app = create_app(
        {
            **config,
            "DATABASE_URL": url,
            "REDIS_URL": "",
            "SCHEDULER": "off",
            "RATE_LIMITS_ENABLED": False,
            "CLOCK": sim_clock,
        }
    )
    app.extensions.pop(EXTENSION_KEY, None)
    with app.app_context():
        catalogue.index.invalidate()  # the index is per process: it may hold another database
        try:
            yield app
        finally:
            db.session.remove()
            if db.engine.dialect.name == "sqlite":
                with db.engine.connect() as conn:
                    conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            db.engine.dispose()
            catalogue.index.invalidate()


# --- the demo city ------------------------------------------------------------------------------


def build_demo_city(session: Session, now: datetime, centres: int | None) -> None:
    """What `flask demo setup` does (the same core functions), on the first `centres`
    centres by code when given; slots for the simulated day."""
    with transaction(session):
        for path in CENTRE_FILES:
            importers.import_centres(session, path)
    with transaction(session):
        importers.import_procedures(session, PROCEDURE_FILE)
    catalogue.index.invalidate()
    if centres is not None:
        with transaction(session):
            codes = session.scalars(sa.select(Centre.code).order_by(Centre.code)).all()
            session.execute(
                sa.update(Centre).where(Centre.code.in_(codes[centres:])).values(active=False)
            )
    with transaction(session):
        demo.seed_demo(session, now=now)
    with transaction(session):
        generate_slots(session, now=now, days=2, policy=slot_policy())


# --- the pipeline -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    day: date
    demand: DemandOptions = field(default_factory=DemandOptions)
    workers: int | None = None  # None: one process for a small day, else up to 4
    pool: int = 0  # officers in the mobile pool
    learnt: bool = True  # the plan's forecast sees the history such days leave
    full: bool = False  # run 2 replays every centre, not only those the plan touches
    config: dict[str, Any] = field(default_factory=dict)  # app settings for scratch apps


@dataclass(frozen=True)
class Job:
    run: str
    name: str  # of its scratch database
    url: str
    demand: Demand
    config: dict[str, Any]


@dataclass
class JobResult:
    run: str
    rows: list[TicketRow]
    audit: Audit
    stats: RunStats
    seconds: float


def run_job(job: Job) -> JobResult:
    """Play the day at the job's centres on its copy (in a worker process, or in this one)."""
    started = time.perf_counter()
    day = job.demand.day
    sim_clock = simulation.SimClock(local_to_utc(day, datetime.min.time()))
    with scratch_app(job.url, job.config, sim_clock):
        ids = sorted(job.demand.factors)
        run = simulation.DayRun(
            db.session(),
            sim_clock,
            job.demand,
            rules=floor_rules(),
            secret=secret(),
            centre_ids=ids,
        )
        stats = run.run()
        rows = simulation.ticket_rows(db.session(), day, ids)
        checked = simulation.audit(db.session(), day, ids)
        db.session.rollback()
    return JobResult(job.run, rows, checked, stats, time.perf_counter() - started)


def simulate(
    store: Store,
    build: Callable[[Session, datetime], None],
    settings: Settings,
    echo: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """Build, book, plan and play the day twice; the full result (as `--json` writes it)."""
    started = time.perf_counter()
    timing: dict[str, float] = {}
    config = {
        "SECRET_KEY": secrets.token_urlsafe(32),
        "CITIZEN_ID_KEY": secrets.token_urlsafe(32),
        **settings.config,
    }
    evening = local_to_utc(settings.day - timedelta(days=1), datetime.min.time().replace(hour=20))
    sim_clock = simulation.SimClock(evening)
    store.create("base")
    with scratch_app(store.url("base"), config, sim_clock) as app:
        db.create_all()
        echo("building the city …")
        build(db.session(), evening)
        simulation.staff_counters(db.session(), now=evening, pool=settings.pool)
        policy = BalancingPolicy.from_config(app.config)
        demand = simulation.draw_demand(db.session(), settings.day, settings.demand, policy)
        if not demand.factors:
            raise click.ClickException(f"no centre is open on {settings.day.isoformat()}")
        meta = _centre_meta(db.session(), demand)
        timing["setup"] = time.perf_counter() - started
        echo(f"{len(demand.citizens):,} citizens at {len(demand.factors)} centres; booking ahead …")
        mark = time.perf_counter()
        booked = simulation.book_ahead(
            db.session(),
            demand,
            now=evening,
            rules=booking_rules(),
            secret=secret(),
            key=citizen_key(),
        )
        timing["bookings"] = time.perf_counter() - mark
    mark = time.perf_counter()
    store.create("plan", template="base")
    sim_clock.now = evening + timedelta(hours=1)
    with scratch_app(store.url("plan"), config, sim_clock):
        outcome = simulation.plan_and_accept(
            db.session(),
            demand,
            now=sim_clock.now,
            policy=policy,
            slot_policy=slot_policy(),
            learnt=settings.learnt,
        )
    timing["plan"] = time.perf_counter() - mark
    replay = set(demand.factors) if settings.full else outcome.touched
    results, workers = _play(store, demand, replay, config, settings, echo, timing)
    for name in ("base", "plan"):
        store.drop(name)
    timing["total"] = time.perf_counter() - started
    report = _report(settings, demand, booked, outcome, meta, results, replay, timing)
    report["workers"] = workers
    return report


def _play(
    store: Store,
    demand: Demand,
    replay: set[int],
    config: dict[str, Any],
    settings: Settings,
    echo: Callable[[str], None],
    timing: dict[str, float],
) -> tuple[dict[str, list[JobResult]], int]:
    mark = time.perf_counter()
    workers = settings.workers or (
        1 if len(demand.citizens) < PARALLEL_FROM else min(os.cpu_count() or 1, 4)
    )
    jobs: list[Job] = []
    for run, source, centres in (
        ("without", "base", set(demand.factors)),
        ("with", "plan", replay),
    ):
        citizens = sum(1 for c in demand.citizens if c.centre_id in centres)
        count = max(workers, math.ceil(citizens / BATCH_CITIZENS))
        for k, batch in enumerate(_batches(demand, centres, count)):
            name = f"{run}-{k}"
            store.create(name, template=source)
            jobs.append(Job(run, name, store.url(name), demand.of_centres(batch), config))
    jobs.sort(key=lambda j: -len(j.demand.citizens))
    echo(f"playing the day: {len(jobs)} batches of centres on {workers} process(es) …")
    try:
        if workers == 1:
            done = [run_job(job) for job in jobs]
        else:
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
                done = list(pool.map(run_job, jobs))
    finally:
        for job in jobs:
            store.drop(job.name)
    timing["day"] = time.perf_counter() - mark
    out: dict[str, list[JobResult]] = {run: [] for run in RUNS}
    for result in done:
        out[result.run].append(result)
    return out, workers


def _batches(demand: Demand, centres: set[int], n: int) -> list[list[int]]:
    """Centres in `n` batches of about equal citizens (largest first, to the lightest)."""
    size: dict[int, int] = dict.fromkeys(centres, 0)
    for citizen in demand.citizens:
        if citizen.centre_id in size:
            size[citizen.centre_id] += 1
    batches: list[list[int]] = [[] for _ in range(max(1, min(n, len(centres))))]
    weight = [0] * len(batches)
    for centre_id in sorted(size, key=lambda c: (-size[c], c)):
        k = weight.index(min(weight))
        batches[k].append(centre_id)
        weight[k] += size[centre_id] + 1
    return [b for b in batches if b]


# --- the result ---------------------------------------------------------------------------------


def _centre_meta(session: Session, demand: Demand) -> dict[int, tuple[str, str]]:
    rows = session.execute(
        sa.select(Centre.id, Centre.code, Centre.name).where(Centre.id.in_(list(demand.factors)))
    )
    return {centre_id: (code, name) for centre_id, code, name in rows}


def _merge_audits(audits: list[Audit]) -> Audit:
    return Audit(
        tickets=sum(a.tickets for a in audits),
        issued_events=sum(a.issued_events for a in audits),
        unfinished=sum(a.unfinished for a in audits),
        other_endings=sum(a.other_endings for a in audits),
        label_problems=tuple(p for a in audits for p in a.label_problems),
        completed_twice=sum(a.completed_twice for a in audits),
        appointments_twice=sum(a.appointments_twice for a in audits),
    )


def _run_summary(jobs: list[JobResult]) -> dict[str, Any]:
    checked = _merge_audits([j.audit for j in jobs])
    issued = sum(j.stats.issued for j in jobs)
    return {
        "audit": {
            **asdict(checked),
            "label_problems": list(checked.label_problems),
            "ok": checked.ok and issued == checked.tickets,
        },
        "tickets_handed_to_citizens": issued,
        "turned_away": sum(j.stats.turned_away for j in jobs),
        "engine_actions": sum(j.stats.actions for j in jobs),
        "events": sum(j.stats.events for j in jobs),
        "seconds": round(sum(j.seconds for j in jobs), 1),
    }


def _report(
    settings: Settings,
    demand: Demand,
    booked: simulation.BookingReport,
    outcome: simulation.PlanOutcome,
    meta: dict[int, tuple[str, str]],
    results: dict[str, list[JobResult]],
    replay: set[int],
    timing: dict[str, float],
) -> dict[str, Any]:
    without_rows = [r for job in results["without"] for r in job.rows]
    with_rows = [r for job in results["with"] for r in job.rows] + [
        r for r in without_rows if r.centre_id not in replay
    ]
    empty = simulation.summarise([])
    before, after = simulation.centre_results(without_rows), simulation.centre_results(with_rows)
    staffed = {c: n for job in results["without"] for c, n in job.stats.officers.items()}
    restaffed = {
        **staffed,
        **{c: n for job in results["with"] for c, n in job.stats.officers.items()},
    }
    by_line = {
        run: _by_line(rows) for run, rows in (("without", without_rows), ("with", with_rows))
    }
    receives: dict[int, int] = {}
    lends: dict[int, int] = {}
    for move in outcome.plan.moves:
        receives[move.to_centre_id] = receives.get(move.to_centre_id, 0) + move.officers
        if move.from_centre_id is not None:
            lends[move.from_centre_id] = lends.get(move.from_centre_id, 0) + move.officers
    centres = []
    for centre_id in sorted(demand.factors, key=lambda c: meta[c][0]):
        code, name = meta[centre_id]
        load = outcome.loads.get(centre_id)
        centres.append(
            {
                "code": code,
                "name": name,
                "demand_factor": round(demand.factors[centre_id], 2),
                "popular": centre_id in demand.popular,
                "overloaded": bool(load and load.overloaded),
                "officers_needed": load.needed if load else None,
                "receives": receives.get(centre_id, 0),
                "lends": lends.get(centre_id, 0),
                "officers": [staffed.get(centre_id, 0), restaffed.get(centre_id, 0)],
                "replayed": centre_id in replay,
                "without": asdict(before.get(centre_id, empty)),
                "with": asdict(after.get(centre_id, empty)),
                "lines": {
                    run: {k: asdict(v) for k, v in sorted(by_line[run][centre_id].items())}
                    for run in RUNS
                },
            }
        )
    return {
        "day": settings.day.isoformat(),
        "seed": settings.demand.seed,
        "scale": settings.demand.scale,
        "demand_options": asdict(settings.demand),
        "centres": len(demand.factors),
        "citizens": len(demand.citizens),
        "booked_ahead": booked.booked,
        "found_day_full": booked.day_full,
        "plan": {
            "id": outcome.plan.id,
            "learnt_forecast": settings.learnt,
            "moves": [
                {
                    "to": meta[m.to_centre_id][0],
                    "from": meta[m.from_centre_id][0] if m.from_centre_id in meta else None,
                    "officers": m.officers,
                    "km": m.distance_km,
                    "p90_before": m.wait_p90_before,
                    "p90_after": m.wait_p90_after,
                }
                for m in outcome.plan.moves
            ],
            "unmet": [
                {"centre": u.centre_code, "officers": u.officers} for u in outcome.plan.unmet
            ],
        },
        "runs": {
            "without": {
                **asdict(simulation.summarise(without_rows)),
                **_run_summary(results["without"]),
            },
            "with": {**asdict(simulation.summarise(with_rows)), **_run_summary(results["with"])},
        },
        "per_centre": centres,
        "timing_seconds": {k: round(v, 1) for k, v in timing.items()},
    }


def _by_line(rows: list[TicketRow]) -> dict[int, dict[str, CentreResult]]:
    grouped: dict[int, dict[str, list[TicketRow]]] = {}
    for row in rows:
        grouped.setdefault(row.centre_id, {}).setdefault(row.line, []).append(row)
    return {
        c: {line: simulation.summarise(group) for line, group in lines.items()}
        for c, lines in grouped.items()
    }


def _wait(result: dict[str, Any]) -> str:
    def num(v: float | None) -> str:
        return "–" if v is None else f"{v:.0f}"

    return f"{num(result['p50'])} / {num(result['p90'])}"


def _role(row: dict[str, Any]) -> str:
    if row["receives"]:
        return f"+{_count(row['receives'], 'officer')}"
    if row["lends"]:
        return f"lends {row['lends']}"
    if row["overloaded"]:
        return "overloaded"
    return "popular" if row["popular"] else ""


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _seconds(value: float) -> str:
    minutes, seconds = divmod(round(value), 60)
    return f"{minutes} min {seconds} s" if minutes else f"{seconds} s"


_COLUMNS = "{:<30} {:<12} {:>7} {:>14} {:>12} {:>12} {:>9}"


def format_report(report: dict[str, Any], *, show_all: bool = False) -> str:
    """The plain-text table (centres that matter, or all) and the city totals."""
    plan = report["plan"]
    moved = sum(m["officers"] for m in plan["moves"])
    pooled = sum(m["officers"] for m in plan["moves"] if m["from"] is None)
    short = sum(u["officers"] for u in plan["unmet"])
    receivers = len({m["to"] for m in plan["moves"]})
    lines = [
        f"Simulated day {report['day']}, seed {report['seed']}, scale {report['scale']}: "
        f"{_count(report['centres'], 'centre')}, {_count(report['citizens'], 'citizen')} "
        f"({report['booked_ahead']:,} booked ahead, {report['found_day_full']:,} found the "
        "day full)",
        f"Dispatch plan {plan['id']}: {_count(moved, 'officer')} moved to "
        f"{_count(receivers, 'centre')} ({pooled} from the mobile pool), {short} still short",
        "",
    ]
    head = _COLUMNS.format(
        "centre", "role", "tickets", "served w/o→with", "p50/p90 w/o", "p50/p90 with", "officers"
    )
    lines += [head, "-" * len(head)]
    rows = report["per_centre"]
    shown = rows if show_all else [r for r in rows if _role(r)]
    for r in shown:
        before, after = r["without"], r["with"]
        lines.append(
            _COLUMNS.format(
                _clip(f"{r['code']} {r['name']}", 30),
                _role(r),
                before["tickets"],
                f"{before['served']} → {after['served']}",
                _wait(before),
                _wait(after),
                f"{r['officers'][0]} → {r['officers'][1]}",
            )
        )
    if len(shown) < len(rows):
        lines.append(f"({_count(len(rows) - len(shown), 'other centre')}: --all lists them)")
    w, p = report["runs"]["without"], report["runs"]["with"]
    lines += [
        "-" * len(head),
        _COLUMNS.format(
            "city", "", w["tickets"], f"{w['served']} → {p['served']}", _wait(w), _wait(p), ""
        ).rstrip(),
        "",
        f"citizens waiting over 30 min: {w['over_30']:,} → {p['over_30']:,}",
        f"p90 wait across the city: {_wait(w).split(' / ')[1]} → {_wait(p).split(' / ')[1]} min",
        f"served (whoever is called before closing time): {w['served']:,} → {p['served']:,} "
        f"of {w['tickets']:,} tickets; still waiting at closing {w['waiting']:,} → "
        f"{p['waiting']:,}; no-shows {w['no_shows']:,} → {p['no_shows']:,}",
        "audit: "
        + (
            "ok (every ticket served, no-show or waiting at closing, none lost; labels unique "
            "and gap-free per line; nobody served twice)"
            if w["audit"]["ok"] and p["audit"]["ok"]
            else f"FAILED: {json.dumps({'without': w['audit'], 'with': p['audit']})}"
        ),
    ]
    t = report["timing_seconds"]
    actions = w["engine_actions"] + p["engine_actions"]
    busy = w["seconds"] + p["seconds"]
    processes = "1 process" if report["workers"] == 1 else f"{report['workers']} processes"
    lines.append(
        f"took {_seconds(t['total'])}: setup {_seconds(t['setup'])}, bookings "
        f"{_seconds(t['bookings'])}, plan {_seconds(t['plan'])}, the day twice "
        f"{_seconds(t['day'])} on {processes} ({actions:,} engine transactions, "
        f"{1000 * busy / max(actions, 1):.1f} ms each)"
    )
    return "\n".join(lines)


# --- the command --------------------------------------------------------------------------------


def next_working_day(today: date) -> date:
    """The first weekday after `today` that is not a public holiday."""
    day = today + timedelta(days=1)
    while day.weekday() >= 5 or is_public_holiday(day):
        day += timedelta(days=1)
    return day


@simulate_cli.command("day")
@click.option(
    "--date",
    "when",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="Day to simulate (YYYY-MM-DD). Default: the next working day.",
)
@click.option("--seed", type=int, default=1, show_default=True, help="Same seed, same citizens.")
@click.option(
    "--centres", type=click.IntRange(1), default=None, help="Only the first N centres by code."
)
@click.option(
    "--scale",
    type=click.FloatRange(0.05, 10.0),
    default=1.0,
    show_default=True,
    help="Demand multiplier.",
)
@click.option(
    "--all", "show_all", is_flag=True, help="List every centre, not only those that matter."
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=None,
    help="Write the full result to this file.",
)
@click.option(
    "--database-url",
    default=None,
    help="Scratch database: a new SQLite file, or a PostgreSQL server where scratch databases "
    "are created and dropped. Default: a temporary SQLite file.",
)
@click.option(
    "--workers", type=click.IntRange(1, 16), default=None, help="Processes (default: automatic)."
)
@click.option(
    "--pool",
    type=click.IntRange(0, 1000),
    default=0,
    show_default=True,
    help="Mobile pool officers.",
)
@click.option("--no-history", is_flag=True, help="Plan from bookings and the flat forecast only.")
@click.option(
    "--full", is_flag=True, help="Replay every centre with the plan, not only those it touches."
)
def simulate_day_command(
    when: datetime | None,
    seed: int,
    centres: int | None,
    scale: float,
    show_all: bool,
    json_path: Path | None,
    database_url: str | None,
    workers: int | None,
    pool: int,
    no_history: bool,
    full: bool,
) -> None:
    """Play a city day through the real engine, without and with the dispatch plan."""
    day = when.date() if when is not None else next_working_day(local_day(clock()))
    settings = Settings(
        day=day,
        demand=replace(DemandOptions(), seed=seed, scale=scale),
        workers=workers,
        pool=pool,
        learnt=not no_history,
        full=full,
    )
    store = open_store(database_url)
    try:
        report = simulate(
            store,
            lambda session, now: build_demo_city(session, now, centres),
            settings,
            echo=lambda text: click.echo(text, err=True),
        )
    except BaseException:
        store.close(failed=True)
        raise
    store.close()
    click.echo(format_report(report, show_all=show_all))
    if store.kept:
        click.echo("scratch databases kept: " + ", ".join(store.kept))
    if json_path is not None:
        json_path.write_text(json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")
        click.echo(f"full result written to {json_path}")
