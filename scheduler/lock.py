"""The leader lock: one scheduler runs the jobs, any other copy waits on standby.

PostgreSQL: a session-level advisory lock on a dedicated connection. It belongs to that
connection, so it dies with the process (kill -9 included: the server sees the socket close)
and, with TCP keepalives asked of the server, within about half a minute of a host vanishing.
SQLite: an exclusive `flock` on a file beside the database file; the kernel drops it when
the process dies. Beside the database rather than in `instance/`: whoever shares the
database must share the lock, whatever instance folder they run from.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
from pathlib import Path
from typing import IO, Protocol

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

log = logging.getLogger(__name__)

# pg_advisory_lock key: the first 8 bytes of sha256("xephang.scheduler"), signed.
ADVISORY_KEY = int.from_bytes(hashlib.sha256(b"xephang.scheduler").digest()[:8], "big", signed=True)


class LeaderLock(Protocol):
    def acquire(self) -> bool:
        """Take the lock if free; True when this process holds it."""

    def held(self) -> bool:
        """Whether the lock is still ours (checked by the leader at every poll)."""

    def release(self) -> None: ...

    def describe(self) -> str: ...


class FileLock:
    def __init__(self, path: Path):
        self.path = path
        self._file: IO[str] | None = None

    def acquire(self) -> bool:
        if self._file is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+")  # noqa: SIM115 - held open for as long as we lead
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._file = handle
        return True

    def held(self) -> bool:
        return self._file is not None

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None

    def describe(self) -> str:
        return f"file lock {self.path}"


class PostgresLock:
    def __init__(self, url: str, key: int = ADVISORY_KEY):
        # Its own engine without a pool: the lock must live on a connection nothing else uses.
        self.engine = sa.create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
        self.key = key
        self._conn: sa.Connection | None = None

    def acquire(self) -> bool:
        if self._conn is not None:
            return self.held()
        conn = None
        try:
            conn = self.engine.connect()
            # Let the server notice a vanished host in ~25 s and so free the lock.
            conn.exec_driver_sql("SET tcp_keepalives_idle = 10")
            conn.exec_driver_sql("SET tcp_keepalives_interval = 5")
            conn.exec_driver_sql("SET tcp_keepalives_count = 3")
            got = conn.execute(sa.select(sa.func.pg_try_advisory_lock(self.key))).scalar_one()
        except sa.exc.SQLAlchemyError as exc:
            log.warning("leader lock: PostgreSQL unreachable (%s)", exc.__class__.__name__)
            if conn is not None:
                conn.close()
            return False
        if not got:
            conn.close()
            return False
        self._conn = conn
        return True

    def held(self) -> bool:
        if self._conn is None:
            return False
        try:
            self._conn.exec_driver_sql("SELECT 1")
        except sa.exc.SQLAlchemyError:
            # The connection, and with it the lock, is gone: someone else may lead by now.
            self._drop()
            return False
        return True

    def release(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(sa.exc.SQLAlchemyError):
                self._conn.execute(sa.select(sa.func.pg_advisory_unlock(self.key)))
            self._drop()
        self.engine.dispose()

    def _drop(self) -> None:
        with contextlib.suppress(sa.exc.SQLAlchemyError):
            if self._conn is not None:
                self._conn.close()
        self._conn = None

    def describe(self) -> str:
        return f"PostgreSQL advisory lock {self.key}"


def lock_for(database_url: str, instance_path: str) -> LeaderLock:
    """The leader lock that fits the database."""
    url = sa.engine.make_url(database_url)
    if url.get_backend_name() == "postgresql":
        return PostgresLock(database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        database = Path(url.database)
        return FileLock(database.with_name(database.name + ".scheduler.lock"))
    return FileLock(Path(instance_path) / "scheduler.lock")
