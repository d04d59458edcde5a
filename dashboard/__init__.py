"""City operations for managers and operators: load, statistics and dispatch plans, as a
JSON API (`api`) and as pages under /dashboard (`pages`)."""

from __future__ import annotations

from flask import Flask
from flask_smorest import Api


def init_app(app: Flask, api: Api) -> None:
    from dashboard import api as dashboard_api
    from dashboard import pages

    app.register_blueprint(pages.bp)
    api.register_blueprint(dashboard_api.blp)
