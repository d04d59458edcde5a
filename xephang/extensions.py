"""Binds the shared extension instances (defined in core) to one app."""

from __future__ import annotations

from pathlib import Path

from flask import Flask

from core.common.db import configure_engine
from display.message_queue import client_manager
from web.auth import load_staff
from web.extensions import csrf, db, limiter, login_manager, migrate, socketio

MIGRATIONS = str(Path(__file__).resolve().parent.parent / "migrations")


def init_app(app: Flask) -> None:
    db.init_app(app)
    with app.app_context():
        configure_engine(db.engine, ping_after_idle=app.config["SQL_PING_AFTER_IDLE"])
    migrate.init_app(app, db, directory=MIGRATIONS, render_as_batch=True)
    csrf.init_app(app)
    limiter.init_app(app)
    login_manager.init_app(app)
    login_manager.user_loader(load_staff)
    login_manager.login_view = "counter.login"
    # Always pass the client manager: SocketIO keeps options from an earlier init_app (tests
    # build many apps), and a stale Redis manager would otherwise leak into the next app.
    socketio.init_app(
        app,
        async_mode="threading",
        client_manager=client_manager(app.config["REDIS_URL"]),
        logger=False,
        engineio_logger=False,
    )
