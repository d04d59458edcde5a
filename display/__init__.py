"""Live boards and every Socket.IO namespace: waiting-room boards, the citizen's phone
ticket and the counters' live queue counts."""

from __future__ import annotations

from flask import Flask
from flask_smorest import Api


def init_app(app: Flask, api: Api) -> None:
    from display import api as board_api
    from display import bridge, pages, sockets

    api.register_blueprint(board_api.blp)
    bridge.init_app(app)
    sockets.init_app(app)
    pages.init_app(app)
