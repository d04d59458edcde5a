"""Sending what the outbox holds through pluggable senders (log, SMTP, a webhook for an
SMS/Zalo gateway), each with a short timeout, and recording what happened."""

from __future__ import annotations

import json
import logging
import smtplib
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.models import Notification, NotificationStatus
from core.notifications.reminders import Claim, Message, ReminderPolicy, claim_due, close_row

log = logging.getLogger(__name__)

# --- sending ------------------------------------------------------------------------------


class SendError(Exception):
    """A sender could not hand the message over; the row is retried."""


class Sender(Protocol):
    def send(self, message: Message) -> None: ...


def mask(recipient: str) -> str:
    """Enough of an address to tell rows apart in a log, not enough to contact anyone."""
    if "@" in recipient:
        name, _, domain = recipient.partition("@")
        return f"{name[:1]}***@{domain}"
    return f"***{recipient[-3:]}"


class LogSender:
    """Writes reminders to the log: the default, and a dry run of the others."""

    def send(self, message: Message) -> None:
        log.info(
            "reminder %s #%d to %s: %s",
            message.kind,
            message.notification_id,
            mask(message.recipient),
            message.text,
        )


@dataclass(frozen=True)
class SmtpSender:
    host: str
    port: int = 25
    sender: str = "xephang@localhost"
    username: str = ""
    password: str = ""
    starttls: bool = False
    timeout: float = 5.0

    def send(self, message: Message) -> None:
        mail = EmailMessage()
        mail["From"] = self.sender
        mail["To"] = message.recipient
        mail["Subject"] = message.subject
        mail.set_content(message.text)
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                if self.starttls:
                    smtp.starttls()
                if self.username:
                    smtp.login(self.username, self.password)
                smtp.send_message(mail)
        except (OSError, smtplib.SMTPException) as exc:
            raise SendError(f"smtp: {exc}") from exc


@dataclass(frozen=True)
class WebhookSender:
    """POSTs `{id, kind, to, subject, text}` as JSON to an SMS/Zalo gateway; any 2xx is
    success. `id` is stable across retries, so a gateway can drop a repeat."""

    url: str
    token: str = ""
    timeout: float = 5.0

    def send(self, message: Message) -> None:
        body = json.dumps(
            {
                "id": message.notification_id,
                "kind": message.kind,
                "to": message.recipient,
                "subject": message.subject,
                "text": message.text,
            },
            ensure_ascii=False,
        ).encode("utf-8")
        headers = {"Content-Type": "application/json; charset=utf-8"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:  # noqa: S310
                answer.read(1024)
        except urllib.error.HTTPError as exc:
            raise SendError(f"webhook: HTTP {exc.code}") from exc
        except (OSError, ValueError) as exc:
            raise SendError(f"webhook: {exc}") from exc


def senders_from_config(cfg: Mapping[str, Any]) -> dict[str, Sender]:
    """The senders the settings make available (log always)."""
    senders: dict[str, Sender] = {"log": LogSender()}
    timeout = float(cfg["NOTIFY_TIMEOUT_SECONDS"])
    if cfg["SMTP_HOST"]:
        senders["smtp"] = SmtpSender(
            host=cfg["SMTP_HOST"],
            port=cfg["SMTP_PORT"],
            sender=cfg["SMTP_FROM"],
            username=cfg["SMTP_USERNAME"],
            password=cfg["SMTP_PASSWORD"],
            starttls=cfg["SMTP_STARTTLS"],
            timeout=timeout,
        )
    if cfg["NOTIFY_WEBHOOK_URL"]:
        senders["webhook"] = WebhookSender(
            cfg["NOTIFY_WEBHOOK_URL"], cfg["NOTIFY_WEBHOOK_TOKEN"], timeout=timeout
        )
    return senders


def deliver(
    messages: list[Message], senders: Mapping[str, Sender], *, workers: int = 4
) -> dict[int, str]:
    """Send each message through its channel's sender, a few at a time; notification id →
    error text ("" when sent). Never raises: one message's failure is its own."""
    if not messages:
        return {}

    def one(message: Message) -> tuple[int, str]:
        sender = senders.get(message.channel)
        if sender is None:
            return message.notification_id, f"no sender configured for {message.channel!r}"
        try:
            sender.send(message)
        except SendError as exc:
            return message.notification_id, str(exc)
        except Exception as exc:  # a sender's bug must not stop the batch
            log.exception("sender %s failed", message.channel)
            return message.notification_id, f"{type(exc).__name__}: {exc}"
        return message.notification_id, ""

    with ThreadPoolExecutor(max_workers=min(workers, len(messages))) as pool:
        return dict(pool.map(one, messages))


@dataclass
class SendReport:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    skipped: int = 0
    moved: int = 0

    def __str__(self) -> str:
        return (
            f"{self.sent} sent, {self.retrying} to retry, {self.failed} failed, "
            f"{self.skipped} skipped, {self.moved} moved"
        )


def record_results(
    session: Session,
    messages: list[Message],
    results: Mapping[int, str],
    *,
    now: datetime,
    policy: ReminderPolicy,
) -> SendReport:
    """Write each send's outcome on its row: sent; or retried later with backoff; or failed
    after `max_attempts`."""
    report = SendReport()
    texts = {m.notification_id: m for m in messages}
    rows = session.scalars(select(Notification).where(Notification.id.in_(list(results)))).all()
    for row in rows:
        error = results[row.id]
        if not error:
            row.status = NotificationStatus.SENT
            row.sent_at = now
            row.last_error = ""
            message = texts[row.id]
            row.payload = {**row.payload, "subject": message.subject, "text": message.text}
            report.sent += 1
        elif row.attempts >= policy.max_attempts:
            close_row(row, NotificationStatus.FAILED, error)
            report.failed += 1
        else:
            row.last_error = error[:500]
            row.next_attempt_at = now + policy.backoff(row.attempts)
            report.retrying += 1
    return report


def send_due(
    run: Callable[[Callable[[Session], Any]], Any],
    *,
    now: datetime,
    policy: ReminderPolicy,
    senders: Mapping[str, Sender],
) -> SendReport:
    """Claim, deliver and record, each database step in its own unit of work.

    `run(fn)` runs `fn(session)` in a committed transaction and returns its result: the
    caller (a job) owns the commits, this function only orders the steps.
    """
    claim: Claim = run(lambda session: claim_due(session, now=now, policy=policy))
    results = deliver(claim.messages, senders)
    report = run(
        lambda session: record_results(session, claim.messages, results, now=now, policy=policy)
    )
    report.skipped, report.moved = claim.skipped, claim.moved
    return report
