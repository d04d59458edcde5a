"""Citizen booking: public pages and the public booking API."""

from __future__ import annotations

from flask import Flask
from flask_smorest import Api


def init_app(app: Flask, api: Api) -> None:
    from booking import api as booking_api
    from booking import pages, ticket_api

    app.register_blueprint(pages.bp)
    api.register_blueprint(booking_api.blp)
    api.register_blueprint(ticket_api.blp)
