"""Reminders with injected time: queued once, sent once, retried on failure against a real
local HTTP gateway, never blocking each other; SMTP against a tiny local mail server."""

from __future__ import annotations

import json
import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from core import notifications
from core.models import AppointmentStatus, Notification, NotificationStatus
from core.notifications import (
    DAY_BEFORE,
    HOUR_BEFORE,
    ReminderPolicy,
    SmtpSender,
    WebhookSender,
    claim_due,
    queue_reminders,
    send_due,
)
from tests.conftest import both_databases
from tests.factories import make_appointment, make_centre, make_procedure, make_service
from web.db import transaction
from web.extensions import db

POLICY = ReminderPolicy(channels=("webhook",), max_attempts=3, retry_minutes=1)


# --- a local SMS gateway ------------------------------------------------------------------


class Gateway:
    """An HTTP server on a free loopback port answering each POST with the next status of
    `answers` (the last one repeats); `slow_for` recipients get their answer after `delay`."""

    def __init__(self, answers: list[int], slow_for: str = "", delay: float = 0.0):
        self.answers, self.slow_for, self.delay = list(answers), slow_for, delay
        self.received: list[dict] = []
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                body["authorization"] = self.headers.get("Authorization")
                gateway.received.append(body)
                if body["to"] == gateway.slow_for:
                    time.sleep(gateway.delay)
                status = gateway.answers.pop(0) if len(gateway.answers) > 1 else gateway.answers[0]
                try:
                    self.send_response(status)
                    self.end_headers()
                    self.wfile.write(b"{}")
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the sender timed out and hung up: what the test wants

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/sms"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Gateway:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


# --- fixtures -----------------------------------------------------------------------------


@pytest.fixture
def booked(session, now):
    """An appointment on Tuesday 09:00 local (now is Monday 08:00), booked last week."""
    centre = make_centre(name="Phường Bến Thành", address="92 Nguyễn Trãi")
    service = make_service(centre, "A", counters=1)
    procedure = make_procedure(name="Đăng ký khai sinh")
    appointment = make_appointment(service, procedure, now + timedelta(days=1, hours=1))
    appointment.created_at = now - timedelta(days=7)
    session.commit()
    return SimpleNamespace(appointment=appointment, service=service, procedure=procedure)


def queue(now, policy=POLICY) -> int:
    with transaction() as session:
        return queue_reminders(session, now=now, policy=policy)


def in_transaction(fn):
    with transaction() as session:
        return fn(session)


def send(now, senders, policy=POLICY):
    return send_due(in_transaction, now=now, policy=policy, senders=senders)


def rows(session) -> list[Notification]:
    session.expire_all()
    return list(session.scalars(select(Notification).order_by(Notification.kind)))


# --- queueing -----------------------------------------------------------------------------


@both_databases
def test_reminders_are_queued_once_per_kind(session, booked, now):
    assert queue(now) == 2
    assert queue(now) == 0
    assert queue(now + timedelta(minutes=10)) == 0
    found = rows(session)
    starts = booked.appointment.starts_at
    assert [(r.kind, r.channel, r.recipient, r.status) for r in found] == [
        (DAY_BEFORE, "webhook", booked.appointment.phone, NotificationStatus.PENDING),
        (HOUR_BEFORE, "webhook", booked.appointment.phone, NotificationStatus.PENDING),
    ]
    # Monday 18:00 local = 11:00 UTC; one hour before Tuesday 09:00 local.
    assert found[0].next_attempt_at == now + timedelta(hours=10)
    assert found[1].next_attempt_at == starts - timedelta(hours=1)


def test_no_day_before_reminder_for_a_booking_made_after_it_was_due(session, booked, now):
    booked.appointment.created_at = now + timedelta(hours=11)  # Monday 19:00 local
    session.commit()
    assert queue(now + timedelta(hours=12)) == 1
    assert [r.kind for r in rows(session)] == [HOUR_BEFORE]


