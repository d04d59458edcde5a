"""The operations API end to end: load, centre statistics, dispatch plan and accepting it,
who may see what, and refusals of bad input."""

from __future__ import annotations

import math
from datetime import date, time, timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from core.booking.slots import generate_slots
from core.common.timeutil import local_to_utc
from core.models import DailyStatistic, Slot, StaffAssignment, TicketSource, TicketStatus
from core.operations.balancing import BalancingPolicy, load
from core.operations.statistics import aggregate_day
from tests.conftest import both_databases
from tests.dashboard.helpers import API, PROBLEM, assert_problem, get, ok, post
from tests.factories import (
    make_centre,
    make_device,
    make_history_ticket,
    make_service,
    make_staff,
    staff_token,
)
from web.db import transaction
from web.problems import message

# `now` is Monday 7 December 2026, 08:00 local; the day balanced is the Monday after.
TARGET_DAY = date(2026, 12, 14)
PAST_MONDAYS = (date(2026, 11, 16), date(2026, 11, 23), date(2026, 11, 30))


@pytest.fixture
def app_config(now):
    return {"CLOCK": lambda: now}


@pytest.fixture
def city(session, now):
    """R is swamped on Mondays (20 walk-ins in the nine o'clock hour, two counters); D1,
    1.1 km away, has four counters and two officers on its roll and is quiet; one officer
    is in the mobile pool. R has a manager and an officer, the city an operator and admin."""
    r = make_centre("90010", "Phường R", lat=10.7700, lon=106.7000)
    d1 = make_centre("90011", "Phường D1", lat=10.7800, lon=106.7000)
    ra = make_service(r, "A", counters=2)
    da = make_service(d1, "A", counters=4)
    for day in PAST_MONDAYS:
        for _ in range(20):
            make_history_ticket(ra, day, time(9, 10))
        make_history_ticket(da, day, time(9, 10))
    lenders = [make_staff(d1), make_staff(d1)]
    pool = make_staff(None)
    pool.in_mobile_pool = True
    w = SimpleNamespace(r=r, d1=d1, ra=ra, da=da, lenders=lenders, pool=pool)
    w.tokens = {
        "operator": staff_token(make_staff(None, role="operator")),
        "admin": staff_token(make_staff(None, role="admin")),
        "manager": staff_token(make_staff(r, role="manager")),
        "officer": staff_token(make_staff(r)),
        "kiosk": make_device(r, "kiosk")[1],
        "anonymous": None,
    }
    session.commit()
    with transaction():
        generate_slots(session, now=now, days=8)
    return w


# --- load ---------------------------------------------------------------------------------------


@both_databases
def test_load_per_centre_and_line_matches_the_balancing(client, session, now, city):
    body = ok(get(client, f"/load?date={TARGET_DAY}&days=7", city.tokens["operator"]))

    policy = BalancingPolicy.from_config(client.application.config)
    report = load(session, None, TARGET_DAY, 7, now=now, policy=policy)
    assert body["date"] == "2026-12-14" and body["days"] == 7
    # Five open weekdays for each of the two centres; the weekend is closed.
    assert len(body["centres"]) == 10 == len(report.centres)
    first = body["centres"][0]
    r_day = report.centres[(city.r.id, TARGET_DAY)]
    assert (first["centre"], first["date"], first["name"]) == ("90010", "2026-12-14", "Phường R")
    assert (first["officers"], first["needed"]) == (r_day.officers, r_day.needed) == (2, 5)
    assert first["overloaded"] is True and first["wait_p90"] is None
    assert first["utilisation"] == r_day.utilisation
    [line] = first["services"]
    expected = next(
        s for s in report.services if s.service_id == city.ra.id and s.day == TARGET_DAY
    )
    assert line == {
        "service": "A",
        "name": city.ra.name,
        "capacity": 96.0,  # two counters × 480 minutes / 10 minutes a citizen
        "bookable": expected.bookable,
        "booked": 0,
        "forecast": 20.0,  # the Mondays' mean
        "utilisation": expected.utilisation,
        "overloaded": False,
    }
    d1 = next(c for c in body["centres"] if c["centre"] == "90011")
    assert d1["officers"] == 4 and d1["overloaded"] is False

    # A manager sees their own centre only; the default is today, one day.
    mine = ok(get(client, "/load", city.tokens["manager"]))
    assert mine["date"] == "2026-12-07" and mine["days"] == 1
    assert [c["centre"] for c in mine["centres"]] == ["90010"]


