"""Alembic round trip on each database: upgrade, drift check, downgrade base, upgrade again.

SQLite always (a scratch file); PostgreSQL when XEPHANG_TEST_POSTGRES_URL is set (a scratch
database created and dropped here). Under CI=true a missing PostgreSQL is a failure, as in
the test suite. After `downgrade base` nothing but Alembic's own table may be left behind:
a forgotten table or PostgreSQL enum type would only show on the next upgrade otherwise.

Run: `python tools/check_migrations.py` (or `make migrations-check`).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import scratch_database  # noqa: E402 (after the path that finds it)

IN_CI = os.environ.get("CI", "").lower() == "true"
PG_URL = os.environ.get("XEPHANG_TEST_POSTGRES_URL", "")


class CheckFailed(Exception):
    pass


def flask(url: str, *args: str) -> None:
    """Run one `flask --app wsgi …` command against `url`; show its output only on failure."""
    env = {**os.environ, "XEPHANG_DATABASE_URL": url}
    env.pop("XEPHANG_REDIS_URL", None)  # migrations need no Redis
    # Our own interpreter running our own CLI with fixed arguments: no untrusted input.
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "flask", "--app", "wsgi", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        sys.stdout.write(done.stdout)
        sys.stderr.write(done.stderr)
        raise CheckFailed(f"`flask {' '.join(args)}` exited {done.returncode}")


def leftovers(url: str) -> list[str]:
    """Schema objects still present after `downgrade base`."""
    engine = sa.create_engine(url)
    try:
        found = [
            f"table {name}"
            for name in sa.inspect(engine).get_table_names()
            if name != "alembic_version"
        ]
        if engine.dialect.name == "postgresql":
            with engine.connect() as conn:
                types = conn.exec_driver_sql(
                    "SELECT typname FROM pg_type WHERE typtype = 'e' "
                    "AND typnamespace = 'public'::regnamespace"
                ).scalars()
                found += [f"enum type {name}" for name in types]
                functions = conn.exec_driver_sql(
                    "SELECT proname FROM pg_proc WHERE pronamespace = 'public'::regnamespace"
                ).scalars()
                found += [f"function {name}" for name in functions]
        return found
    finally:
        engine.dispose()


def functions_drift(url: str) -> list[str]:
    """SQL functions the code expects (as `create_all` would make them) whose body in the
    migrated database differs: `db check` compares tables, not functions."""
    engine = sa.create_engine(url)
    try:
        if engine.dialect.name != "postgresql":
            return []
        from core.booking.appointments import MAY_BOOK, may_book_function

        expected = may_book_function().split("$body$")[1]
        with engine.connect() as conn:
            found = conn.execute(
                sa.text("SELECT prosrc FROM pg_proc WHERE proname = :name"), {"name": MAY_BOOK}
            ).scalar()
        return [] if found == expected else [MAY_BOOK]
    finally:
        engine.dispose()


def round_trip(label: str, url: str) -> None:
    started = time.monotonic()
    flask(url, "db", "upgrade")
    flask(url, "db", "check")  # models and migrations describe the same schema
    drift = functions_drift(url)
    if drift:
        raise CheckFailed(
            f"{label}: the migrations' {', '.join(drift)} differs from the code's: "
            "add a migration with the code's text"
        )
    flask(url, "db", "downgrade", "base")
    left = leftovers(url)
    if left:
        raise CheckFailed(f"{label}: downgrade base left {', '.join(left)}")
    flask(url, "db", "upgrade")
    flask(url, "db", "check")
    print(
        f"migrations-check {label}: upgrade/check/downgrade/upgrade ok "
        f"({time.monotonic() - started:.1f} s)"
    )


def main() -> int:
    try:
        with tempfile.TemporaryDirectory(prefix="xephang-migcheck-") as tmp:
            round_trip("sqlite", f"sqlite:///{Path(tmp) / 'check.db'}")
        if PG_URL:
            with scratch_database(PG_URL) as url:
                round_trip("postgresql", url)
        elif IN_CI:
            raise CheckFailed("CI=true but XEPHANG_TEST_POSTGRES_URL is not set")
        else:
            print("migrations-check postgresql: skipped (set XEPHANG_TEST_POSTGRES_URL)")
    except (CheckFailed, sa.exc.OperationalError) as exc:
        print(f"migrations-check FAILED: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
