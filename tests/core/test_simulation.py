"""The simulated city day (core.operations.simulation, run by xephang.simulate) on a small city built by
hand: P is popular and has two counters; D1 and D2 nearby have room; FAR is 55 km away, out
of reach of any dispatch."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import func, select, update

from core.booking.slots import generate_slots
from core.models import Centre, Ticket, TicketEvent, TicketStatus
from core.operations.balancing import BalancingPolicy, load
from core.operations.simulation import DemandOptions, audit, draw_demand
from tests.factories import make_centre, make_field, make_procedure, make_service
from web.db import transaction
from xephang.simulate import (
    RUNS,
    PostgresStore,
    Settings,
    SqliteStore,
    format_report,
    simulate,
)

DAY = date(2026, 12, 7)  # a Monday
OPTIONS = DemandOptions(seed=7, scale=0.8, popular_codes=("90010",), popular_factor=(2.8, 3.0))


def build_small_city(session, now: datetime) -> None:
    """Four centres, one line each (ten minutes a citizen), slots for the day."""
    field = make_field("Hộ tịch", intake=10)
    for code, name in (("1.001193", "Đăng ký khai sinh"), ("1.000894", "Đăng ký kết hôn")):
        make_procedure(code, name, field=field)
    layout = (
        ("90010", "Phường P", 10.7725, 106.6980, 2),
        ("90011", "Phường D1", 10.7800, 106.6980, 4),
        ("90012", "Phường D2", 10.7900, 106.6980, 3),
        ("90014", "Xã Xa", 11.2700, 106.7000, 1),
    )
    for code, name, lat, lon, counters in layout:
        centre = make_centre(code, name, lat=lat, lon=lon)
        make_service(centre, "A", fields=[field], counters=counters)
    session.commit()
    with transaction():
        generate_slots(session, now=now, days=2)


def run(store, **kw) -> dict:
    settings = Settings(day=DAY, demand=OPTIONS, workers=1, full=True)
    try:
        return simulate(store, build_small_city, replace(settings, **kw))
    finally:
        store.close()


def centre(report: dict, code: str) -> dict:
    return next(c for c in report["per_centre"] if c["code"] == code)


def outcome(report: dict) -> dict:
    """What a day's result says, without how long it took to find out."""
    return {
        "plan": report["plan"],
        "citizens": report["citizens"],
        "per_centre": [
            {k: c[k] for k in ("code", "officers", "without", "with", "lines")}
            for c in report["per_centre"]
        ],
    }


@pytest.fixture(scope="module")
def sqlite_report() -> dict:
    return run(SqliteStore())


# --- every ticket accounted for -------------------------------------------------------------


def test_every_ticket_ends_served_no_show_or_waiting_and_none_is_lost(sqlite_report):
    assert sqlite_report["citizens"] > 150
    for name in RUNS:
        result = sqlite_report["runs"][name]
        checked = result["audit"]
        assert checked["ok"], checked
        assert checked["unfinished"] == checked["other_endings"] == 0
        # Every ticket the kiosk handed a citizen is in the database, with its "issued" event.
        assert result["tickets_handed_to_citizens"] == checked["tickets"] == result["tickets"]
        assert checked["issued_events"] == result["tickets"]
        assert result["served"] + result["no_shows"] + result["waiting"] == result["tickets"]
        assert result["served"] > 0 and result["no_shows"] > 0


def test_labels_are_unique_and_gap_free_and_nobody_is_served_twice(sqlite_report):
    for name in RUNS:
        checked = sqlite_report["runs"][name]["audit"]
        assert checked["label_problems"] == []
        assert checked["completed_twice"] == 0 and checked["appointments_twice"] == 0


def test_the_plan_sends_officers_to_the_popular_centre_and_its_p90_wait_falls(sqlite_report):
    plan = sqlite_report["plan"]
    assert plan["moves"] and {m["to"] for m in plan["moves"]} == {"90010"}
    assert {m["from"] for m in plan["moves"]} <= {"90011", "90012"}
    p = centre(sqlite_report, "90010")
    assert p["popular"] and p["overloaded"]
    assert p["officers"][1] == p["officers"][0] + p["receives"] > 2
    assert p["with"]["p90"] < p["without"]["p90"]
    assert p["with"]["over_30"] < p["without"]["over_30"]
    lent = sum(centre(sqlite_report, code)["lends"] for code in ("90011", "90012"))
    assert lent == p["receives"]
    # The city as a whole waits less.
    w, p_run = sqlite_report["runs"]["without"], sqlite_report["runs"]["with"]
    assert p_run["over_30"] < w["over_30"]


def test_a_centre_the_plan_does_not_touch_lives_the_same_day(sqlite_report):
    far = centre(sqlite_report, "90014")
    assert far["replayed"] and not far["receives"] and not far["lends"]
    assert far["with"] == far["without"] and far["with"]["tickets"] > 0


def test_same_seed_same_day_in_one_process_or_in_batches(sqlite_report):
    # Batches in two processes, and only the centres the plan touches replayed.
    again = run(SqliteStore(), workers=2, full=False)
    assert outcome(again) == outcome(sqlite_report)
    assert not centre(again, "90014")["replayed"]


def test_the_same_day_on_postgresql(pg_server_url, sqlite_report):
    report = run(PostgresStore(pg_server_url))
    for name in RUNS:
        assert report["runs"][name]["audit"]["ok"]
    assert outcome(report) == outcome(sqlite_report)


