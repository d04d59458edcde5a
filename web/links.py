"""Absolute links to the public site, built on `BASE_URL` and never on the request's Host.

A Host header is whatever the client sent: links built from it would let anyone make the
app print QR codes, calendar entries and messages that lead elsewhere, and behind a proxy
they would carry the wrong port. Every link that leaves the site (a QR code, an `.ics`
file, a message, an API answer's own address) comes from here, inside a request or not.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import current_app


def public_url(endpoint: str, /, **values: Any) -> str:
    """The absolute address of `endpoint` on the public site (`BASE_URL`)."""
    base = urlsplit(current_app.config["BASE_URL"])
    adapter = current_app.url_map.bind(
        base.netloc, script_name=base.path or "/", url_scheme=base.scheme
    )
    return adapter.build(endpoint, values, force_external=True)