def test_channel_is_the_first_that_reaches_the_citizen(session, booked, now):
    policy = ReminderPolicy(channels=("smtp", "webhook"))
    assert queue(now, policy) == 2
    assert {r.channel for r in rows(session)} == {"webhook"}  # no e-mail address given
    booked.appointment.email = "an@example.vn"
    booked.appointment.id  # noqa: B018 - loaded before the rows are cleared
    session.execute(Notification.__table__.delete())
    session.commit()
    assert queue(now, policy) == 2
    assert {(r.channel, r.recipient) for r in rows(session)} == {("smtp", "an@example.vn")}


# --- sending ------------------------------------------------------------------------------


@both_databases
def test_sent_once_and_retried_after_a_gateway_error(session, booked, now):
    queue(now)
    evening = now + timedelta(hours=10)
    with Gateway([500, 200]) as gateway:
        senders = {"webhook": WebhookSender(gateway.url, "gw-token", timeout=2)}
        assert send(now, senders).sent == 0  # nothing due yet
        first = send(evening, senders)
        assert (first.sent, first.retrying) == (0, 1)
        row = rows(session)[0]
        assert row.status == NotificationStatus.PENDING and row.attempts == 1
        assert row.last_error == "webhook: HTTP 500"
        assert row.next_attempt_at == evening + timedelta(minutes=1)
        assert send(evening + timedelta(seconds=30), senders).sent == 0  # backing off
        assert send(evening + timedelta(minutes=1), senders).sent == 1
        assert send(evening + timedelta(minutes=2), senders).sent == 0  # never twice
    assert len(gateway.received) == 2
    sent = gateway.received[-1]
    assert sent["to"] == booked.appointment.phone and sent["kind"] == DAY_BEFORE
    assert sent["authorization"] == "Bearer gw-token"
    assert "Nhắc lịch hẹn: 09:00 ngày 08/12/2026 tại Phường Bến Thành" in sent["text"]
    assert booked.appointment.code in sent["text"] and "Trần" not in sent["text"]
    row = rows(session)[0]
    assert row.status == NotificationStatus.SENT and row.sent_at == evening + timedelta(minutes=1)
    assert row.payload["text"] == sent["text"]


def test_failed_after_max_attempts(session, booked, now):
    queue(now)
    evening = now + timedelta(hours=10)
    with Gateway([503]) as gateway:
        senders = {"webhook": WebhookSender(gateway.url, timeout=2)}
        at = evening
        for _ in range(POLICY.max_attempts):
            send(at, senders)
            at += timedelta(hours=1)
    row = rows(session)[0]
    assert row.status == NotificationStatus.FAILED and row.attempts == POLICY.max_attempts
    assert len(gateway.received) == POLICY.max_attempts


def test_a_slow_gateway_answer_delays_only_its_own_message(session, booked, now):
    others = [
        make_appointment(
            booked.service,
            booked.procedure,
            booked.appointment.starts_at + timedelta(minutes=30 * i),
            phone=f"091200000{i}",
        )
        for i in (1, 2, 3)
    ]
    for other in others:
        other.created_at = booked.appointment.created_at
    session.commit()
    queue(now)
    with Gateway([200], slow_for=booked.appointment.phone, delay=3) as gateway:
        senders = {"webhook": WebhookSender(gateway.url, timeout=0.5)}
        started = time.perf_counter()
        report = send(now + timedelta(hours=10), senders)
        elapsed = time.perf_counter() - started
    assert (report.sent, report.retrying) == (3, 1)
    assert elapsed < 2.5
    slow = next(
        r
        for r in rows(session)
        if r.appointment_id == booked.appointment.id and r.kind == DAY_BEFORE
    )
    assert slow.status == NotificationStatus.PENDING and "timed out" in slow.last_error


def test_a_cancelled_appointment_gets_no_reminder(session, booked, now):
    queue(now)
    booked.appointment.status = AppointmentStatus.CANCELLED
    session.commit()
    report = send(now + timedelta(days=1), {"log": notifications.LogSender()})
    assert (report.sent, report.skipped) == (0, 2)
    assert {(r.status, r.last_error) for r in rows(session)} == {
        (NotificationStatus.FAILED, "skipped: appointment cancelled")
    }