def test_the_report_lists_the_centres_that_matter(sqlite_report):
    text = format_report(sqlite_report)
    assert "90010 Phường P" in text and "+" in text.split("90010 Phường P")[1].splitlines()[0]
    assert "Xã Xa" not in text  # neither overloaded nor lending: only with --all
    assert "Xã Xa" in format_report(sqlite_report, show_all=True)
    assert "audit: ok" in text


# --- demand and audit, on the session ------------------------------------------------------------


def test_demand_depends_on_the_seed_alone(app, session):
    build_small_city(session, datetime(2026, 12, 6, 13, 0, tzinfo=UTC))
    policy = BalancingPolicy()
    first = draw_demand(session, DAY, OPTIONS, policy)
    assert draw_demand(session, DAY, OPTIONS, policy).citizens == first.citizens
    other = draw_demand(session, DAY, replace(OPTIONS, seed=8), policy)
    assert other.citizens != first.citizens
    p = session.scalar(select(Centre.id).where(Centre.code == "90010"))
    assert first.popular == [p] and 2.8 <= first.factors[p] <= 3.0
    bookers = sum(c.books for c in first.citizens)
    assert 0.25 < bookers / len(first.citizens) < 0.55
    # Walk-ins arrive within opening hours (07:30–11:30, 13:00–17:00 local).
    for c in first.citizens:
        local = c.arrives.hour * 60 + c.arrives.minute + 7 * 60
        assert 450 <= local < 690 or 780 <= local < 1020


def test_the_plan_forecasts_from_the_history_such_days_leave(app, session):
    evening = datetime(2026, 12, 6, 13, 0, tzinfo=UTC)
    build_small_city(session, evening)
    policy = BalancingPolicy()
    demand = draw_demand(session, DAY, OPTIONS, policy)
    p = session.scalar(select(Centre.id).where(Centre.code == "90010"))
    learnt = load(
        session, None, DAY, 1, now=evening, policy=policy, history=demand.history(policy, evening)
    )
    flat = load(session, None, DAY, 1, now=evening, policy=policy)  # no history: the volume
    expected = sum(v for (c, _, _), v in demand.walk_ins.items() if c == p)
    assert next(s for s in learnt.services if s.centre_id == p).forecast == pytest.approx(
        expected, abs=0.6
    )
    assert next(s for s in flat.services if s.centre_id == p).forecast == 2 * 15.0
    assert learnt.centres[(p, DAY)].needed > flat.centres[(p, DAY)].needed


def test_the_audit_notices_a_ticket_left_at_a_counter_and_a_broken_label(app, session, now):
    from core.floor.tickets import issue_walk_in

    centre_ = make_centre()
    line = make_service(centre_, "A", counters=1)
    session.commit()
    with transaction():
        first = issue_walk_in(session, centre_, now=now, service=line)
        issue_walk_in(session, centre_, now=now, service=line)
    assert audit(session, DAY, [centre_.id]).ok

    session.execute(update(Ticket).where(Ticket.id == first.id).values(status=TicketStatus.CALLED))
    session.commit()
    assert audit(session, DAY, [centre_.id]).unfinished == 1

    session.execute(
        update(Ticket).where(Ticket.id == first.id).values(status=TicketStatus.DONE, number=3)
    )
    session.add(TicketEvent(ticket_id=first.id, kind="completed", at=now, data={}))
    session.add(TicketEvent(ticket_id=first.id, kind="completed", at=now, data={}))
    session.commit()
    checked = audit(session, DAY, [centre_.id])
    assert checked.completed_twice == 1 and not checked.ok
    assert any("numbers not" in p for p in checked.label_problems)
    assert any("does not match" in p for p in checked.label_problems)


# --- the command ---------------------------------------------------------------------------------


def test_flask_simulate_day_prints_the_table(app, session, tmp_path):
    out = tmp_path / "day.json"
    result = app.test_cli_runner().invoke(
        args=f"simulate day --centres 3 --date 2026-12-07 --scale 0.2 --all --json {out}"
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("centre "))
    assert "served w/o→with" in lines[header] and "officers" in lines[header]
    rows = lines[header + 2 : header + 5]
    assert [r.split()[0] for r in rows] == ["25747", "25750", "25760"]
    assert any(line.startswith("city ") for line in lines)
    assert "audit: ok" in result.output and "took " in result.output
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["centres"] == 3 and len(report["per_centre"]) == 3
    for row, centre_ in zip(rows, report["per_centre"], strict=True):
        served = f"{centre_['without']['served']} → {centre_['with']['served']}"
        assert f" {centre_['without']['tickets']} " in row and served in row
    # The operator's database was not touched.
    assert session.scalar(select(func.count(Centre.id))) == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--date", "2026-12-06", "--centres", "1"], "no centre is open on 2026-12-06"),
        (["--database-url", "mysql://x@localhost/y"], "SQLite or PostgreSQL only"),
        (["--date", "7/12/2026"], "Invalid value for '--date'"),
        (
            ["--database-url", "postgresql+psycopg://nobody@127.0.0.1:1/none"],
            "cannot create a scratch database",
        ),
    ],
)
def test_flask_simulate_day_refuses_bad_input_with_a_message(app, args, message):
    result = app.test_cli_runner().invoke(args=["simulate", "day", *args])
    assert result.exit_code != 0
    assert message in result.output


def test_flask_simulate_day_never_overwrites_a_database(app, tmp_path):
    existing = tmp_path / "xephang.db"
    existing.write_bytes(b"")
    result = app.test_cli_runner().invoke(
        args=["simulate", "day", "--database-url", f"sqlite:///{existing}"]
    )
    assert result.exit_code != 0 and "never touches an existing one" in result.output
