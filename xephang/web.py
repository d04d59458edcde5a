"""Routes owned by the composition root: feature blueprints, vendor assets.

/health and /metrics live in xephang/observability.py.
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask, abort, send_from_directory

import booking
import counter
import dashboard
import display
import kiosk
import scheduler
from web.extensions import api
from xephang import openapi

ROOT = Path(__file__).resolve().parent.parent
NODE_MODULES = ROOT / "node_modules"
# Front-end packages served to browsers (from npm via package-lock.json, never a CDN).
VENDOR_FILES = {
    "axe-core/axe.min.js",
    "chart.js/dist/chart.umd.js",
    "chart.js/dist/chart.umd.js.map",
    "socket.io-client/dist/socket.io.min.js",
    "socket.io-client/dist/socket.io.min.js.map",
    "swagger-ui-dist/swagger-ui.css",
    "swagger-ui-dist/swagger-ui-bundle.js",
}


def init_app(app: Flask) -> None:
    api.init_app(app, spec_kwargs={"extra_plugins": [openapi.SchemaRules()]})
    booking.init_app(app, api)
    kiosk.init_app(app, api)
    counter.init_app(app, api)
    display.init_app(app, api)
    dashboard.init_app(app, api)
    scheduler.init_app(app)

    @app.get("/vendor/<path:name>")
    def vendor(name: str):
        if name not in VENDOR_FILES:
            abort(404)
        return send_from_directory(NODE_MODULES, name, max_age=86400)
