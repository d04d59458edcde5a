"""Suggestions and the centre ranking steer citizens away from a centre the balancing pass
found overloaded, through the snapshot the 15-minute job stores (core.places.load)."""

from __future__ import annotations

from datetime import date, time, timedelta

import pytest
from sqlalchemy import func, select

from core.booking.slots import SlotPolicy, generate_slots
from core.catalogue.search import index
from core.models import CentreDayLoad
from scheduler.jobs import plan_balancing
from tests.conftest import both_databases
from tests.factories import make_centre, make_history_ticket, make_procedure, make_service
from web.db import transaction

API = "/api/v1"
# `now` is Monday 7 December 2026, 08:00 local; walk-in history is on the three Mondays before.
PAST_MONDAYS = (date(2026, 11, 16), date(2026, 11, 23), date(2026, 11, 30))
MONDAY = "2026-12-14"
CITIZEN = {"lat": "10.7700", "lon": "106.7000"}


@pytest.fixture
def app_config(now):
    return {"CLOCK": lambda: now, "BOOKING_DAYS": 8}


@pytest.fixture
def crowd(session, now):
    """Three centres on a line north of the citizen; the nearest is swamped by walk-ins on
    Mondays (40 in the nine o'clock hour at two counters), the others are quiet."""
    near = make_centre("90021", "Phường Gần", lat=10.7710, lon=106.7000)
    other = make_centre("90022", "Phường Bên", lat=10.7900, lon=106.7000)
    farther = make_centre("90023", "Phường Xa", lat=10.8100, lon=106.7000)
    proc = make_procedure("1.009001")
    for centre in (near, other, farther):
        make_service(centre, "A", counters=2)
    for day in PAST_MONDAYS:
        for _ in range(40):
            make_history_ticket(near.services[0], day, time(9, 10))
    session.commit()
    with transaction():
        generate_slots(
            session, now=now, days=8, policy=SlotPolicy(window_minutes=30, walk_in_share=0.4)
        )
    index.invalidate()
    return proc


def suggestions(client, proc, day: str = MONDAY) -> list[dict]:
    response = client.get(
        f"{API}/suggestions", query_string={"procedure": proc.code, "date": day, **CITIZEN}
    )
    assert response.status_code == 200, response.get_json()
    return response.get_json()["items"]


@both_databases
def test_suggestions_steer_away_once_the_balancing_pass_has_run(client, session, now, crowd):
    before = suggestions(client, crowd)
    assert before[0]["centre"]["code"] == "90021"  # the nearest: nothing known yet
    assert not any(i["overloaded"] for i in before)

    with client.application.app_context():
        summary = plan_balancing()
    assert "overloaded" in summary, summary
    session.rollback()  # a fresh read: the job committed in its own session
    stored = session.scalar(select(func.count()).select_from(CentreDayLoad))
    assert stored >= 3 * 5  # three centres, every open day of the booking window

    after = suggestions(client, crowd)
    codes = [i["centre"]["code"] for i in after]
    assert codes[:2] == ["90022", "90023"] and codes[-1] == "90021"
    assert [i["overloaded"] for i in after] == [False, False, True]
    assert after[-1]["centre"]["overloaded"] is True
    # A Tuesday is not overloaded (the crowd comes on Mondays): the nearest is first again.
    tuesday = suggestions(client, crowd, "2026-12-08")
    assert tuesday[0]["centre"]["code"] == "90021" and not tuesday[0]["overloaded"]

    centres = client.get(
        f"{API}/centres", query_string={"procedure": crowd.code, **CITIZEN}
    ).get_json()["items"]
    # Today (a Monday) is the first free day everywhere: the crowded centre goes last.
    assert [c["code"] for c in centres][-1] == "90021" and centres[-1]["overloaded"] is True


@both_databases
def test_a_stale_snapshot_is_ignored(app, client, session, now, crowd):
    with app.app_context():
        plan_balancing()
    # 31 minutes later without another pass (two runs missed): rank on bookings alone.
    app.config["CLOCK"] = lambda: now + timedelta(minutes=31)
    assert suggestions(client, crowd)[0]["centre"]["code"] == "90021"


def test_the_booking_pages_say_the_centre_is_overloaded(app, client, session, now, crowd):
    with app.app_context():
        plan_balancing()
    page = client.get(f"/procedures/{crowd.code}", query_string=CITIZEN)
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Phường Gần đang quá tải" in html
    assert html.index("Phường Bên") < html.index("Phường Gần</a>")

    slots = client.get(f"/procedures/{crowd.code}/centres/90021", query_string={"day": MONDAY})
    html = slots.get_data(as_text=True)
    assert "đang quá tải" in html and "Phường Bên" in html
