"""Routes owned by the composition root: feature blueprints, vendor assets, health."""

from __future__ import annotations

from pathlib import Path

from flask import Flask, abort, jsonify, send_from_directory
from sqlalchemy import text

import booking
import counter
import kiosk
from core.extensions import api, db

ROOT = Path(__file__).resolve().parent.parent
NODE_MODULES = ROOT / "node_modules"
# Front-end packages served to browsers (from npm via package-lock.json, never a CDN).
VENDOR_FILES = {
    "axe-core/axe.min.js",
    "socket.io-client/dist/socket.io.min.js",
    "socket.io-client/dist/socket.io.min.js.map",
    "swagger-ui-dist/swagger-ui.css",
    "swagger-ui-dist/swagger-ui-bundle.js",
}


def init_app(app: Flask) -> None:
    api.init_app(app)
    booking.init_app(app, api)
    kiosk.init_app(app, api)
    counter.init_app(app, api)

    @app.get("/vendor/<path:name>")
    def vendor(name: str):
        if name not in VENDOR_FILES:
            abort(404)
        return send_from_directory(NODE_MODULES, name, max_age=86400)

    @app.get("/health")
    def health():
        try:
            db.session.execute(text("SELECT 1"))
            ok = True
        except Exception:
            ok = False
        finally:
            db.session.rollback()
        return jsonify(status="ok" if ok else "degraded", database=ok), (200 if ok else 503)
