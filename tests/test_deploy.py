"""The production shape in deploy/: gunicorn as configured there, serving /health, /metrics
and live boards over websockets; behind the nginx example when nginx is installed."""

from __future__ import annotations

import http.client
import os
import re
import runpy
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
import redis
import requests
import socketio

from tests.conftest import REDIS_URL, need
from tests.factories import (
    make_centre,
    make_device,
    make_field,
    make_service,
    make_staff,
    staff_token,
)
from web.extensions import db
from xephang import create_app
from xephang.config import DEFAULTS

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
GUNICORN_CONF = DEPLOY / "gunicorn.conf.py"
HOST = "127.0.0.1"
ALWAYS_OPEN = {str(day): [["00:00", "23:59"]] for day in range(7)}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


@contextmanager
def instances(
    count: int, database_url: str, logs: list | None = None, **env: str
) -> Iterator[list[str]]:
    """`count` × `gunicorn -c deploy/gunicorn.conf.py wsgi:app`, each on a free loopback
    port, started together; their base URLs once every one answers. Their log files (access
    and error log) are appended to `logs` when given."""
    procs, bases = [], []
    with ExitStack() as stack:
        for _ in range(count):
            port = free_port()
            log = stack.enter_context(
                tempfile.NamedTemporaryFile("w+", prefix="xephang-deploy-", suffix=".log")
            )
            if logs is not None:
                logs.append(log)
            full_env = {
                **os.environ,
                "XEPHANG_BIND": f"{HOST}:{port}",
                "XEPHANG_THREADS": "40",
                "XEPHANG_DATABASE_URL": database_url,
                "XEPHANG_REDIS_URL": "",
                "XEPHANG_SECRET_KEY": "deploy-test-secret",
                "XEPHANG_CITIZEN_ID_KEY": "deploy-test-citizen-key",
                "XEPHANG_RATE_LIMITS_ENABLED": "0",
                "XEPHANG_SCHEDULER": "off",  # as the systemd units and compose file set it
                **env,
            }
            cmd = [sys.executable, "-m", "gunicorn", "-c", str(GUNICORN_CONF), "wsgi:app"]
            proc = subprocess.Popen(
                cmd, cwd=ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT
            )
            stack.callback(_stop, proc)
            procs.append((proc, log))
            bases.append(f"http://{HOST}:{port}")
        deadline = time.monotonic() + 30
        for (proc, log), base in zip(procs, bases, strict=True):
            while True:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    pytest.fail(f"gunicorn did not start:\n{log.read()[-3000:]}")
                try:
                    requests.get(f"{base}/health", timeout=2)
                    break
                except requests.RequestException:  # not listening yet, or the worker boots
                    time.sleep(0.1)
        yield bases


def _stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGQUIT)  # quick shutdown: nothing to finish gracefully here
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextmanager
def instance(database_url: str, **env: str) -> Iterator[str]:
    with instances(1, database_url, **env) as bases:
        yield bases[0]


@pytest.fixture
def city(tmp_path):
    """A SQLite database with one always-open centre, its kiosk and an officer's token."""
    path = tmp_path / "xephang.db"
    url = f"sqlite:///{path}"
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "deploy-test-secret"})
    with app.app_context():
        db.create_all()
        centre = make_centre("26734", "Phường Bến Thành", opening_hours=ALWAYS_OPEN)
        make_service(centre, "A", fields=[make_field("Hộ tịch")], counters=1)
        officer = make_staff(centre, "officer", full_name="Phạm Thị Quầy")
        data = {
            "url": url,
            "code": centre.code,
            "counter": centre.counters[0].id,
            "kiosk": make_device(centre)[1],
            "officer": staff_token(officer),
        }
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    return data


def metric(text: str, name: str, **labels: str) -> float:
    """One sample's value from Prometheus text, 0 when absent."""
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        match = re.fullmatch(r"(\w+)(?:\{(.*)\})? (\S+)", line)
        if not match or match.group(1) != name:
            continue
        got = ",".join(sorted((match.group(2) or "").split(","))) if match.group(2) else ""
        if got == want:
            return float(match.group(3))
    return 0.0


# --- gunicorn.conf.py ----------------------------------------------------------------------


