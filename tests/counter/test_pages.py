"""The officer workstation through the Flask client on a real database: sign-in, choosing
and opening a counter, calling and serving, transfers, and who may see what."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from core.common.timeutil import local_day
from core.floor import tickets
from core.models import (
    Appointment,
    AppointmentStatus,
    Counter,
    PriorityClass,
    Ticket,
    TicketStatus,
)
from tests.factories import (
    STAFF_PASSWORD,
    make_assignment,
    make_centre,
    make_procedure,
    make_service,
    make_slot,
    make_staff,
)
from web.db import transaction
from web.extensions import db

BUSY = "Quầy đang gọi số"
BAD_LOGIN = "Tên đăng nhập hoặc mật khẩu không đúng."


@pytest.fixture
def app_config(now):
    return {"CLOCK": lambda: now, "MAX_CALLS": 3}


@pytest.fixture
def floor(session, now):
    """Bến Thành with lines A (counters 1, 2) and B (counter 3); Sài Gòn with one counter."""
    home = make_centre("26734", "Phường Bến Thành")
    other = make_centre("26737", "Phường Sài Gòn", lat=10.78, lon=106.70)
    proc = make_procedure("1.001193", "Đăng ký khai sinh")
    line_a = make_service(home, "A", counters=2)
    line_b = make_service(home, "B", counters=1, name="Đất đai")
    make_service(other, "A", counters=1)
    floor = SimpleNamespace(
        home=home,
        other=other,
        proc=proc,
        line_a=line_a,
        line_b=line_b,
        counter1=home.counters[0],
        counter2=home.counters[1],
        counter3=home.counters[2],
        far_counter=other.counters[0],
        officer=make_staff(home, "an", full_name="Nguyễn Văn An"),
        colleague=make_staff(home, "binh", full_name="Lê Thị Bình"),
        stranger=make_staff(other, "cuong", full_name="Trần Văn Cường"),
    )
    session.commit()
    return floor


def login(client, username, password=STAFF_PASSWORD, **query):
    return client.post(
        "/counter/login", data={"username": username, "password": password}, query_string=query
    )


def text_of(response) -> str:
    return response.get_data(as_text=True)


def walk_in(centre, now, service, **kw):
    with transaction():
        ticket = tickets.issue_walk_in(db.session, centre, now=now, service=service, **kw)
    return ticket


def open_counter(client, counter):
    return client.post(f"/counter/{counter.id}/open")


def act(client, desk, action, ticket=None, **data):
    """Press an action button at counter `desk` (for `ticket`, as shown on the page)."""
    if ticket is not None:
        data["ticket"] = ticket.public_id
    return client.post(f"/counter/{desk.id}/{action}", data=data, follow_redirects=True)


def reload(obj):
    db.session.expire_all()
    return db.session.get(type(obj), obj.id)


# ---------------------------------------------------------------- signing in and out


def test_login_then_the_choice_of_counters(client, floor):
    page = client.get("/counter/login")
    assert page.status_code == 200
    assert 'autocomplete="current-password"' in text_of(page)
    answer = login(client, "an")
    assert answer.status_code == 303
    assert answer.headers["Location"].endswith("/counter/")
    choice = client.get("/counter/")
    assert "Xin chào Nguyễn Văn An." in text_of(choice)
    assert "Quầy số 1" in text_of(choice)


@pytest.mark.parametrize(
    ("username", "password"),
    [("an", "wrong-password"), ("nobody", STAFF_PASSWORD), ("an", "")],
)
def test_bad_credentials_get_one_generic_answer(client, floor, username, password):
    answer = login(client, username, password)
    assert answer.status_code in (401, 422)
    if password:
        assert BAD_LOGIN in text_of(answer)
    assert client.get("/counter/").status_code == 302


def test_an_inactive_account_cannot_sign_in(client, floor, session):
    floor.officer.active = False
    session.commit()
    answer = login(client, "an")
    assert answer.status_code == 401
    assert BAD_LOGIN in text_of(answer)


def test_pages_ask_for_sign_in_and_come_back(client, floor):
    answer = client.get(f"/counter/{floor.counter1.id}")
    assert answer.status_code == 302
    assert "/counter/login?next=" in answer.headers["Location"]
    back = login(client, "an", next=f"/counter/{floor.counter1.id}")
    assert back.headers["Location"] == f"/counter/{floor.counter1.id}"


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:x"]
)
def test_next_goes_only_to_local_paths(client, floor, target):
    answer = login(client, "an", next=target)
    assert answer.headers["Location"] == "/counter/"


def test_login_needs_the_csrf_token(floor, app):
    app.config["WTF_CSRF_ENABLED"] = True
    answer = login(app.test_client(), "an")
    assert answer.status_code == 400


@pytest.mark.parametrize(
    "app_config",
    [{"RATE_LIMITS_ENABLED": True, "RATE_LIMIT_LOGIN": "3 per minute"}],
)
def test_login_is_rate_limited(client, floor):
    answers = [login(client, "an", "wrong").status_code for _ in range(4)]
    assert answers == [401, 401, 401, 429]


def test_logout_closes_the_free_counter_and_ends_the_session(client, floor):
    login(client, "an")
    open_counter(client, floor.counter1)
    answer = client.post("/counter/logout", follow_redirects=True)
    assert "Đã đóng quầy số 1 và đăng xuất." in text_of(answer)
    assert not reload(floor.counter1).is_open
    assert client.get("/counter/").status_code == 302


def test_logout_is_a_post(client, floor):
    login(client, "an")
    assert client.get("/counter/logout").status_code == 405


# ---------------------------------------------------------------- choosing a counter


def test_officer_sees_only_their_centres_counters(client, floor):
    login(client, "an")
    page = text_of(client.get("/counter/"))
    assert "Phường Bến Thành" in page
    assert "Phường Sài Gòn" not in page
    assert f"/counter/{floor.counter3.id}/open" in page
    assert f"/counter/{floor.far_counter.id}/open" not in page


def test_a_dispatched_officer_sees_the_dispatch_centre_for_that_day_only(
    client, app, floor, session, now
):
    make_assignment(floor.officer, floor.other, local_day(now))
    session.commit()
    login(client, "an")
    today = text_of(client.get("/counter/"))
    assert "Phường Sài Gòn" in today
    assert "Được điều động hôm nay" in today
    assert f"/counter/{floor.far_counter.id}/open" in today
    assert open_counter(client, floor.far_counter).status_code == 303
    assert reload(floor.far_counter).staff_id == floor.officer.id
    close = client.post(f"/counter/{floor.far_counter.id}/close")
    assert close.status_code == 303

    app.config["CLOCK"] = lambda: now + timedelta(days=1)
    tomorrow = text_of(client.get("/counter/"))
    assert "Phường Sài Gòn" not in tomorrow
    assert open_counter(client, floor.far_counter).status_code == 403


def test_open_and_close_a_counter(client, floor):
    login(client, "an")
    answer = open_counter(client, floor.counter1)
    assert answer.headers["Location"].endswith(f"/counter/{floor.counter1.id}")
    counter = reload(floor.counter1)
    assert counter.is_open and counter.staff_id == floor.officer.id
    choice = text_of(client.get("/counter/"))
    assert "Bạn đang mở quầy này" in choice
    closed = client.post(f"/counter/{floor.counter1.id}/close", follow_redirects=True)
    assert "Đã đóng quầy số 1." in text_of(closed)
    counter = reload(floor.counter1)
    assert not counter.is_open and counter.staff_id is None


def test_a_counter_open_by_someone_else_cannot_be_taken(client, app, floor):
    login(client, "an")
    open_counter(client, floor.counter1)
    other = app.test_client()
    login(other, "binh")
    choice = text_of(other.get("/counter/"))
    assert "Đang mở bởi Nguyễn Văn An" in choice
    refused = other.post(f"/counter/{floor.counter1.id}/open", follow_redirects=True)
    assert "Quầy số 1 đang do cán bộ khác sử dụng." in text_of(refused)
    assert reload(floor.counter1).staff_id == floor.officer.id
    # Nor worked at, nor closed by an officer.
    page = other.get(f"/counter/{floor.counter1.id}", follow_redirects=True)
    assert "đang do cán bộ Nguyễn Văn An mở" in text_of(page)
    other.post(f"/counter/{floor.counter1.id}/close")
    assert reload(floor.counter1).is_open


def test_moving_to_another_counter_closes_the_first(client, floor):
    login(client, "an")
    open_counter(client, floor.counter1)
    open_counter(client, floor.counter3)
    assert not reload(floor.counter1).is_open
    assert reload(floor.counter3).staff_id == floor.officer.id


def test_a_counter_with_a_ticket_in_hand_cannot_be_closed(client, floor, now):
    login(client, "an")
    open_counter(client, floor.counter1)
    walk_in(floor.home, now, floor.line_a)
    act(client, floor.counter1, "call-next")
    refused = client.post(f"/counter/{floor.counter1.id}/close", follow_redirects=True)
    assert "Quầy đang phục vụ số A001" in text_of(refused)
    assert reload(floor.counter1).is_open


# ---------------------------------------------------------------- calling and serving


def test_call_next_start_complete(client, floor, now):
    login(client, "an")
    open_counter(client, floor.counter1)
    ticket = walk_in(floor.home, now, floor.line_a)
    walk_in(floor.home, now, floor.line_a)

    called = act(client, floor.counter1, "call-next")
    page = text_of(called)
    assert "Đã gọi số A001." in page
    assert 'class="ticket__label">A001<' in page
    assert "Đang gọi" in page
    assert reload(ticket).status == TicketStatus.CALLED

    started = text_of(act(client, floor.counter1, "start", ticket))
    assert "Bắt đầu phục vụ số A001." in started
    assert reload(ticket).status == TicketStatus.SERVING

    done = text_of(act(client, floor.counter1, "complete", ticket))
    assert "Đã hoàn thành số A001." in done
    assert reload(ticket).status == TicketStatus.DONE
    assert "Chưa có số nào tại quầy" in done


def test_next_call_completes_the_ticket_being_served(client, floor, now):
    login(client, "an")
    open_counter(client, floor.counter1)
    first = walk_in(floor.home, now, floor.line_a)
    act(client, floor.counter1, "call-next")
    act(client, floor.counter1, "start", first)
    page = text_of(act(client, floor.counter1, "call-next"))
    assert "Đã hoàn thành số A001." in page
    assert "Không còn ai chờ." in page
    assert reload(first).status == TicketStatus.DONE


def test_nobody_waiting(client, floor):
    login(client, "an")
    open_counter(client, floor.counter1)
    assert "Không còn ai chờ." in text_of(act(client, floor.counter1, "call-next"))


def test_counter_busy_message(client, floor, now):
    login(client, "an")
    open_counter(client, floor.counter1)
    walk_in(floor.home, now, floor.line_a)
    walk_in(floor.home, now, floor.line_a)
    act(client, floor.counter1, "call-next")
    page = text_of(act(client, floor.counter1, "call-next"))
    assert f"{BUSY} A001. Hãy bắt đầu phục vụ, gọi lại hoặc báo vắng trước." in page
    assert 'role="alert"' in page


def test_recall_then_automatic_no_show_after_the_configured_calls(client, floor, now):
    login(client, "an")
    open_counter(client, floor.counter1)
    ticket = walk_in(floor.home, now, floor.line_a)
    act(client, floor.counter1, "call-next")
    assert "Đã gọi lại số A001 (lần 2)." in text_of(act(client, floor.counter1, "recall", ticket))
    assert "Đã gọi lại số A001 (lần 3)." in text_of(act(client, floor.counter1, "recall", ticket))
    last = text_of(act(client, floor.counter1, "recall", ticket))
    assert "Số A001 đã được gọi 3 lần mà không có mặt nên được ghi nhận vắng mặt." in last
    assert reload(ticket).status == TicketStatus.NO_SHOW


def test_no_show_by_hand(client, floor, now):
    login(client, "an")
    open_counter(client, floor.counter1)
    ticket = walk_in(floor.home, now, floor.line_a)
    act(client, floor.counter1, "call-next")
    page = text_of(act(client, floor.counter1, "no-show", ticket))
    assert "Đã ghi nhận số A001 vắng mặt." in page
    assert reload(ticket).status == TicketStatus.NO_SHOW


def test_wrong_state_and_stale_page_are_refused(client, floor, now):
    login(client, "an")
    open_counter(client, floor.counter1)
    first = walk_in(floor.home, now, floor.line_a)
    assert "Quầy chưa có số nào" in text_of(act(client, floor.counter1, "start", first))
    act(client, floor.counter1, "call-next")
    act(client, floor.counter1, "start", first)
    again = text_of(act(client, floor.counter1, "start", first))
    assert "Số A001 không ở trạng thái cho phép thao tác này." in again
    # A button pressed on a page that still showed an older ticket acts on nothing.
    second = walk_in(floor.home, now, floor.line_a)
    act(client, floor.counter1, "call-next")  # completes A001, calls A002
    stale = text_of(act(client, floor.counter1, "no-show", first))
    assert "Số trên màn hình đã thay đổi (quầy đang có số A002)" in stale
    assert reload(second).status == TicketStatus.CALLED


def test_actions_need_the_counter_open_by_you(client, floor, now):
    login(client, "an")
    walk_in(floor.home, now, floor.line_a)
    page = text_of(act(client, floor.counter1, "call-next"))
    assert "Quầy số 1 đang đóng." in page
    assert db.session.scalar(select(Ticket.status)) == TicketStatus.WAITING


def test_transfer_to_another_service_keeps_queue_time(client, app, floor, now):
    login(client, "an")
    open_counter(client, floor.counter1)
    ticket = walk_in(floor.home, now, floor.line_a)
    app.config["CLOCK"] = lambda: now + timedelta(minutes=20)
    later = walk_in(floor.home, now + timedelta(minutes=10), floor.line_b)  # B001, queued 08:10
    act(client, floor.counter1, "call-next")
    page = text_of(act(client, floor.counter1, "transfer", ticket, service=floor.line_b.id))
    assert "Đã chuyển số A001 đến Đất đai. Số mới: B002" in page
    moved = db.session.scalars(select(Ticket).where(Ticket.transferred_from_id == ticket.id)).one()
    assert moved.label == "B002"
    assert moved.queue_time == now
    assert reload(ticket).status == TicketStatus.TRANSFERRED
    # It keeps its place: counter 3 (line B) calls it before B001, queued later.
    login(client, "binh")
    open_counter(client, floor.counter3)
    assert "Đã gọi số B002." in text_of(act(client, floor.counter3, "call-next"))
    assert reload(later).status == TicketStatus.WAITING


def test_transfer_to_a_counter_and_to_a_centre(client, floor, now):
    login(client, "an")
    open_counter(client, floor.counter1)
    walk_in(floor.home, now, floor.line_a)
    walk_in(floor.home, now, floor.line_a)
    act(client, floor.counter1, "call-next")
    first = db.session.scalars(select(Ticket).where(Ticket.label == "A001")).one()
    page = text_of(act(client, floor.counter1, "transfer", first, counter=floor.counter2.id))
    assert "Đã chuyển số A001 đến quầy số 2. Số mới: A003" in page
    act(client, floor.counter1, "call-next")
    second = db.session.scalars(select(Ticket).where(Ticket.label == "A002")).one()
    page = text_of(act(client, floor.counter1, "transfer", second, centre=floor.other.id))
    assert "Đã chuyển số A002 đến Phường Sài Gòn. Số mới: A001" in page


def test_transfer_needs_exactly_one_target(client, floor, now):
    login(client, "an")
    open_counter(client, floor.counter1)
    ticket = walk_in(floor.home, now, floor.line_a)
    act(client, floor.counter1, "call-next")
    both = act(
        client, floor.counter1, "transfer", ticket, service=floor.line_b.id, centre=floor.other.id
    )
    assert "Hãy chọn đúng một nơi chuyển đến" in text_of(both)
    unknown = act(client, floor.counter1, "transfer", ticket, service=999999)
    assert "Không tìm thấy nơi chuyển đến đã chọn." in text_of(unknown)
    assert reload(ticket).status == TicketStatus.CALLED


def test_transfer_page_without_script(client, floor, now):
    login(client, "an")
    open_counter(client, floor.counter1)
    walk_in(floor.home, now, floor.line_a)
    act(client, floor.counter1, "call-next")
    page = text_of(client.get(f"/counter/{floor.counter1.id}/transfer"))
    assert "Chuyển số A001" in page
    assert "Phường Sài Gòn" in page
    assert f'<option value="{floor.line_b.id}">B · Đất đai</option>' in page


# ---------------------------------------------------------------- what is shown, and to whom


def book_and_check_in(session, floor, now) -> Appointment:
    slot = make_slot(floor.line_a, now)
    appt = Appointment(
        code="BT7K2M",
        slot_id=slot.id,
        centre_id=floor.home.id,
        service_id=floor.line_a.id,
        procedure_id=floor.proc.id,
        starts_at=slot.starts_at,
        ends_at=slot.ends_at,
        status=AppointmentStatus.BOOKED,
        full_name="Phạm Thị Dung",
        phone="0912345678",
        citizen_hash="h" * 64,
        manage_token_hash="t" * 64,
        qr_nonce="n",
        consent_at=now,
        created_at=now,
    )
    session.add(appt)
    session.commit()
    with transaction():
        tickets.check_in(db.session, appt, floor.home, now=now, rules=tickets.FloorRules())
    return appt


def test_the_workstation_shows_the_appointment_and_the_citizens_name(client, floor, session, now):
    book_and_check_in(session, floor, now)
    login(client, "an")
    open_counter(client, floor.counter1)
    page = text_of(act(client, floor.counter1, "call-next"))
    assert "Phạm Thị Dung" in page
    assert "BT7K2M" in page
    assert "Đăng ký khai sinh" in page
    assert "Đặt lịch hẹn" in page
    # The waiting-count feed carries labels only.
    feed = client.get(f"/counter/{floor.counter1.id}/queue.json").get_json()
    assert "Phạm Thị Dung" not in str(feed)
    assert feed["current"] == {"label": "A001", "status": "called"}


def test_another_centres_counter_is_refused(client, floor, now):
    login(client, "cuong")
    assert client.get(f"/counter/{floor.counter1.id}").status_code == 403
    assert client.get(f"/counter/{floor.counter1.id}/queue.json").status_code == 403
    assert open_counter(client, floor.counter1).status_code == 403
    assert client.post(f"/counter/{floor.counter1.id}/call-next").status_code == 403
    assert client.get("/counter/999999").status_code == 404


def test_waiting_counts_per_service(client, floor, now):
    walk_in(floor.home, now, floor.line_a)
    walk_in(floor.home, now, floor.line_a)
    walk_in(floor.home, now, floor.line_a, priority=PriorityClass.ELDERLY)
    walk_in(floor.home, now, floor.line_b)
    login(client, "an")
    open_counter(client, floor.counter1)
    feed = client.get(f"/counter/{floor.counter1.id}/queue.json").get_json()
    (line_a,) = feed["services"]  # counter 1 serves line A only
    assert line_a["waiting"] == 3
    assert line_a["priority"] == 1
    assert [n["label"] for n in line_a["next"]] == ["A003", "A001", "A002"]
    assert feed["waiting_total"] == 3
    page = text_of(client.get(f"/counter/{floor.counter1.id}"))
    assert "data-count>3<" in page


def test_the_workstation_page_is_accessible_by_structure(client, floor, now):
    login(client, "an")
    open_counter(client, floor.counter1)
    walk_in(floor.home, now, floor.line_a)
    page = text_of(act(client, floor.counter1, "call-next"))
    for key in (
        'aria-keyshortcuts="N',
        'aria-keyshortcuts="R"',
        'aria-keyshortcuts="S"',
        'aria-keyshortcuts="C"',
        'aria-keyshortcuts="V"',
        'aria-keyshortcuts="T"',
    ):
        assert key in page
    assert '<html lang="vi">' in page
    assert "workstation.js" in page
    assert db.session.get(Counter, floor.counter1.id).is_open
