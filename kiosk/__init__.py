"""Kiosk at the centre: check-in of appointments, walk-in tickets, printed tickets."""

from __future__ import annotations

from flask import Flask
from flask_smorest import Api


def init_app(app: Flask, api: Api) -> None:
    from kiosk import api as kiosk_api
    from kiosk import pages

    app.register_blueprint(pages.bp)
    api.register_blueprint(kiosk_api.blp)