def test_a_line_without_counters_is_left_out_never_infinite(client, session, now, city):
    lone = make_service(city.r, "B", counters=0, name="Đất đai")
    make_history_ticket(lone, PAST_MONDAYS[0], time(9, 0))
    session.commit()
    body = ok(get(client, f"/load?date={TARGET_DAY}", city.tokens["operator"]))
    r = body["centres"][0]
    # A line with no counter is no line the balancing sizes: it is left out, never infinite.
    assert all(
        line["utilisation"] is None or math.isfinite(line["utilisation"])
        for c in body["centres"]
        for line in c["services"]
    )
    assert [line["service"] for line in r["services"]] == ["A"]


# --- statistics ---------------------------------------------------------------------------------


def test_centre_statistics_live_then_from_the_aggregated_rows(client, session, now, city):
    day = PAST_MONDAYS[-1]
    # Three more tickets at R that Monday: an appointment served after 6 minutes' wait and
    # 12 at the counter, a remote one that did not show, a walk-in served after 30 minutes.
    at = local_to_utc(day, time(10, 0))
    make_history_ticket(
        city.ra,
        day,
        time(10, 0),
        TicketSource.APPOINTMENT,
        status=TicketStatus.DONE,
        called_at=at + timedelta(minutes=6),
        started_at=at + timedelta(minutes=7),
        finished_at=at + timedelta(minutes=19),
        eta_low_minutes=0,
        eta_high_minutes=5,
    )
    make_history_ticket(
        city.ra,
        day,
        time(10, 0),
        TicketSource.REMOTE,
        status=TicketStatus.NO_SHOW,
        called_at=at + timedelta(minutes=10),
        finished_at=at + timedelta(minutes=20),
    )
    make_history_ticket(
        city.ra,
        day,
        time(10, 0),
        TicketSource.WALK_IN,
        status=TicketStatus.DONE,
        called_at=at + timedelta(minutes=30),
        started_at=at + timedelta(minutes=30),
        finished_at=at + timedelta(minutes=40),
    )
    session.commit()

    live = ok(get(client, f"/stats/centres?date={day}", city.tokens["operator"]))
    assert live["live"] is True and live["date"] == str(day)
    r, d1 = live["centres"]
    assert (r["centre"], d1["centre"]) == ("90010", "90011")
    assert (r["issued"], r["served"], r["no_show"]) == (23, 2, 1)
    assert r["wait_p50"] == 10.0 and r["service_avg"] == 11.0  # waits 6, 10, 30
    assert r["eta_error_minutes"] == 1.0  # one estimate, 6 against 0–5
    assert r["by_source"]["appointment"]["served"] == 1
    assert r["by_source"]["appointment"]["wait_p90"] == 6.0
    assert r["by_source"]["remote"]["no_show"] == 1
    assert r["by_source"]["walk_in"]["issued"] == 21
    assert r["by_source"]["walk_in"]["wait_p50"] == 30.0
    assert d1["issued"] == 1 and d1["served"] == 0 and d1["wait_p50"] is None
    # Folded live, nothing written.
    assert session.scalar(select(func.count()).select_from(DailyStatistic)) == 0

    with transaction():
        aggregate_day(session, day, now=now)
    stored = ok(get(client, f"/stats/centres?date={day}", city.tokens["operator"]))
    assert stored["live"] is False
    assert stored["centres"] == live["centres"]

    mine = ok(get(client, f"/stats/centres?date={day}", city.tokens["manager"]))
    assert [c["centre"] for c in mine["centres"]] == ["90010"] and mine["centres"][0] == r
    # A day without tickets: every centre with zeros.
    empty = ok(get(client, "/stats/centres?date=2026-12-01", city.tokens["admin"]))
    assert [c["issued"] for c in empty["centres"]] == [0, 0]
    assert empty["centres"][0]["by_source"]["remote"]["wait_p90"] is None


