"""The yardstick for bench/fanout.py: a bare Flask-SocketIO broadcast, nothing of xephang.

Same shape as the product's boards, so the two are measured the same way: clients connect
to namespace `/board?centre=<code>` (websocket transport), join that centre's room and get
a small `board` snapshot; `POST /emit/<centre>` broadcasts one `ticket_called` to the room
and answers. Threading mode (simple-websocket) under gunicorn gthread, like the product;
with XEPHANG_BENCH_REDIS_URL set, several instances share a Redis message queue (on the
channel XEPHANG_BENCH_CHANNEL: Redis pub/sub channels ignore database numbers).

Served as `gunicorn -k gthread -w 1 --threads N bench.bare_socketio:app`.
"""

from __future__ import annotations

import os
import time

from flask import Flask, jsonify, request
from flask_socketio import SocketIO, emit, join_room

app = Flask(__name__)
socketio = SocketIO(
    app,
    async_mode="threading",
    message_queue=os.environ.get("XEPHANG_BENCH_REDIS_URL") or None,
    channel=os.environ.get("XEPHANG_BENCH_CHANNEL", "xephang-bench"),
    cors_allowed_origins="*",
)


@socketio.on("connect", namespace="/board")
def _connect(auth=None):
    centre = request.args.get("centre", "")
    join_room(f"centre:{centre}")
    emit("board", {"centre": centre, "calls": [], "services": []})


@app.post("/emit/<centre>")
def emit_call(centre: str):
    body = request.get_json(silent=True) or {}
    socketio.emit(
        "ticket_called",
        {
            "label": body.get("label", "A001"),
            "counter": 1,
            "service": "A",
            "called_at": time.time(),
            "recall": False,
            "sent_at": time.time(),
        },
        namespace="/board",
        to=f"centre:{centre}",
    )
    return jsonify(ok=True)


@app.get("/health")
def health():
    return jsonify(status="ok")
