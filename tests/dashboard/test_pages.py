"""The dashboard pages and the one-centre statistics API: who may open what, the figures of
a small hand-built day (live, then aggregated), ranges of days, the CSV export and refusals."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import date, time, timedelta
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import pytest
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask_babel import refresh
from sqlalchemy import select

from core.common.timeutil import local_to_utc
from core.models import Field, TicketSource, TicketStatus
from core.operations.statistics import aggregate_day
from tests.conftest import both_databases
from tests.dashboard.helpers import API, assert_problem, get, ok
from tests.factories import (
    STAFF_PASSWORD,
    make_centre,
    make_field,
    make_history_ticket,
    make_procedure,
    make_service,
    make_staff,
    staff_token,
)
from web.db import transaction

DAY = date(2026, 11, 30)  # a Monday, a week before `now` (Monday 7 December 2026, 08:00)
NEXT = date(2026, 12, 1)


@pytest.fixture
def app_config(now):
    return {"CLOCK": lambda: now}


def _ticket(
    service, day, at, source, status, *, wait=None, service_minutes=None, eta=None, procedure=None
):
    """A ticket issued at local `at`, first called `wait` minutes later, served in
    `service_minutes`, given the wait range `eta` (low, high) at issue."""
    issued = local_to_utc(day, at)
    called = issued + timedelta(minutes=wait) if wait is not None else None
    extra = {}
    if service_minutes is not None:
        extra = {"started_at": called, "finished_at": called + timedelta(minutes=service_minutes)}
    if eta is not None:
        extra.update(eta_low_minutes=eta[0], eta_high_minutes=eta[1])
    if procedure is not None:
        extra["procedure_id"] = procedure.id
    return make_history_ticket(service, day, at, source, status=status, called_at=called, **extra)


@pytest.fixture
def city(session):
    """R (90010) with lines A (two counters) and B "Đất đai" (one); D1 (90011) with line A.
    Monday 30 November at R:
    - A, appointment at 09:00: waited 6 min, served in 12, promised 0–5 min (1 min out);
    - A, walk-in at 09:30: waited 10, served in 10, promised 5–15 (inside);
    - B, remote at 10:00: called after 20 min, never came (no-show);
    - B, walk-in at 10:15: cancelled before being called.
    Tuesday 1 December at R: one walk-in on A at 09:00, waited 30, served in 10."""
    r = make_centre("90010", "Phường R", lat=10.7700, lon=106.7000)
    d1 = make_centre("90011", "Phường D1", lat=10.7800, lon=106.7000)
    ra = make_service(r, "A", counters=2)
    rb = make_service(r, "B", counters=1, name="Đất đai", fields=[make_field("Đất đai")])
    make_service(d1, "A", counters=2)
    src = TicketSource
    _ticket(
        ra,
        DAY,
        time(9, 0),
        src.APPOINTMENT,
        TicketStatus.DONE,
        wait=6,
        service_minutes=12,
        eta=(0, 5),
    )
    _ticket(
        ra,
        DAY,
        time(9, 30),
        src.WALK_IN,
        TicketStatus.DONE,
        wait=10,
        service_minutes=10,
        eta=(5, 15),
    )
    _ticket(rb, DAY, time(10, 0), src.REMOTE, TicketStatus.NO_SHOW, wait=20)
    _ticket(rb, DAY, time(10, 15), src.WALK_IN, TicketStatus.CANCELLED)
    _ticket(ra, NEXT, time(9, 0), src.WALK_IN, TicketStatus.DONE, wait=30, service_minutes=10)
    staff = {
        "officer": make_staff(r, "canbo-r"),
        "manager": make_staff(r, "quanly-r", role="manager", full_name="Trần Quản Lý"),
        "manager_d1": make_staff(d1, "quanly-d1", role="manager"),
        "operator": make_staff(None, "dieuhanh", role="operator"),
        "admin": make_staff(None, "quantri", role="admin"),
    }
    tokens = {name: staff_token(person) for name, person in staff.items()}
    session.commit()
    return SimpleNamespace(r=r, d1=d1, ra=ra, rb=rb, staff=staff, tokens=tokens)


def sign_in(client, username: str, **query):
    return client.post(
        "/counter/login",
        data={"username": username, "password": STAFF_PASSWORD},
        query_string=query,
    )


def text_of(response) -> str:
    return response.get_data(as_text=True)


# --- who may open which page --------------------------------------------------------------------

PAGES = {
    "overview": "/dashboard",
    "dispatch": "/dashboard/dispatch",
    "own_centre": "/dashboard/centres/90010",
    "other_centre": "/dashboard/centres/90011",
}
# 302 for a manager on the overview: sent on to their centre's page.
EXPECTED = {
    "officer": {"overview": 403, "dispatch": 403, "own_centre": 403, "other_centre": 403},
    "manager": {"overview": 302, "dispatch": 403, "own_centre": 200, "other_centre": 403},
    "operator": {"overview": 200, "dispatch": 200, "own_centre": 200, "other_centre": 200},
    "admin": {"overview": 200, "dispatch": 200, "own_centre": 200, "other_centre": 200},
}


def test_anonymous_visitors_are_sent_to_sign_in_and_back(client, city):
    for path in PAGES.values():
        answer = client.get(path)
        assert answer.status_code == 302
        assert answer.headers["Location"].startswith("/counter/login?next=")
    answer = client.get("/dashboard/centres/90010?from=2026-11-30")
    target = parse_qs(urlsplit(answer.headers["Location"]).query)["next"][0]
    back = sign_in(client, "quanly-r", next=target)
    assert back.headers["Location"] == "/dashboard/centres/90010?from=2026-11-30"


@pytest.mark.parametrize("actor", list(EXPECTED))
def test_role_matrix_of_the_pages(app, city, actor):
    client = app.test_client()
    sign_in(client, city.staff[actor].username)
    for name, path in PAGES.items():
        answer = client.get(path)
        assert answer.status_code == EXPECTED[actor][name], (actor, name)
        if answer.status_code == 403:
            page = text_of(answer)
            assert "Bạn không có quyền xem trang này" in page
            assert "lãnh đạo trung tâm" in page
    if actor == "manager":
        assert client.get("/dashboard").headers["Location"] == "/dashboard/centres/90010"


def test_an_unknown_centre_is_a_404_page(client, city):
    sign_in(client, "dieuhanh")
    for code in ("99999", "x" * 40):
        answer = client.get(f"/dashboard/centres/{code}")
        assert answer.status_code == 404
        assert "Không tìm thấy trung tâm này." in text_of(answer)


def test_sign_in_lands_on_the_dashboard_by_role(app, city):
    landing = {
        "officer": "/counter/",
        "manager": "/dashboard",
        "operator": "/dashboard",
        "admin": "/dashboard",
    }
    for actor, target in landing.items():
        answer = sign_in(app.test_client(), city.staff[actor].username)
        assert answer.status_code == 303 and answer.headers["Location"] == target, actor
    # An explicit `next` still wins.
    answer = sign_in(app.test_client(), "dieuhanh", next="/counter/")
    assert answer.headers["Location"] == "/counter/"
    # Already signed in: the sign-in page sends a manager on too.
    client = app.test_client()
    sign_in(client, "quanly-r")
    assert client.get("/counter/login").headers["Location"] == "/dashboard"


def test_overview_and_dispatch_pages_carry_what_their_scripts_need(client, city):
    sign_in(client, "dieuhanh")
    page = text_of(client.get("/dashboard"))
    assert "/api/v1/load?date=2026-12-07&amp;days=7" in page
    data = json.loads(re.search(r'id="overview-data">(.*?)</script>', page).group(1))
    assert data["centres"][0] == {"code": "90010", "name": "Phường R", "lat": 10.77, "lon": 106.7}
    assert data["strings"]["updated"] == "Cập nhật lúc %(time)s. Tự làm mới mỗi 60 giây."
    assert "T2 07/12" in page and "CN 13/12" in page
    assert 'name="csrf-token"' in page
    plan = text_of(client.get("/dashboard/dispatch?date=2026-12-14"))
    assert "/api/v1/dispatch-plan?date=2026-12-14" in plan
    assert "/api/v1/dispatch-plan/__id__/accept?date=2026-12-14" in plan
    assert "/api/v1/dispatch-plan/__id__/decline?date=2026-12-14" in plan
    assert "Thứ Hai, 14/12/2026" in plan
    bad = client.get("/dashboard/dispatch?date=14-12-2026")
    assert bad.status_code == 422 and "Ngày phải có dạng YYYY-MM-DD." in text_of(bad)


# --- the statistics of one centre ---------------------------------------------------------------

FIGURE_KEYS = (
    "issued",
    "served",
    "no_show",
    "cancelled",
    "waits",
    "wait_p50",
    "wait_p90",
    "service_avg",
    "estimates",
    "estimates_within",
    "eta_error_minutes",
)


def figures(*values) -> dict:
    return dict(zip(FIGURE_KEYS, values, strict=True))


ZERO = figures(0, 0, 0, 0, 0, None, None, None, 0, 0, None)
# Monday at R. Waits 6, 10, 20: p50 10, p90 10 + 0.8 × 10 = 18. Service 12 and 10.
MONDAY = figures(4, 2, 1, 1, 3, 10.0, 18.0, 11.0, 2, 1, 0.5)


def monday(client, token):
    return ok(get(client, f"/stats/centres/90010?from={DAY}&to={DAY}", token))


@both_databases
def test_one_day_by_source_line_and_hour_live_then_stored(client, session, now, city):
    body = monday(client, city.tokens["operator"])
    assert (body["centre"], body["name"], body["from"], body["to"]) == (
        "90010",
        "Phường R",
        "2026-11-30",
        "2026-11-30",
    )
    assert body["total"] == MONDAY
    assert body["days"] == [{"date": "2026-11-30", "live": True, **MONDAY}]
    assert body["by_source"] == {
        "appointment": figures(1, 1, 0, 0, 1, 6.0, 6.0, 12.0, 1, 0, 1.0),
        "walk_in": figures(2, 1, 0, 1, 1, 10.0, 10.0, 10.0, 1, 1, 0.0),
        "remote": figures(1, 0, 1, 0, 1, 20.0, 20.0, None, 0, 0, None),
    }
    assert body["by_service"] == [
        # Waits 6 and 10: p50 8, p90 6 + 0.9 × 4 = 9.6.
        {"service": "A", "name": city.ra.name, **figures(2, 2, 0, 0, 2, 8.0, 9.6, 11.0, 2, 1, 0.5)},
        {"service": "B", "name": "Đất đai", **figures(2, 0, 1, 1, 1, 20.0, 20.0, None, 0, 0, None)},
    ]
    assert body["by_hour"] == [
        {"hour": 9, **figures(2, 2, 0, 0, 2, 8.0, 9.6, 11.0, 2, 1, 0.5)},
        {"hour": 10, **figures(2, 0, 1, 1, 1, 20.0, 20.0, None, 0, 0, None)},
    ]
    # No procedures: each line's single field (A takes Hộ tịch, B Đất đai).
    assert [(f["field"], f["issued"]) for f in body["by_field"]] == [("Hộ tịch", 2), ("Đất đai", 2)]
    assert body["by_field"][0] == {
        "field_id": session.scalar(select(Field.id).where(Field.name == "Hộ tịch")),
        "field": "Hộ tịch",
        **figures(2, 2, 0, 0, 2, 8.0, 9.6, 11.0, 2, 1, 0.5),
    }

    with transaction():
        aggregate_day(session, DAY, now=now)
    stored = monday(client, city.tokens["operator"])
    assert stored["days"][0]["live"] is False
    stored["days"][0]["live"] = True
    assert stored == body
    # The centre's own manager sees the same.
    assert monday(client, city.tokens["manager"])["total"] == MONDAY


@both_databases
def test_several_days_sum_counts_and_weigh_averages(client, city):
    body = ok(get(client, f"/stats/centres/90010?from={DAY}&to=2026-12-03", city.tokens["admin"]))
    assert [d["date"] for d in body["days"]] == [
        "2026-11-30",
        "2026-12-01",
        "2026-12-02",
        "2026-12-03",
    ]
    assert body["days"][1] == {
        "date": "2026-12-01",
        "live": True,
        **figures(1, 1, 0, 0, 1, 30.0, 30.0, 10.0, 0, 0, None),
    }
    assert body["days"][2] == {"date": "2026-12-02", "live": True, **ZERO}
    # Counts add up; p50 (10 × 3 waits + 30 × 1) / 4 = 15, p90 (18 × 3 + 30) / 4 = 21,
    # service (11 × 2 served + 10) / 3.
    assert body["total"] == figures(5, 3, 1, 1, 4, 15.0, 21.0, 10.67, 2, 1, 0.5)
    walk_in = body["by_source"]["walk_in"]
    assert (walk_in["issued"], walk_in["wait_p50"]) == (3, 20.0)
    # The default: the week ending today, days to come not folded.
    week = ok(get(client, "/stats/centres/90010", city.tokens["operator"]))
    assert (week["from"], week["to"]) == ("2026-12-01", "2026-12-07")
    assert week["total"]["issued"] == 1
    future = ok(
        get(client, "/stats/centres/90010?from=2026-12-08&to=2026-12-09", city.tokens["admin"])
    )
    assert [d["live"] for d in future["days"]] == [False, False]


def test_who_may_read_a_centres_statistics(client, city):
    assert get(client, "/stats/centres/90010", None).status_code == 401
    assert_problem(get(client, "/stats/centres/90010", city.tokens["officer"]), 403, "forbidden")
    assert_problem(get(client, "/stats/centres/90010", city.tokens["manager_d1"]), 403, "forbidden")
    assert_problem(
        get(client, "/stats/centres/90010.csv", city.tokens["manager_d1"]), 403, "forbidden"
    )
    ok(get(client, "/stats/centres/90011", city.tokens["manager_d1"]))
    for code in ("99999", "x" * 40):
        assert_problem(
            get(client, f"/stats/centres/{code}", city.tokens["operator"]),
            404,
            "centre_not_found",
        )
    assert_problem(
        get(client, "/stats/centres/99999.csv", city.tokens["operator"]),
        404,
        "centre_not_found",
    )
    # A staff session works too (the pages' links), with no token at all.
    sign_in(client, "quanly-r")
    assert client.get(f"{API}/stats/centres/90010").status_code == 200
    assert client.get(f"{API}/stats/centres/90011").status_code == 403


BAD_DATE = "Ngày phải có dạng YYYY-MM-DD."
OUT_OF_RANGE = "Giá trị nằm ngoài khoảng cho phép."


@pytest.mark.parametrize(
    ("query", "field", "message", "detail"),
    [
        ("from=2026-12-02&to=2026-12-01", "from", OUT_OF_RANGE, "Ngày bắt đầu phải trước"),
        ("from=2026-10-31&to=2026-12-01", "to", OUT_OF_RANGE, "tối đa 31 ngày"),
        ("from=2026-02-30", "from", BAD_DATE, "Thông tin chưa hợp lệ"),
        ("to=yesterday", "to", BAD_DATE, "Thông tin chưa hợp lệ"),
    ],
)
def test_bad_ranges_are_422(client, city, query, field, message, detail):
    token = city.tokens["operator"]
    for path in (f"/stats/centres/90010?{query}", f"/stats/centres/90010.csv?{query}"):
        body = assert_problem(get(client, path, token), 422, "invalid")
        assert body["errors"] == {field: message}
        assert detail in body["detail"]
    # 31 days is the most: fine.
    ok(get(client, "/stats/centres/90010?from=2026-11-01&to=2026-12-01", token))


def test_csv_export(client, session, now, city):
    answer = get(client, f"/stats/centres/90010.csv?from={DAY}&to={NEXT}", city.tokens["manager"])
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert answer.headers["Content-Disposition"] == (
        'attachment; filename="xephang-90010-2026-11-30-2026-12-01.csv"'
    )
    assert answer.headers["Cache-Control"] == "private, no-store"
    raw = answer.get_data()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert list(rows[0]) == [
        "date",
        "centre",
        "service",
        "service_name",
        "source",
        "hour",
        "field",
        "issued",
        "served",
        "no_show",
        "cancelled",
        "waits",
        "wait_p50",
        "wait_p90",
        "service_avg",
        "estimates",
        "estimates_within",
        "eta_error_minutes",
    ]
    cut = [
        (r["date"], r["service"], r["source"], r["hour"], r["field"], r["issued"], r["wait_p50"])
        for r in rows
    ]
    # Each day: its finest cells (no field), then one row per field (no line, source, hour).
    assert cut == [
        ("2026-11-30", "A", "appointment", "9", "", "1", "6.0"),
        ("2026-11-30", "A", "walk_in", "9", "", "1", "10.0"),
        ("2026-11-30", "B", "remote", "10", "", "1", "20.0"),
        ("2026-11-30", "B", "walk_in", "10", "", "1", ""),
        ("2026-11-30", "", "", "", "Hộ tịch", "2", "8.0"),
        ("2026-11-30", "", "", "", "Đất đai", "2", "20.0"),
        ("2026-12-01", "A", "walk_in", "9", "", "1", "30.0"),
        ("2026-12-01", "", "", "", "Hộ tịch", "1", "30.0"),
    ]
    assert rows[2]["service_name"] == "Đất đai" and rows[3]["cancelled"] == "1"
    # Figures only: nobody's name, not even the staff's.
    text = raw.decode("utf-8-sig")
    assert "Trần Quản Lý" not in text and "Nguyễn" not in text
    # The same rows once the day is aggregated.
    with transaction():
        aggregate_day(session, DAY, now=now)
    again = get(client, f"/stats/centres/90010.csv?from={DAY}&to={NEXT}", city.tokens["manager"])
    assert again.get_data() == raw


def test_csv_export_for_excel_under_vietnamese_settings(client, city):
    """`excel=true`: the same rows with semicolons between cells and decimal commas."""
    path = f"/stats/centres/90010.csv?from={DAY}&to={NEXT}"
    plain = get(client, path, city.tokens["manager"]).get_data().decode("utf-8-sig")
    answer = get(client, f"{path}&excel=true", city.tokens["manager"])
    assert answer.status_code == 200
    assert answer.headers["Content-Disposition"] == (
        'attachment; filename="xephang-90010-2026-11-30-2026-12-01-excel.csv"'
    )
    raw = answer.get_data()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig")), delimiter=";"))
    expected = list(csv.reader(io.StringIO(plain)))
    assert len(rows) == len(expected) and rows[0] == expected[0]
    for got, want in zip(rows[1:], expected[1:], strict=True):
        assert got == [cell.replace(".", ",") if _decimal(cell) else cell for cell in want]
    assert rows[1][expected[0].index("wait_p50")] == "6,0"
    assert rows[1][0] == "2026-11-30"  # dates keep their dashes
    bad = get(client, f"{path}&excel=maybe", city.tokens["manager"])
    assert_problem(bad, 422, "invalid")


def _decimal(cell: str) -> bool:
    return bool(re.fullmatch(r"-?\d+\.\d+", cell))


@pytest.fixture
def fields(session, city):
    """More Monday tickets at R, on a line C taking two fields: a walk-in at 11:00 with no
    procedure (field not known: waited 4, served in 5), one at 11:10 for a Chứng thực
    procedure (waited 8, served in 6); and on A (Hộ tịch only) a walk-in at 11:20 for a Đất
    đai procedure, which counts in Đất đai (waited 2, cancelled before the counter)."""
    civil, land, notary = make_field("Hộ tịch"), make_field("Đất đai"), make_field("Chứng thực")
    rc = make_service(city.r, "C", counters=1, name="Một cửa", fields=[civil, land])
    copy = make_procedure(name="Chứng thực bản sao", field=notary)
    plot = make_procedure(name="Đăng ký đất đai", field=land)
    walk, done = TicketSource.WALK_IN, TicketStatus.DONE
    _ticket(rc, DAY, time(11, 0), walk, done, wait=4, service_minutes=5)
    _ticket(rc, DAY, time(11, 10), walk, done, wait=8, service_minutes=6, procedure=copy)
    _ticket(city.ra, DAY, time(11, 20), walk, TicketStatus.CANCELLED, wait=2, procedure=plot)
    session.commit()
    return SimpleNamespace(civil=civil, land=land, notary=notary)


@both_databases
def test_by_field_procedure_line_and_unknown_live_then_stored(client, session, now, city, fields):
    body = monday(client, city.tokens["operator"])
    assert body["by_field"] == [
        # B's two (its single field) and A's ticket for a Đất đai procedure: waits 20 and 2.
        {
            "field_id": fields.land.id,
            "field": "Đất đai",
            **figures(3, 0, 1, 2, 2, 11.0, 18.2, None, 0, 0, None),
        },
        {
            "field_id": fields.civil.id,
            "field": "Hộ tịch",
            **figures(2, 2, 0, 0, 2, 8.0, 9.6, 11.0, 2, 1, 0.5),
        },
        {
            "field_id": fields.notary.id,
            "field": "Chứng thực",
            **figures(1, 1, 0, 0, 1, 8.0, 8.0, 6.0, 0, 0, None),
        },
        {"field_id": None, "field": None, **figures(1, 1, 0, 0, 1, 4.0, 4.0, 5.0, 0, 0, None)},
    ]
    # The fields add up to the whole day: nothing counted twice, nothing lost.
    for name in ("issued", "served", "no_show", "cancelled", "waits"):
        assert sum(f[name] for f in body["by_field"]) == body["total"][name], name
    assert body["total"]["issued"] == 7

    with transaction():
        aggregate_day(session, DAY, now=now)
    stored = monday(client, city.tokens["operator"])
    assert stored["by_field"] == body["by_field"]
    assert stored["total"] == body["total"] and stored["by_source"] == body["by_source"]

    answer = get(client, f"/stats/centres/90010.csv?from={DAY}&to={DAY}", city.tokens["admin"])
    rows = list(csv.DictReader(io.StringIO(answer.get_data().decode("utf-8-sig"))))
    by_field = [(r["field"], r["issued"], r["wait_p50"]) for r in rows if r["field"]]
    assert by_field == [
        ("Chứng thực", "1", "8.0"),
        ("Hộ tịch", "2", "8.0"),
        ("Đất đai", "3", "11.0"),
        ("Chưa rõ lĩnh vực", "1", "4.0"),
    ]
    assert all(r["service"] == r["source"] == r["hour"] == "" for r in rows if r["field"])
    assert sum(int(r["issued"]) for r in rows if not r["field"]) == 7


def test_csv_cells_are_never_formulas(client, session, city):
    city.rb.name = '=HYPERLINK("x")'
    session.commit()
    answer = get(client, f"/stats/centres/90010.csv?from={DAY}&to={DAY}", city.tokens["admin"])
    rows = list(csv.DictReader(io.StringIO(answer.get_data().decode("utf-8-sig"))))
    assert {r["service_name"] for r in rows if r["service"] == "B"} == {'\'=HYPERLINK("x")'}


@both_databases
def test_centre_page_shows_the_figures_and_the_load(client, city):
    sign_in(client, "quanly-r")
    answer = client.get(f"/dashboard/centres/90010?from={DAY}&to={DAY}")
    assert answer.status_code == 200
    page = text_of(answer)
    assert "Thống kê Phường R" in page
    for text in ("Đặt lịch trước", "Đến trực tiếp", "Lấy số từ xa", "09:00", "10:00", "Đất đai"):
        assert text in page
    # Monday's row: 4 issued, 2 served, 1 no-show, p50 10, p90 18, service 11, 50 % in range.
    assert "T2 30/11" in page and "50%" in page
    assert "/api/v1/stats/centres/90010.csv?from=2026-11-30&amp;to=2026-11-30" in page
    assert "90010.csv?excel=true&amp;from=2026-11-30&amp;to=2026-11-30" in page
    assert "Tải CSV cho Excel" in page
    assert "chart.js/dist/chart.umd.js" in page
    # Today and six days on: Monday 7 to Friday 11 open, the weekend closed.
    assert page.count('class="outlook__day cell--closed"') == 2


def test_centre_page_refuses_a_bad_range_with_a_message(client, city):
    sign_in(client, "dieuhanh")
    answer = client.get("/dashboard/centres/90010?from=2026-12-05&to=2026-12-01")
    assert answer.status_code == 422
    page = text_of(answer)
    assert "Ngày bắt đầu phải trước hoặc trùng ngày kết thúc." in page
    assert 'value="2026-12-01"' in page  # the default week shown instead
    long = client.get("/dashboard/centres/90010?from=2026-01-01&to=2026-12-01")
    assert long.status_code == 422 and "tối đa 31 ngày" in text_of(long)
    bad = client.get("/dashboard/centres/90010?to=never")
    assert bad.status_code == 422 and "Ngày phải có dạng YYYY-MM-DD." in text_of(bad)


def test_the_chart_library_is_served_by_the_app(client):
    with client.get("/vendor/chart.js/dist/chart.umd.js") as answer:
        assert answer.status_code == 200 and b"Chart" in answer.get_data()


def test_the_pages_speak_english_too(app, city):
    po = Path(__file__).resolve().parents[2] / "xephang/translations/en/LC_MESSAGES/messages.po"
    mo = po.with_suffix(".mo")
    if not mo.exists() or mo.stat().st_mtime < po.stat().st_mtime:
        with po.open("rb") as src, mo.open("wb") as out:
            write_mo(out, read_po(src))
    client = app.test_client()
    sign_in(client, "dieuhanh")
    refresh()  # the test's app context outlives requests: drop its cached locale
    page = text_of(client.get("/dashboard?lang=en"))
    assert "Load of every centre in the city" in page and "under 70%" in page
    data = json.loads(re.search(r'id="overview-data">(.*?)</script>', page).group(1))
    assert data["strings"]["updated"] == "Updated at %(time)s. Refreshes every 60 seconds."
    assert data["days"][0]["short"] == "Mon 07/12"
    refresh()
    stats = text_of(client.get("/dashboard/centres/90010?lang=en"))
    assert "Statistics of Phường R" in stats and "Booked ahead" in stats
    assert "By field" in stats and "Hộ tịch" in stats
    refresh()
    bad = get(client, "/stats/centres/90010?from=2026-12-02&to=2026-12-01", None)
    assert bad.status_code == 422
    assert bad.get_json()["detail"] == "The first day must be on or before the last day."
