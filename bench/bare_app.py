"""The yardsticks served beside xephang in a bench run: nothing of xephang in them.

- `POST /bare`: parse the same JSON body a booking sends, answer a small JSON object. The
  stack's ceiling (Flask + gunicorn + the client) for one request.
- `POST /tx`: the same, plus the smallest booking-like transaction through SQLAlchemy Core
  on PostgreSQL (conditional UPDATE of one counter row … RETURNING, one INSERT, COMMIT), as
  in ../shared/MEASURED.md: the floor for any endpoint that writes.

Served as `gunicorn bench.bare_app:app`; the database comes from XEPHANG_BENCH_TX_URL.
"""

from __future__ import annotations

import os
import random

import sqlalchemy as sa
from flask import Flask, jsonify, request

COUNTER_ROWS = 64

app = Flask(__name__)
_url = os.environ.get("XEPHANG_BENCH_TX_URL", "")
# gunicorn imports the app in each worker after fork (no --preload): one engine per
# worker, its pool covering that worker's threads.
_engine = (
    sa.create_engine(_url, pool_size=int(os.environ.get("XEPHANG_SQL_POOL_SIZE", "20")))
    if _url
    else None
)
_metadata = sa.MetaData()
counters = sa.Table(
    "bench_counters",
    _metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("value", sa.Integer, nullable=False),
)
events = sa.Table(
    "bench_events",
    _metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("counter_id", sa.Integer, nullable=False),
    sa.Column("value", sa.Integer, nullable=False),
    sa.Column("payload", sa.String(200), nullable=False),
)


def create_tables(url: str) -> None:
    """Lay out the /tx tables with one row per counter (called by the bench, not the server)."""
    engine = sa.create_engine(url)
    _metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(counters.insert(), [{"id": i, "value": 0} for i in range(COUNTER_ROWS)])
    engine.dispose()


@app.get("/health")
def health():
    return jsonify(status="ok")


@app.post("/bare")
def bare():
    body = request.get_json()
    return jsonify(ok=True, slot_id=body.get("slot_id")), 201


@app.post("/tx")
def tx():
    body = request.get_json()
    assert _engine is not None, "XEPHANG_BENCH_TX_URL is not set"
    counter_id = random.randrange(COUNTER_ROWS)
    with _engine.begin() as conn:
        value = conn.execute(
            counters.update()
            .where(counters.c.id == counter_id, counters.c.value < 2**30)
            .values(value=counters.c.value + 1)
            .returning(counters.c.value)
        ).scalar_one()
        conn.execute(
            events.insert().values(
                counter_id=counter_id, value=value, payload=str(body.get("full_name"))[:200]
            )
        )
    return jsonify(ok=True, value=value), 201
