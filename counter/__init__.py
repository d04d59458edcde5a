"""Counter workstation for officers: open a counter, call, serve, transfer; staff sign-in
on the pages and staff API tokens for scripts (`auth_api`)."""

from __future__ import annotations

from flask import Flask
from flask_smorest import Api


def init_app(app: Flask, api: Api) -> None:
    from counter import api as counter_api
    from counter import auth_api, pages

    app.register_blueprint(pages.bp)
    api.register_blueprint(counter_api.blp)
    api.register_blueprint(auth_api.blp)