def test_gunicorn_config_is_valid_and_reads_its_settings_from_the_environment(monkeypatch):
    result = subprocess.run(
        [sys.executable, "-m", "gunicorn", "-c", str(GUNICORN_CONF), "--check-config", "wsgi:app"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    defaults = runpy.run_path(str(GUNICORN_CONF))
    assert defaults["bind"] == [DEFAULTS["BIND"]]
    assert (defaults["worker_class"], defaults["workers"]) == ("gthread", 1)
    assert defaults["threads"] == DEFAULTS["THREADS"]
    monkeypatch.setenv("XEPHANG_BIND", "127.0.0.1:8001, [::1]:8001")
    monkeypatch.setenv("XEPHANG_THREADS", "1500")
    tuned = runpy.run_path(str(GUNICORN_CONF))
    assert tuned["bind"] == ["127.0.0.1:8001", "[::1]:8001"]
    assert tuned["threads"] == 1500
    # Every socket counts against gthread's connection limit: it must stay above the threads.
    assert tuned["worker_connections"] > tuned["threads"]
    # Several instances on one host: no shared gunicornc control socket.
    assert defaults["control_socket_disable"] is True


def test_deploy_files_name_only_real_settings_and_hold_no_secret():
    """A typo in a deploy file's XEPHANG_* name would be silently ignored by the app."""
    names = set()
    for path in DEPLOY.rglob("*"):
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            names |= set(re.findall(r"\bXEPHANG_([A-Z][A-Z0-9_]*)", text))
            assert not re.search(r"(?i)(secret_key|password)\s*[:=]\s*[A-Za-z0-9]{12,}", text), path
    names -= {"BENCH_REDIS_URL", "BENCH_CHANNEL"}  # none expected; benches live in bench/
    assert names, "deploy files name no setting"
    assert names <= set(DEFAULTS), sorted(names - set(DEFAULTS))


# --- one instance, as production runs it -------------------------------------------------------


def test_an_instance_serves_health_metrics_and_a_live_board(city):
    with instance(city["url"]) as base:
        health = requests.get(f"{base}/health", timeout=5)
        assert health.status_code == 200
        assert health.json()["status"] == "ok"
        assert health.json()["database"] is True and health.json()["redis"] is None

        called = threading.Event()
        got: dict = {}
        board = socketio.Client(reconnection=False)

        @board.on("board", namespace="/board")
        def _board(data):
            got["board"] = data

        @board.on("ticket_called", namespace="/board")
        def _called(data):
            got["called"] = data
            board.emit("ack", {"sent_at": data.get("sent_at")}, namespace="/board")
            called.set()

        board.connect(
            f"{base}?centre={city['code']}",
            namespaces=["/board"],
            transports=["websocket"],
            wait_timeout=10,
        )
        try:
            deadline = time.monotonic() + 5
            while "board" not in got and time.monotonic() < deadline:
                time.sleep(0.05)
            assert "board" in got, "no snapshot on connect"
            before = requests.get(f"{base}/metrics", timeout=5).text
            assert metric(before, "xephang_socket_clients", namespace="/board") == 1

            kiosk = {"Authorization": f"Bearer {city['kiosk']}"}
            officer = {"Authorization": f"Bearer {city['officer']}"}
            api = f"{base}/api/v1"
            issued = requests.post(
                f"{api}/centres/{city['code']}/tickets",
                json={"service": "A"},
                headers=kiosk,
                timeout=10,
            )
            assert issued.status_code in (200, 201), issued.text
            counter = city["counter"]
            assert requests.post(f"{api}/counters/{counter}/open", headers=officer, timeout=10).ok
            call = requests.post(f"{api}/counters/{counter}/call-next", headers=officer, timeout=10)
            assert call.status_code == 200, call.text
            assert called.wait(5), "the board never heard the call"
            assert got["called"]["label"] == call.json()["ticket"]["label"]

            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                after = requests.get(f"{base}/metrics", timeout=5).text
                if metric(after, "xephang_event_delivery_lag_seconds_count", namespace="/board"):
                    break
                time.sleep(0.1)
            assert metric(after, "xephang_tickets_issued_total", source="walk_in") >= 1
            assert metric(after, "xephang_tickets_called_total", recall="false") >= 1
            assert (
                metric(after, "xephang_event_delivery_lag_seconds_count", namespace="/board") == 1
            )
            rule = "/api/v1/counters/<int:counter_id>/call-next"
            assert (
                metric(
                    after, "xephang_http_requests_total", method="POST", endpoint=rule, status="200"
                )
                == 1
            )
        finally:
            board.disconnect()


def test_an_instance_with_redis_unreachable_starts_and_reports_degraded(city):
    with instance(city["url"], XEPHANG_REDIS_URL=f"redis://{HOST}:{free_port()}/0") as base:
        started = time.monotonic()
        health = requests.get(f"{base}/health", timeout=5)
        assert time.monotonic() - started < 2.5
        assert health.status_code == 200
        assert (health.json()["status"], health.json()["redis"]) == ("degraded", False)


def test_an_instance_without_its_database_answers_503():
    nowhere = f"postgresql+psycopg://postgres@{HOST}:{free_port()}/xephang"  # nobody listens
    with instance(nowhere) as base:
        health = requests.get(f"{base}/health", timeout=5)
        assert health.status_code == 503
        assert (health.json()["status"], health.json()["database"]) == ("down", False)


# --- the nginx example in front of two instances on Redis ------------------------------------


def nginx_config(example: str, ports: list[int], listen: int, workdir: Path) -> str:
    """deploy/nginx/xephang.conf with our ports and paths, wrapped in a minimal nginx.conf."""
    site = example.replace("listen [::]:80;", "")
    site = site.replace("listen 80;", f"listen {HOST}:{listen};")
    site = site.replace("server 127.0.0.1:8001", f"server {HOST}:{ports[0]}")
    site = site.replace("server 127.0.0.1:8002", f"server {HOST}:{ports[1]}")
    site = site.replace("/srv/xephang/", f"{ROOT}/")
    site = site.replace("/var/log/nginx/", f"{workdir}/")
    assert f"{HOST}:{ports[1]}" in site and f"{ROOT}/xephang/static/" in site
    temp = "\n".join(
        f"  {name}_temp_path {workdir / name};"
        for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return (
        f"pid {workdir / 'nginx.pid'};\nerror_log {workdir / 'error.log'};\n"
        f"events {{}}\nhttp {{\n  access_log off;\n{temp}\n{site}\n}}\n"
    )


def nginx_binary() -> str:
    nginx = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    need(nginx is not None, "nginx not installed (apt-get install nginx-light)")
    return str(nginx)


@contextmanager
def nginx_in_front(bases: list[str], workdir: Path) -> Iterator[str]:
    """deploy/nginx/xephang.conf in front of two instances; yields its base URL once it
    answers. Its access log is `workdir / "xephang.access.log"`."""
    nginx = nginx_binary()
    listen = free_port()
    ports = [int(base.rsplit(":", 1)[1]) for base in bases]
    conf = workdir / "nginx.conf"
    conf.write_text(
        nginx_config((DEPLOY / "nginx" / "xephang.conf").read_text(), ports, listen, workdir)
    )
    check = subprocess.run([nginx, "-t", "-c", str(conf)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    proc = subprocess.Popen(
        [nginx, "-c", str(conf), "-g", "daemon off;"], stderr=subprocess.DEVNULL
    )
    base = f"http://{HOST}:{listen}"
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                requests.get(f"{base}/health", timeout=2)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline and proc.poll() is None, "nginx did not start"
                time.sleep(0.1)
        yield base
    finally:
        proc.send_signal(signal.SIGQUIT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.redis
def test_nginx_example_balances_two_instances_sharing_redis(city, tmp_path):
    need(bool(REDIS_URL), "Redis not configured: set XEPHANG_TEST_REDIS_URL")
    nginx_binary()
    with (
        instances(2, city["url"], XEPHANG_REDIS_URL=REDIS_URL) as (a, b),
        nginx_in_front([a, b], tmp_path) as base,
    ):
        boards = []
        try:
            health = requests.get(f"{base}/health", timeout=5)
            assert health.status_code == 200 and health.json()["redis"] is True
            assert requests.get(f"{base}/metrics", timeout=5).status_code == 404
            assert requests.get(f"{a}/metrics", timeout=5).status_code == 200  # scraped directly
            assert requests.get(f"{base}/static/base.css", timeout=5).status_code == 200

            # Four boards through nginx: least_conn spreads them over both instances.
            heard: list[str] = []
            for _ in range(4):
                board = socketio.Client(reconnection=False)
                board.on(
                    "ticket_called", lambda data: heard.append(data["label"]), namespace="/board"
                )
                board.connect(
                    f"{base}?centre={city['code']}",
                    namespaces=["/board"],
                    transports=["websocket"],
                    wait_timeout=10,
                )
                boards.append(board)
            per_instance = [
                metric(
                    requests.get(f"{u}/metrics", timeout=5).text,
                    "xephang_socket_clients",
                    namespace="/board",
                )
                for u in (a, b)
            ]
            assert sum(per_instance) == 4 and min(per_instance) >= 1, per_instance

            kiosk = {"Authorization": f"Bearer {city['kiosk']}"}
            officer = {"Authorization": f"Bearer {city['officer']}"}
            api = f"{base}/api/v1"
            assert requests.post(
                f"{api}/centres/{city['code']}/tickets",
                json={"service": "A"},
                headers=kiosk,
                timeout=10,
            ).ok
            counter = city["counter"]
            requests.post(f"{api}/counters/{counter}/open", headers=officer, timeout=10)
            call = requests.post(f"{api}/counters/{counter}/call-next", headers=officer, timeout=10)
            assert call.status_code == 200, call.text
            label = call.json()["ticket"]["label"]
            deadline = time.monotonic() + 5
            while heard.count(label) < 4 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert heard.count(label) == 4, heard
        finally:
            for board in boards:
                board.disconnect()


def request_from(source: str, base: str, method: str, path: str, **headers: str) -> int:
    """One request to `base` from the loopback address `source` (127.0.0.2, 127.0.0.3 …): a
    citizen on their own machine, as far as nginx can tell."""
    host, port = base.removeprefix("http://").rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=10, source_address=(source, 0))
    try:
        body = b"{}" if method == "POST" else None
        conn.request(
            method, path, body=body, headers={"Content-Type": "application/json", **headers}
        )
        answer = conn.getresponse()
        answer.read()
        return answer.status
    finally:
        conn.close()


def forget_limits(client: redis.Redis, *addresses: str) -> None:
    for address in addresses:
        for key in client.scan_iter(match=f"*LIMITER/{address}/*"):
            client.delete(key)


@pytest.mark.redis
def test_behind_nginx_each_citizen_is_their_own_client_and_no_secret_reaches_a_log(city, tmp_path):
    need(bool(REDIS_URL), "Redis not configured: set XEPHANG_TEST_REDIS_URL")
    nginx_binary()
    limits = redis.Redis.from_url(REDIS_URL)
    first, second = "127.0.0.2", "127.0.0.3"
    forget_limits(limits, first, second)
    logs: list = []
    secret = "s3cr3t-token-do-not-log"
    try:
        with (
            instances(
                2,
                city["url"],
                logs=logs,
                XEPHANG_REDIS_URL=REDIS_URL,
                XEPHANG_PROXY_HOPS="1",  # as deploy/ sets it
                XEPHANG_RATE_LIMITS_ENABLED="1",
                XEPHANG_RATE_LIMIT_BOOKING="3 per minute",
                XEPHANG_TRUSTED_HOSTS=f"{HOST},localhost",
            ) as bases,
            nginx_in_front(bases, tmp_path) as base,
        ):
            book = "/api/v1/appointments"
            # The first citizen reaches the booking limit (every attempt counts, valid or not).
            assert [request_from(first, base, "POST", book) for _ in range(3)] == [422] * 3
            assert request_from(first, base, "POST", book) == 429
            # The second, behind the same nginx, is not throttled by the first ...
            assert request_from(second, base, "POST", book) == 422
            # ... and neither can step into a fresh bucket (or another's) by forging the header.
            forged = {"X-Forwarded-For": "127.0.0.99"}
            assert request_from(first, base, "POST", book, **forged) == 429
            assert request_from(second, base, "POST", book, **{"X-Forwarded-For": first}) == 422

            # A Host the site does not serve is refused.
            assert (
                request_from(first, base, "GET", "/api/v1/procedures", Host="evil.example") == 400
            )
            assert request_from(first, base, "GET", "/api/v1/procedures") == 200

            # Links that carry a secret once: kiosk set-up and a manage link.
            assert request_from(first, base, "GET", f"/kiosk/setup?token={secret}") == 403
            assert request_from(first, base, "GET", f"/manage?code=ABCD2345&token={secret}") == 404
            time.sleep(0.5)  # let both servers write their access lines
            nginx_log = (tmp_path / "xephang.access.log").read_text()
            app_logs = ""
            for log in logs:
                log.seek(0)
                app_logs += log.read()
    finally:
        forget_limits(limits, first, second)

    assert "/kiosk/setup?token=[redacted]" in nginx_log and secret not in nginx_log
    assert "token=[redacted]" in app_logs and secret not in app_logs
    # Both logs name the citizen, not nginx: gunicorn's access log reads ProxyFix's address.
    assert f"{first} - " in nginx_log and f"{second} - " in nginx_log
    booking_lines = [line for line in app_logs.splitlines() if "/api/v1/appointments" in line]
    assert booking_lines and all(line.split()[0] in (first, second) for line in booking_lines)