def test_a_rescheduled_appointment_moves_its_reminder(session, booked, now):
    queue(now)
    booked.appointment.starts_at += timedelta(days=2)
    booked.appointment.ends_at += timedelta(days=2)
    session.commit()
    report = send(now + timedelta(hours=10), {"webhook": notifications.LogSender()})
    assert (report.sent, report.moved) == (0, 1)
    day_before = rows(session)[0]
    assert day_before.next_attempt_at == now + timedelta(days=2, hours=10)


def test_english_booking_gets_an_english_reminder(session, booked, now, caplog):
    booked.appointment.locale = "en"
    session.commit()
    queue(now, ReminderPolicy(channels=("log",)))
    with caplog.at_level("INFO", logger="core.notifications.sending"):
        report = send(now + timedelta(hours=10), {"log": notifications.LogSender()})
    assert report.sent == 1
    assert "Reminder: your appointment is at 09:00 on 08/12/2026" in caplog.text
    assert booked.appointment.phone not in caplog.text  # masked in the log


# SKIP LOCKED is PostgreSQL's; on SQLite one writer at a time does the same.
@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_two_runners_never_claim_the_same_row(app, session, booked, now):
    queue(now)
    morning = now + timedelta(days=1, minutes=30)  # Tuesday 08:30 local: both due
    with Session(db.engine) as first, Session(db.engine) as second:
        taken = claim_due(first, now=morning, policy=POLICY)  # rows locked, not committed
        assert len(taken.messages) == 2
        assert claim_due(second, now=morning, policy=POLICY).messages == []
        first.commit()
        second.rollback()
        # Committed: the rows are leased (next attempt later), still not the second's.
        assert claim_due(second, now=morning, policy=POLICY).messages == []
        second.rollback()


# --- SMTP ---------------------------------------------------------------------------------


class _SmtpHandler(socketserver.StreamRequestHandler):
    """Just enough SMTP for smtplib: greet, accept one message, remember it."""

    def handle(self) -> None:
        self.wfile.write(b"220 test ESMTP\r\n")
        while line := self.rfile.readline():
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                self.wfile.write(b"250 test\r\n")
            elif verb == b"DATA":
                self.wfile.write(b"354 go on\r\n")
                data = b""
                while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                    data += chunk
                self.server.messages.append(data.decode("utf-8"))  # type: ignore[attr-defined]
                self.wfile.write(b"250 queued\r\n")
            elif verb == b"QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:
                self.wfile.write(b"250 ok\r\n")


@pytest.fixture
def smtp_server() -> Iterator[socketserver.ThreadingTCPServer]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _SmtpHandler)
    server.daemon_threads = True
    server.messages = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_smtp_sender_delivers_the_reminder(session, booked, now, smtp_server):
    booked.appointment.email = "an@example.vn"
    session.commit()
    policy = ReminderPolicy(channels=("smtp",))
    queue(now, policy)
    port = smtp_server.server_address[1]
    senders = {"smtp": SmtpSender("127.0.0.1", port, sender="nhac-lich@hcm.gov.vn", timeout=2)}
    assert send(now + timedelta(hours=10), senders, policy).sent == 1
    (mail,) = smtp_server.messages
    assert "To: an@example.vn" in mail and "From: nhac-lich@hcm.gov.vn" in mail
    assert "Subject:" in mail


def test_smtp_server_down_is_a_retry_not_a_crash(session, booked, now):
    booked.appointment.email = "an@example.vn"
    session.commit()
    policy = ReminderPolicy(channels=("smtp",))
    queue(now, policy)
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    report = send(
        now + timedelta(hours=10), {"smtp": SmtpSender("127.0.0.1", port, timeout=1)}, policy
    )
    assert report.retrying == 1
    assert rows(session)[0].last_error.startswith("smtp:")
