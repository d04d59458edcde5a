"""The production shape on loopback: two gunicorn web processes sharing PostgreSQL and a
Redis message queue, a CLI process emitting through the write-only emitter, and Redis going
away and coming back while officers keep calling."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
import redis
import requests
import sqlalchemy as sa

from core.common.timeutil import local_day, utcnow
from core.models import Ticket, TicketSource, TicketStatus
from display.message_queue import channel_for
from tests.conftest import PG_URL, need
from tests.display.live import Listener, free_port
from tests.factories import make_centre, make_field, make_service, make_staff, staff_token
from web.extensions import db
from xephang import create_app

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
CENTRE = "26734"
ALL_WEEK = {str(day): [["00:00", "23:59"]] for day in range(7)}


# --- processes ----------------------------------------------------------------------------


def wait_until(check, what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (requests.RequestException, redis.RedisError):
            pass
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def start_redis(port: int) -> subprocess.Popen:
    process = subprocess.Popen(
        [
            REDIS_SERVER,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port, socket_connect_timeout=0.5)
    wait_until(client.ping, f"redis-server on port {port}")
    client.close()
    return process


def start_web(port: int, env: dict[str, str], log: Path) -> subprocess.Popen:
    config = ROOT / "deploy" / "gunicorn.conf.py"
    args = [str(BIN / "gunicorn")]
    args += ["-c", str(config)] if config.exists() else ["-k", "gthread", "-w", "1"]
    args += ["-b", f"127.0.0.1:{port}", "--threads", "50", "--log-level", "warning"]
    with log.open("w") as out:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen(
            [*args, "wsgi:app"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=out
        )
    url = f"http://127.0.0.1:{port}"
    wait_until(
        lambda: requests.get(f"{url}/api/v1/centres/{CENTRE}/board", timeout=1).ok,
        f"gunicorn on port {port}",
    )
    return process


def stop(process: subprocess.Popen | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def scratch_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this test, dropped afterwards."""
    need(bool(PG_URL), "PostgreSQL not configured: set XEPHANG_TEST_POSTGRES_URL")
    name = f"xephang_mp_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except sa.exc.OperationalError as exc:
        need(False, f"PostgreSQL unreachable at {PG_URL}: {exc.orig}")
    try:
        yield sa.engine.make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def seed_floor(url: str, tmp_path: Path) -> dict:
    """A centre open around the clock (the web processes run on the real clock), one line,
    one counter, an officer and three waiting tickets of today."""
    app = create_app(
        {"DATABASE_URL": url, "SECRET_KEY": "mp", "CITIZEN_ID_KEY": "mp", "TESTING": True}
    )
    app.instance_path = str(tmp_path / "seed-instance")
    with app.app_context():
        db.create_all()
        centre = make_centre(CENTRE, "Phường Bến Thành", opening_hours=ALL_WEEK)
        service = make_service(centre, "A", fields=[make_field("Hộ tịch")], counters=1)
        officer = make_staff(centre, "officer")
        now = utcnow()
        labels, public_ids = [], []
        for number in (1, 2, 3):
            at = now - timedelta(minutes=10 - number)
            public_ids.append(secrets.token_urlsafe(9))
            db.session.add(
                Ticket(
                    public_id=public_ids[-1],
                    centre_id=centre.id,
                    service_id=service.id,
                    day=local_day(now),
                    number=number,
                    label=f"A{number:03d}",
                    source=TicketSource.WALK_IN,
                    status=TicketStatus.WAITING,
                    queue_time=at,
                    issued_at=at,
                    call_count=0,
                )
            )
            labels.append(f"A{number:03d}")
        floor = {
            "counter": centre.counters[0].id,
            "token": staff_token(officer),
            "labels": labels,
            "public_ids": public_ids,
        }
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    return floor


# --- the test -----------------------------------------------------------------------------


