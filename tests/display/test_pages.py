"""Board and phone ticket pages with the Flask client: what they show, in which language,
what they never show (personal data), and the announcement clips they rely on."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from core.floor.tickets import FloorRules, call_next, check_in, issue_walk_in
from core.models import Ticket, TicketStatus
from tests.conftest import both_databases
from tests.factories import make_appointment, make_centre, make_field, make_procedure, make_service
from web.db import transaction

VOICE = Path(__file__).resolve().parents[2] / "display" / "static" / "voice"
RULES = FloorRules()
NAME = "Trần Thị Bình"
PHONE = "0987654321"


@pytest.fixture
def floor(app, session, now):
    """A centre with two lines and open counters: people waiting, two of them called, one
    of those an appointment holder with a name and phone."""
    app.config["CLOCK"] = lambda: now
    civil = make_field("Hộ tịch")
    land = make_field("Đất đai")
    birth = make_procedure("1.000001", "Đăng ký khai sinh", field=civil)
    centre = make_centre("26743", "Phường Bến Thành")
    line_a = make_service(centre, "A", fields=[civil], counters=2, name="Hộ tịch – chứng thực")
    make_service(centre, "B", fields=[land], counters=1, name="Đất đai")
    for counter in centre.counters:
        counter.is_open = True
    session.commit()
    slot_start = now - timedelta(minutes=20)
    booked = make_appointment(line_a, birth, slot_start, full_name=NAME, phone=PHONE)
    session.commit()
    with transaction():
        holder, _ = check_in(session, booked, centre, now=slot_start, rules=RULES)
        walk_ins = [
            issue_walk_in(session, centre, now=now - timedelta(minutes=m), service=line_a)
            for m in (15, 10, 5, 1)
        ]
    with transaction():
        first = call_next(session, centre.counters[0], now=now, rules=RULES)
    with transaction():
        second = call_next(session, centre.counters[1], now=now + timedelta(minutes=1), rules=RULES)
    assert {first.id, second.id} == {holder.id, walk_ins[0].id}
    return {"centre": centre, "holder": holder, "called": second, "waiting": walk_ins[-1]}


def text_of(response) -> str:
    return response.get_data(as_text=True)


@both_databases
def test_board_shows_calls_and_waits_in_vietnamese(client, floor):
    page = text_of(client.get("/board/26743"))
    assert '<html lang="vi">' in page
    assert "Phường Bến Thành" in page
    assert "Mời công dân" in page
    # The latest call is the big one; the earlier call sits in a tile and in "recent".
    latest = floor["called"]
    assert f'<span class="b-latest__label" data-label>{latest.label}</span>' in page
    assert "Quầy 2" in page and "Quầy 1" in page
    assert f'<li class="b-tile" data-label="{floor["holder"].label}">' in page
    # Three wait in line A, none in B.
    assert '<td class="num b-wait__count">3</td>' in page
    assert "Không có người chờ" in page
    assert "Bấm để bật âm thanh" in page
    assert "Mất kết nối — đang thử lại" in page  # hidden until the socket drops


def test_board_in_english(client, floor):
    page = text_of(client.get("/board/26743?lang=en"))
    assert '<html lang="en">' in page
    assert "Now calling" in page
    assert "Counter 2" in page
    assert "Click to turn the sound on" in page


def test_unknown_board_is_the_not_found_page(client, floor):
    response = client.get("/board/99999")
    assert response.status_code == 404
    assert "Không tìm thấy" in text_of(response)


@both_databases
def test_ticket_page_waiting(client, floor):
    response = client.get(f"/t/{floor['waiting'].public_id}")
    page = text_of(response)
    assert response.status_code == 200
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert f'<h1 class="tk__label" id="tk-label">{floor["waiting"].label}</h1>' in page
    assert "Phường Bến Thành" in page
    assert "Đang chờ" in page
    assert "Còn 2 người trước bạn" in page
    assert "Dự kiến chờ khoảng" in page
    # Without JavaScript the page still follows the line.
    assert '<meta http-equiv="refresh" content="30">' in page


def test_ticket_page_called(client, floor):
    page = text_of(client.get(f"/t/{floor['called'].public_id}"))
    assert "Đến lượt bạn: quầy số 2" in page
    assert 'class="tk tk--called"' in page


def test_ticket_page_in_english(client, floor):
    # One language per test: the test's app context keeps the locale of its first request.
    english = text_of(client.get(f"/t/{floor['called'].public_id}?lang=en"))
    assert '<html lang="en">' in english
    assert "Your turn: counter 2" in english
    assert "Your number" in english


def test_unknown_ticket_is_the_not_found_page(client, floor):
    response = client.get("/t/no-such-ticket")
    assert response.status_code == 404
    assert "Không tìm thấy" in text_of(response)


def test_transferred_ticket_links_to_the_new_one(client, session, floor, now):
    from core.floor.tickets import transfer

    ticket = session.get(Ticket, floor["waiting"].id)
    b_line = next(s for s in floor["centre"].services if s.prefix == "B")
    with transaction():
        new = transfer(session, ticket, now=now, to_service=b_line)
    page = text_of(client.get(f"/t/{ticket.public_id}"))
    assert ticket.status == TicketStatus.TRANSFERRED
    assert f'href="/t/{new.public_id}"' in page


@both_databases
def test_no_personal_data_on_board_or_phone_page(client, floor):
    holder = floor["holder"]
    pages = [text_of(client.get("/board/26743")), text_of(client.get(f"/t/{holder.public_id}"))]
    assert holder.label in pages[0]
    for page in pages:
        for secret in (NAME, "Bình", PHONE, PHONE[-4:], holder.appointment.code):
            assert secret not in page


def test_voice_clips_cover_every_letter_and_number_word(client):
    manifest = json.loads((VOICE / "manifest.json").read_text(encoding="utf-8"))
    clips = manifest["clips"]
    words = {"khong", "mot", "hai", "ba", "bon", "nam", "sau", "bay", "tam", "chin"}
    words |= {"muoi", "muoi-tens", "mot-units", "tu-units", "lam", "linh", "tram", "nghin"}
    words |= {"moi-cong-dan-co-so", "den-quay-so"}
    words |= {f"letter-{chr(c)}" for c in range(ord("a"), ord("z") + 1)}
    assert words <= set(clips)
    files = [manifest["chime"], *(clip["file"] for clip in clips.values())]
    sizes = [(VOICE / name).stat().st_size for name in files]
    assert min(sizes) > 500
    assert sum(sizes) < 300_000  # small enough to commit and to load on a board
    for name in ("manifest.json", manifest["chime"], clips["hai"]["file"]):
        with client.get(f"/board/voice/{name}") as response:
            assert response.status_code == 200
            assert response.data == (VOICE / name).read_bytes()
    assert client.get("/board/voice/../pages.py").status_code == 404
    assert client.get("/board/voice/other.mp3").status_code == 404


def test_a_centres_own_recording_replaces_a_default_clip(app, client, tmp_path):
    own = tmp_path / "voice"
    own.mkdir()
    (own / "den-quay-so.mp3").write_bytes(b"ID3 recorded at the centre")
    app.config["VOICE_DIR"] = str(own)
    with client.get("/board/voice/den-quay-so.mp3") as response:
        assert response.data == b"ID3 recorded at the centre"
    with client.get("/board/voice/hai.mp3") as response:
        assert response.data == (VOICE / "hai.mp3").read_bytes()
