"""Composition root: builds the Flask app from the domain core and the feature packages."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask

from xephang import config as config_module


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the app; `config` overrides settings read from `XEPHANG_*` environment variables."""
    from xephang import guards, logsafe

    # Before anything logs: no request can write a control character into a log line.
    logsafe.install()
    app = Flask(__name__, instance_relative_config=True)
    app.config.from_mapping(config_module.load(app.instance_path, config))
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # Before any blueprint adds a rule: every rule's parameters are built with these.
    guards.install_converters(app)

    from core.common import cache
    from xephang import (
        access_log,
        cli,
        errors,
        extensions,
        i18n,
        observability,
        openapi,
        revocation,
        security,
        web,
    )

    cache.clear_all()  # caches are per database URL: a new app may be on a fresh database

    # First of the request hooks: a refused request reaches no extension's hook either.
    guards.init_app(app)
    extensions.init_app(app)
    revocation.init_app(app)
    i18n.init_app(app)
    observability.init_app(app)
    web.init_app(app)
    openapi.init_app(app)
    # After web: flask-smorest's Api registers its own HTTPException handler; ours must win.
    errors.init_app(app)
    cli.init_app(app)
    security.init_app(app)
    access_log.init_app(app)
    security.trust_proxies(app)  # last: ProxyFix wraps every other middleware
    return app
