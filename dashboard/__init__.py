"""City operations for managers and operators: load, statistics and dispatch plans.

Only the JSON API for now; the pages come later.
"""

from __future__ import annotations

from flask import Flask
from flask_smorest import Api


def init_app(app: Flask, api: Api) -> None:
    from dashboard import api as dashboard_api

    api.register_blueprint(dashboard_api.blp)
