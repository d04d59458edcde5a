"""Command-line interface: `flask import …`, `flask seed demo`, `flask slots generate`."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    pass