# --- dispatch plan ------------------------------------------------------------------------------


def assignments(session) -> list[tuple[int, int]]:
    return sorted(session.execute(select(StaffAssignment.staff_id, StaffAssignment.centre_id)))


def capacity(session, centre) -> int:
    return session.scalar(
        select(func.sum(Slot.capacity)).where(Slot.centre_id == centre.id, Slot.day == TARGET_DAY)
    )


@both_databases
def test_plan_then_accept_once_and_again(client, session, now, city):
    token = city.tokens["operator"]
    plan = ok(get(client, f"/dispatch-plan?date={TARGET_DAY}", token))
    assert len(plan["id"]) == 12 and plan["date"] == "2026-12-14"
    moves = [
        (m["from_centre"], m["to_centre"], m["officers"], m["staff_ids"]) for m in plan["moves"]
    ]
    assert moves == [
        (None, "90010", 1, [city.pool.id]),
        ("90011", "90010", 2, [s.id for s in city.lenders]),
    ]
    first, second = plan["moves"]
    assert first["wait_p90_before"] is None  # two officers: the queue only grows
    assert second["wait_p90_before"] == first["wait_p90_after"]
    assert second["wait_p90_after"] < 15 and second["distance_km"] == pytest.approx(1.11, abs=0.02)
    assert plan["shortfalls"] == []
    before = capacity(session, city.r)

    assert_problem(
        post(client, f"/dispatch-plan/0123456789ab/accept?date={TARGET_DAY}", token),
        409,
        "plan_changed",
    )
    assert assignments(session) == []

    url = f"/dispatch-plan/{plan['id']}/accept?date={TARGET_DAY}"
    accepted = ok(post(client, url, token))
    assert accepted == {
        "plan": plan["id"],
        "date": "2026-12-14",
        "already_accepted": False,
        "assignments_created": 3,
        "assignments_kept": 0,
        "slots_created": accepted["slots_created"],
        "slots_resized": accepted["slots_resized"],
    }
    assert accepted["slots_created"] + accepted["slots_resized"] > 0
    rows = assignments(session)
    assert rows == sorted((sid, city.r.id) for m in plan["moves"] for sid in m["staff_ids"])
    after = capacity(session, city.r)
    assert after > before

    again = ok(post(client, url, token))
    assert again["already_accepted"] is True
    assert (again["assignments_created"], again["assignments_kept"]) == (0, 3)
    assert assignments(session) == rows and capacity(session, city.r) == after
    # The officers are there now: nothing left to move, a new (empty) plan.
    replan = ok(get(client, f"/dispatch-plan?date={TARGET_DAY}", token))
    assert replan["moves"] == [] and replan["id"] != plan["id"]
    assert replan["decision"] is None
    [earlier] = replan["earlier"]
    assert (earlier["plan"], earlier["status"]) == (plan["id"], "accepted") and earlier["by"]


@both_databases
def test_declining_records_the_decision_and_writes_nothing(client, session, city):
    token = city.tokens["operator"]
    plan = ok(get(client, f"/dispatch-plan?date={TARGET_DAY}", token))
    assert plan["decision"] is None
    url = f"/dispatch-plan/{plan['id']}/decline?date={TARGET_DAY}"

    declined = ok(post(client, url, token))
    assert declined == {"plan": plan["id"], "date": "2026-12-14", "declined": True}
    assert ok(post(client, url, token)) == declined  # idempotent
    assert assignments(session) == []
    shown = ok(get(client, f"/dispatch-plan?date={TARGET_DAY}", token))
    assert shown["id"] == plan["id"]
    decision = shown["decision"]
    assert decision["status"] == "declined" and decision["by"]
    assert decision["at"].endswith("+07:00")

    # Changing one's mind: the declined plan can still be accepted, then not declined.
    ok(post(client, f"/dispatch-plan/{plan['id']}/accept?date={TARGET_DAY}", token))
    assert len(assignments(session)) == 3
    assert_problem(post(client, url, token), 409, "plan_already_accepted")
    assert_problem(
        post(client, f"/dispatch-plan/0123456789ab/decline?date={TARGET_DAY}", token),
        409,
        "plan_changed",
    )


