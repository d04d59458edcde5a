"""The request's unit of work: `core.common.db.transaction` on Flask-SQLAlchemy's session."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.orm import Session

from core.common import db as core_db
from web.extensions import db


@contextmanager
def transaction(session: Session | None = None, *, single_write: bool = False) -> Iterator[Session]:
    """A write unit of work on `session` (the request's by default): commits on success,
    rolls back on error, then publishes its events (see core.common.db.transaction)."""
    with core_db.transaction(session or db.session(), single_write=single_write) as active:
        yield active
