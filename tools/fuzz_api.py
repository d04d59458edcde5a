"""Fuzz the served API against its own OpenAPI document with schemathesis, on PostgreSQL.

`make fuzz` (CI's `fuzz` stage): a scratch PostgreSQL database made from
XEPHANG_TEST_POSTGRES_URL is migrated and seeded with a small real city (five HCMC ward
centres with their lines, counters and slots, real procedures, staff of every role, kiosk and
display devices, tickets and appointments); the app serves it on 127.0.0.1 with rate limits
off; schemathesis reads /api/v1/openapi.json and sends what the document allows — and, in its
negative and coverage phases, what it forbids — with the right credentials per operation
(tools/fuzz_hooks.py). It fails on any 5xx and on any response that is not what the document
says (status, content type, body schema, headers), prints its counts, and drops the database.

    .venv/bin/python tools/fuzz_api.py [--max-time SECONDS] [--seed N]

Only 127.0.0.1 is ever sent a request; the run is bounded by --max-time.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from datetime import time as wall_clock
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import scratch_database  # noqa: E402 (after the path that finds it)

CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
    "negative_data_rejection",
    "missing_required_header",
    "unsupported_method",
    "ignored_auth",
)
PHASES = "examples,coverage,fuzzing"


# --- Database and city ------------------------------------------------------------------------


def working_morning() -> datetime:
    """09:00 in Ho Chi Minh City on the next working day: centres open, slots ahead."""
    from core.common.timeutil import local_day, local_to_utc, utcnow
    from core.places.calendar import holiday_name

    day = local_day(utcnow()) + timedelta(days=1)
    while day.weekday() >= 5 or holiday_name(day):
        day += timedelta(days=1)
    return local_to_utc(day, wall_clock(9, 0))


def staff_api_token(session, staff) -> str:
    """A bearer token for `staff`: the one place this tool makes staff tokens."""
    from core.access.staff_tokens import issue_staff_token
    from core.common.timeutil import utcnow

    token, _expires = issue_staff_token(session, staff, now=utcnow(), days=30)
    return token


def seed(session, now: datetime) -> dict[str, Any]:
    """The city the fuzzer works on, and the real values and tokens it is given."""
    from sqlalchemy import select

    from core.common.tokens import token_hash
    from core.models import Procedure, Slot
    from tests import factories as f

    centres = f.make_demo_city(now, days=3)
    here = centres[1]  # Sài Gòn: slots with room
    service = here.services[0]
    procedures = list(session.scalars(select(Procedure).order_by(Procedure.code)))
    officer = f.make_staff(here, "fuzz-officer", role="officer")
    manager = f.make_staff(here, "fuzz-manager", role="manager")
    operator = f.make_staff(None, "fuzz-operator", role="operator")
    # A script's account: its token is the one DELETE /auth/token revokes (once; after that
    # the fuzzer's further calls are answered 401, as documented).
    script = f.make_staff(here, "fuzz-script", role="officer")
    _, kiosk = f.make_device(here, "kiosk")
    f.make_device(here, "display")
    tickets = [f.make_ticket(here, now, service=service) for _ in range(6)]
    # Two today (the kiosk checks them in), one tomorrow; off the generated slots' minutes.
    appointments = [
        f.make_appointment(service, procedures[0], now + timedelta(minutes=minutes))
        for minutes in (33, 47, 24 * 60 + 3)
    ]
    manage_tokens = [secrets.token_urlsafe(24) for _ in appointments]
    for appointment, token in zip(appointments, manage_tokens, strict=True):
        appointment.manage_token_hash = token_hash(token)
    session.commit()
    slots = session.scalars(
        select(Slot.id).where(Slot.centre_id == here.id, Slot.booked < Slot.capacity).limit(20)
    ).all()
    tokens = {
        "kiosk": kiosk,
        "officer": staff_api_token(session, officer),
        "manager": staff_api_token(session, manager),
        "operator": staff_api_token(session, operator),
        "script": staff_api_token(session, script),
    }
    session.commit()
    return {
        "tokens": tokens,
        "values": {
            "centre": [c.code for c in centres],
            "procedure": [p.code for p in procedures],
            "slot_id": list(slots),
            "public_id": [t.public_id for t in tickets],
            "counter_id": [c.id for c in here.counters],
            "booking": [a.code for a in appointments],
            "phone_last4": [f.PHONE[-4:]],
            "counter_number": [c.number for c in here.counters],
            "manage_token": manage_tokens,
            "service": [service.prefix],
            "username": [script.username],
            "password": [f.STAFF_PASSWORD],
        },
        "kiosk_centre": here.code,
    }


# --- Serving ----------------------------------------------------------------------------------


class Tally:
    """Counts the requests the app answered and those that were 5xx (the server's own view)."""

    def __init__(self, app: Callable) -> None:
        self.app = app
        self.statuses: Counter[int] = Counter()
        self.lock = threading.Lock()

    def __call__(self, environ: dict, start_response: Callable) -> Any:
        def counting(status: str, headers: list, *args: Any) -> Any:
            with self.lock:
                self.statuses[int(status.split(" ", 1)[0])] += 1
            return start_response(status, headers, *args)

        return self.app(environ, counting)

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500)


