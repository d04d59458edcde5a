"""Messages to citizens (reminders) through an outbox: queued once per appointment and kind, sent by
pluggable senders (log, SMTP, a webhook for an SMS/Zalo gateway), retried with backoff.

The outbox row is the unit of work. Sending is split in three so that no database lock is
held while talking to a gateway: `claim_due` leases due rows (SKIP LOCKED on PostgreSQL, so
two runners never take the same row) and the caller commits; `deliver` sends them in a few
threads, each with a short timeout, one failure never stopping the others; `record_results`
writes what happened and the caller commits again. A runner that dies mid-send leaves its
rows leased: they come back when the lease runs out, counted as an attempt.
"""

from core.notifications.reminders import (
    DAY_BEFORE,
    HOUR_BEFORE,
    Claim,
    Message,
    ReminderPolicy,
    claim_due,
    queue_reminders,
    render,
)
from core.notifications.sending import (
    LogSender,
    Sender,
    SendError,
    SendReport,
    SmtpSender,
    WebhookSender,
    deliver,
    record_results,
    send_due,
    senders_from_config,
)

__all__ = [
    "DAY_BEFORE",
    "HOUR_BEFORE",
    "Claim",
    "LogSender",
    "Message",
    "ReminderPolicy",
    "SendError",
    "SendReport",
    "Sender",
    "SmtpSender",
    "WebhookSender",
    "claim_due",
    "deliver",
    "queue_reminders",
    "record_results",
    "render",
    "send_due",
    "senders_from_config",
]
