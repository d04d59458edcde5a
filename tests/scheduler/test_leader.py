"""Leader hand-over between two real `flask scheduler run` processes: the second stands by,
and takes over within the bound when the first is killed (kill -9: no clean release)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import both_databases

ROOT = Path(__file__).resolve().parents[2]
POLL_SECONDS = 0.5
# DESIGN: "takes over within a minute". With a 0.5 s poll it should take about a second.
TAKEOVER_BOUND = 60.0


class Scheduler:
    """One `flask --app wsgi scheduler run` process, its log in a file."""

    def __init__(self, name: str, database_url: str, tmp_path: Path):
        self.log = tmp_path / f"{name}.log"
        env = {
            **os.environ,
            "XEPHANG_DATABASE_URL": database_url,
            "XEPHANG_SCHEDULER_POLL_SECONDS": str(POLL_SECONDS),
            "XEPHANG_SECRET_KEY": "test-secret",
            "XEPHANG_CITIZEN_ID_KEY": "test-citizen-key",
            "PYTHONUNBUFFERED": "1",
        }
        env.pop("XEPHANG_REDIS_URL", None)
        with open(self.log, "wb") as out:
            # Our own interpreter running our own CLI with fixed arguments.
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "flask", "--app", "wsgi", "scheduler", "run"],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def wait_for(self, needle: str, timeout: float) -> float:
        """Seconds until `needle` appears in the log; fails after `timeout`."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if needle in self.text():
                return time.monotonic() - started
            if self.proc.poll() is not None:
                pytest.fail(f"scheduler exited {self.proc.returncode}:\n{self.text()}")
            time.sleep(0.05)
        pytest.fail(f"no {needle!r} within {timeout} s:\n{self.text()}")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)


@both_databases
def test_second_scheduler_stands_by_and_takes_over_when_the_leader_dies(app, tmp_path):
    url = app.config["DATABASE_URL"]
    first = Scheduler("first", url, tmp_path)
    second = None
    try:
        first.wait_for("leader: running 7 jobs", timeout=30)
        second = Scheduler("second", url, tmp_path)
        second.wait_for("standby: another scheduler holds the", timeout=30)
        time.sleep(3 * POLL_SECONDS)
        assert "leader:" not in second.text()  # still standing by while the first lives

        first.kill()
        took = second.wait_for("leader: running 7 jobs", timeout=TAKEOVER_BOUND)
        assert took < TAKEOVER_BOUND
        print(f"takeover after kill -9: {took:.2f} s")

        # A clean stop (SIGTERM) releases the lock and exits 0.
        second.proc.send_signal(signal.SIGTERM)
        assert second.proc.wait(20) == 0
    finally:
        first.kill()
        if second is not None:
            second.kill()