@contextmanager
def serving(app: Any) -> Iterator[tuple[int, Tally]]:
    from werkzeug.serving import make_server

    tally = Tally(app.wsgi_app)
    app.wsgi_app = tally
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd.server_port, tally
    finally:
        httpd.shutdown()
        thread.join(timeout=10)


def record_refusals(app: Any) -> Counter[tuple[str, int, str]]:
    """(operation, status, reason) of every problem answer: why generated requests fail."""
    from flask import request

    seen: Counter[tuple[str, int, str]] = Counter()

    @app.after_request
    def _record(response: Any) -> Any:
        if response.mimetype == "application/problem+json":
            body = json.loads(response.get_data())
            reasons = ",".join(
                f"{k}:{v[:40]}" for k, v in sorted((body.get("errors") or {}).items())
            )
            rule = request.url_rule.rule if request.url_rule else "unmatched"
            seen[
                (f"{request.method} {rule}", response.status_code, f"{body.get('code')} {reasons}")
            ] += 1
        return response

    return seen


def build_app(url: str, now: datetime) -> Any:
    from xephang import create_app

    started = time.monotonic()
    app = create_app(
        {
            "DATABASE_URL": url,
            "SECRET_KEY": uuid.uuid4().hex,
            "CITIZEN_ID_KEY": uuid.uuid4().hex,
            "RATE_LIMITS_ENABLED": False,
            "SCHEDULER": "off",
            # A working morning that moves on with the run: open centres, slots ahead.
            "CLOCK": lambda: now + timedelta(seconds=time.monotonic() - started),
        }
    )
    # Thousands of requests: keep the run's output to the counts and the failures.
    logging.getLogger().setLevel(logging.WARNING)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    return app


# --- schemathesis -----------------------------------------------------------------------------


def run_schemathesis(port: int, city: dict[str, Any], args: argparse.Namespace, work: Path) -> int:
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "fuzz_hooks",
        "PYTHONPATH": os.pathsep.join([str(ROOT / "tools"), os.environ.get("PYTHONPATH", "")]),
        "XEPHANG_FUZZ_CITY": json.dumps(city),
    }
    command = [
        str(Path(sys.executable).parent / "schemathesis"),
        "run",
        f"http://127.0.0.1:{port}/api/v1/openapi.json",
        "--checks",
        ",".join(CHECKS),
        "--phases",
        PHASES,
        "--mode",
        "all",
        "--max-time",
        str(args.max_time),
        "--max-examples",
        str(args.max_examples),
        # One worker: Hypothesis parses lambdas' source with `ast`, which CPython 3.11 does
        # not do safely from two threads at once (SystemError: AST constructor recursion).
        "--workers",
        "1",
        "--generation-database",
        "none",
        "--request-timeout",
        "20",
        "--report",
        "json",
        "--report-dir",
        str(work),
        "--no-color",
        "--suppress-health-check",
        "all",
        "--output-truncate",
        "true",
    ]
    if args.seed is not None:
        command += ["--seed", str(args.seed)]
    # In a scratch folder: nothing schemathesis or Hypothesis writes lands in the work tree.
    return subprocess.call(command, cwd=work, env=env)


def report_counts(work: Path) -> tuple[int, int, list[dict[str, Any]]]:
    """Operations tested, non-conforming responses, and the failure groups."""
    path = work / "report.json"
    if not path.exists():
        found = list(work.glob("*.json"))
        path = found[0] if found else path
    if not path.exists():
        return 0, 0, []
    report = json.loads(path.read_text())
    operations = (report.get("operations") or {}).get("tested", 0)
    failures = report.get("failures") or []
    return operations, sum(group.get("count", 0) for group in failures), failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-time", type=int, default=150, help="seconds of fuzzing in all")
    parser.add_argument("--max-examples", type=int, default=60, help="per operation and phase")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument(
        "--why", action="store_true", help="list why requests were refused (status, reason)"
    )
    args = parser.parse_args()
    server_url = os.environ.get("XEPHANG_TEST_POSTGRES_URL", "")
    if not server_url:
        print("fuzz: set XEPHANG_TEST_POSTGRES_URL (a scratch database is made from it)")
        return 2
    started = time.monotonic()
    now = working_morning()
    with scratch_database(server_url) as url, tempfile.TemporaryDirectory() as tmp:
        app = build_app(url, now)
        with app.app_context():
            from flask_migrate import upgrade

            from web.extensions import db

            upgrade(directory=str(ROOT / "migrations"))
            city = seed(db.session, now)
            db.session.remove()
        refusals = record_refusals(app) if args.why else Counter()
        with serving(app) as (port, tally):
            status = run_schemathesis(port, city, args, Path(tmp))
        operations, non_conforming, failures = report_counts(Path(tmp))
        with app.app_context():
            from web.extensions import db

            db.engine.dispose()
    seconds = time.monotonic() - started
    print(
        f"fuzz: operations {operations}, requests {tally.requests}, "
        f"5xx {tally.server_errors}, non-conforming {non_conforming}, {seconds:.0f} s"
    )
    for (operation, answered, reason), count in sorted(refusals.items()):
        print(f"  refused {count:5d} × {answered} {operation}: {reason}")
    for group in failures:
        print(
            f"  {group.get('count')} × {group.get('title')}: {', '.join(group.get('operations', []))}"
        )
    if status != 0 or tally.server_errors or non_conforming:
        print(f"fuzz: FAILED (schemathesis exit {status})")
        return 1
    print("fuzz: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
