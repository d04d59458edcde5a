"""Migrations on a database with rows in it (tools/check_migrations.py runs them on empty
ones): SQLite rebuilds a table to drop a constraint, which must not run the ON DELETE
actions of the tables referencing it."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def flask_db(url: str, *args: str) -> None:
    env = {**os.environ, "XEPHANG_DATABASE_URL": url, "XEPHANG_REDIS_URL": ""}
    done = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "db", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr


def counts(path: Path) -> dict[str, object]:
    with sqlite3.connect(path) as conn:
        return {
            "staff": conn.execute("SELECT count(*) FROM staff").fetchone()[0],
            "assignments": conn.execute("SELECT count(*) FROM staff_assignments").fetchone()[0],
            "counter holder": conn.execute("SELECT staff_id FROM counters").fetchone()[0],
            "decided by": conn.execute("SELECT staff_id FROM dispatch_decisions").fetchone()[0],
        }


def test_0010_on_sqlite_keeps_what_references_staff_and_drops_the_old_tokens(tmp_path):
    path = tmp_path / "xephang.db"
    url = f"sqlite:///{path}"
    flask_db(url, "upgrade", "0009")
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA foreign_keys=ON")
        conn.executescript(
            """
            INSERT INTO centres (id, code, name, kind, address, legacy_names, search_text,
                is_hub, opening_hours, active)
            VALUES (1, '26734', 'Phường Bến Thành', 'ward', '', '', '', 0, '{}', 1);
            INSERT INTO staff (id, username, full_name, password_hash, role, centre_id,
                in_mobile_pool, api_token_hash, active, created_at)
            VALUES (1, 'an', 'An', 'x', 'officer', 1, 0, 'old-token-hash', 1,
                '2026-12-01 00:00:00');
            INSERT INTO staff_assignments (id, staff_id, centre_id, day, reason, created_at)
            VALUES (1, 1, 1, '2026-12-07', 'Hỗ trợ', '2026-12-01 00:00:00');
            INSERT INTO counters (id, centre_id, number, name, is_open, staff_id, active,
                priority_streak)
            VALUES (1, 1, 1, '', 1, 1, 1, 0);
            INSERT INTO dispatch_decisions (id, plan_id, day, status, staff_id, decided_at)
            VALUES (1, 'plan', '2026-12-07', 'accepted', 1, '2026-12-01 00:00:00');
            """
        )
    before = counts(path)
    assert before == {"staff": 1, "assignments": 1, "counter holder": 1, "decided by": 1}

    flask_db(url, "upgrade")
    assert counts(path) == before
    with sqlite3.connect(path) as conn:
        columns = {row[1] for row in conn.execute("PRAGMA table_info(staff)")}
        assert "api_token_hash" not in columns
        assert conn.execute("SELECT count(*) FROM staff_tokens").fetchone()[0] == 0
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []

    flask_db(url, "downgrade", "0009")
    assert counts(path) == before
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT api_token_hash FROM staff").fetchone() == (None,)