def test_two_web_processes_a_cli_emitter_and_redis_going_away(tmp_path):
    need(Path(REDIS_SERVER).exists(), f"redis-server not found at {REDIS_SERVER}")
    redis_port, port_a, port_b = free_port(), free_port(), free_port()
    redis_url = f"redis://127.0.0.1:{redis_port}/0"
    processes: list[subprocess.Popen] = []
    listeners: list[Listener] = []
    with scratch_database() as database_url:
        floor = seed_floor(database_url, tmp_path)
        env = {
            **os.environ,
            "XEPHANG_DATABASE_URL": database_url,
            "XEPHANG_REDIS_URL": redis_url,
            "XEPHANG_SECRET_KEY": "multiprocess-secret",
            "XEPHANG_CITIZEN_ID_KEY": "multiprocess-citizen-key",
            "XEPHANG_SQL_POOL_SIZE": "10",
            "XEPHANG_BOARD_DEBOUNCE_MS": "100",
        }
        env.pop("FLASK_APP", None)
        try:
            server = start_redis(redis_port)
            processes.append(server)
            logs = tmp_path / "a.log", tmp_path / "b.log"
            processes.append(start_web(port_a, env, logs[0]))
            processes.append(start_web(port_b, env, logs[1]))
            a, b = f"http://127.0.0.1:{port_a}", f"http://127.0.0.1:{port_b}"
            run_scenario(a, b, env, floor, redis_port, processes, listeners)
            # One clear line per outage and per direction, and one on recovery: no spam.
            assert _logged(logs[0], "Publishing to the Socket.IO message queue") == 2
            assert _logged(logs[0], "works again after") >= 2  # publishing and listening
            for log in logs:
                assert _logged(log, "Listening to the Socket.IO message queue") == 2
                assert _logged(log, "Traceback") == 0
        finally:
            for listener in listeners:
                listener.close()
            for process in reversed(processes):  # web processes first, then Redis
                stop(process)


def run_scenario(a, b, env, floor, redis_port, processes, listeners) -> None:
    first, second, third = floor["labels"]
    headers = {"Authorization": f"Bearer {floor['token']}"}
    counter = floor["counter"]

    def post(base: str, path: str) -> int:
        return requests.post(f"{base}/api/v1{path}", headers=headers, timeout=10).status_code

    def board_on(base: str) -> Listener:
        listener = Listener("/board").connect(base, f"centre={CENTRE}")
        listeners.append(listener)
        assert listener.next("board")["centre"]["code"] == CENTRE
        return listener

    on_a, on_b = board_on(a), board_on(b)

    # A call made through process A reaches the board held by process B.
    assert post(a, f"/counters/{counter}/open") == 200
    assert post(a, f"/counters/{counter}/call-next") == 200
    assert on_b.next("ticket_called")["label"] == first
    assert on_b.next("board", where=lambda s: s["now_serving"])["now_serving"][0]["label"] == first
    assert on_a.next("ticket_called")["label"] == first

    # An emit from a process holding no clients (the CLI) reaches the boards on both.
    cli = subprocess.run(
        [str(BIN / "flask"), "--app", "wsgi", "board", "refresh", "--centre", CENTRE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert cli.returncode == 0, cli.stderr
    for board in (on_a, on_b):
        pushed = board.next("board", where=lambda s: s["recent"])
        assert pushed["recent"][0]["label"] == first

    # Redis goes away: calling still works, and A's own boards still hear of it.
    processes[0].terminate()
    processes[0].wait(timeout=10)
    assert post(a, f"/tickets/{floor['public_ids'][0]}/no-show") == 200
    assert post(a, f"/counters/{counter}/call-next") == 200
    assert on_a.next("ticket_called")["label"] == second
    assert all(event != "ticket_called" for event, _ in on_b.quiet(0.5))  # lost with Redis
    # Rate-limited public reads count in memory meanwhile instead of failing.
    for path in (f"/centres/{CENTRE}/board", f"/centres/{CENTRE}"):
        assert requests.get(f"{a}/api/v1{path}", timeout=10).status_code == 200

    # Redis returns on the same port: both listeners subscribe again, boards catch up.
    processes[0] = start_redis(redis_port)
    client = redis.Redis(port=redis_port)
    channel = channel_for(f"redis://127.0.0.1:{redis_port}/0")  # the processes use /0
    wait_until(
        lambda: dict(client.pubsub_numsub(channel))[channel.encode()] >= 2,
        "both web processes to listen again",
    )
    client.close()
    assert post(a, f"/tickets/{floor['public_ids'][1]}/no-show") == 200
    assert post(a, f"/counters/{counter}/call-next") == 200
    assert on_b.next("ticket_called")["label"] == third
    on_b.emit("snapshot")
    caught_up = on_b.next("board", where=lambda s: len(s["recent"]) == 3)
    assert [call["label"] for call in caught_up["recent"]] == [third, second, first]


def _logged(path: Path, text: str) -> int:
    return path.read_text(errors="replace").count(text)