@both_databases
def test_a_plan_changed_since_it_was_shown_is_refused(client, session, city):
    token = city.tokens["admin"]
    plan = ok(get(client, f"/dispatch-plan?date={TARGET_DAY}", token))
    second = make_staff(None)
    second.in_mobile_pool = True  # a second pool officer: the pool covers more now
    session.commit()

    body = assert_problem(
        post(client, f"/dispatch-plan/{plan['id']}/accept?date={TARGET_DAY}", token),
        409,
        "plan_changed",
    )
    assert body["plan"] != plan["id"]
    assert assignments(session) == []
    fresh = ok(get(client, f"/dispatch-plan?date={TARGET_DAY}", token))
    assert fresh["id"] == body["plan"]
    assert fresh["moves"][0]["staff_ids"] == [city.pool.id, second.id]


# --- who may, and bad input ---------------------------------------------------------------------

ENDPOINTS = {
    "load": ("GET", "/load"),
    "stats": ("GET", "/stats/centres"),
    "plan": ("GET", "/dispatch-plan"),
    "accept": ("POST", "/dispatch-plan/0123456789ab/accept"),
    "decline": ("POST", "/dispatch-plan/0123456789ab/decline"),
}
_REFUSED = dict.fromkeys(ENDPOINTS, 403)
EXPECTED = {
    "anonymous": dict.fromkeys(ENDPOINTS, 401),
    "kiosk": _REFUSED,
    "officer": _REFUSED,
    "manager": {**_REFUSED, "load": 200, "stats": 200},
    # The accept and decline are of a plan that is not today's: refused, past the role check.
    "operator": {"load": 200, "stats": 200, "plan": 200, "accept": 409, "decline": 409},
    "admin": {"load": 200, "stats": 200, "plan": 200, "accept": 409, "decline": 409},
}


def test_role_matrix(client, session, city):
    unknown = {"Authorization": "Bearer not-a-token"}
    for actor, answers in EXPECTED.items():
        for name, (method, path) in ENDPOINTS.items():
            token = city.tokens[actor]
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            response = client.open(f"{API}{path}", method=method, headers=headers)
            assert response.status_code == answers[name], (actor, name, response.get_json())
            if response.status_code != 200:
                assert response.mimetype == PROBLEM
            assert response.headers["Cache-Control"] == "private, no-store"
        assert client.get(f"{API}/load", headers=unknown).status_code == 401
    assert assignments(session) == []


@pytest.mark.parametrize(
    ("query", "field", "code"),
    [
        ("date=2026-13-01", "date", "invalid_date"),
        ("date=tomorrow", "date", "invalid_date"),
        ("days=0", "days", "out_of_range"),
        ("days=15", "days", "out_of_range"),
        ("days=two", "days", "invalid_integer"),
    ],
)
def test_bad_dates_and_days_are_422(client, city, query, field, code):
    token = city.tokens["operator"]
    with client.application.test_request_context():
        expected = {field: message(code)}  # the house's message for the code, in Vietnamese
    body = assert_problem(get(client, f"/load?{query}", token), 422, "invalid")
    assert body["errors"] == expected
    if field == "date":
        for path in (f"/stats/centres?{query}", f"/dispatch-plan?{query}"):
            assert assert_problem(get(client, path, token), 422, "invalid")["errors"] == expected
        for action in ("accept", "decline"):
            refused = post(client, f"/dispatch-plan/0123456789ab/{action}?{query}", token)
            assert assert_problem(refused, 422, "invalid")["errors"] == expected


def test_the_operations_endpoints_are_in_the_openapi_document(client):
    paths = client.get(f"{API}/openapi.json").get_json()["paths"]
    assert {
        "/load",
        "/stats/centres",
        "/dispatch-plan",
        "/dispatch-plan/{plan_id}/accept",
        "/dispatch-plan/{plan_id}/decline",
    } <= {p.removeprefix(API) for p in paths}
    accept = paths[f"{API}/dispatch-plan/{{plan_id}}/accept"]["post"]
    assert {"200", "401", "403", "409", "422"} <= set(accept["responses"])
    assert accept["security"] == [{"bearerAuth": []}]
