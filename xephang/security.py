"""What every request and response gets, whatever the feature: the client's real address
behind the proxy, the trusted hosts, and the security headers.

- **Client address.** Behind nginx every request arrives from nginx. werkzeug's ProxyFix
  takes the client from `X-Forwarded-For`, counting `PROXY_HOPS` entries from the right —
  the ones our own proxies appended — so a client who sends the header itself only adds
  entries to the left, which are never read. Rate limits, logs (gunicorn's access log reads
  the same environ) and the `/metrics` allow-list all see that address. `0` (the demo, no
  proxy) ignores the header.
- **Hosts.** `TRUSTED_HOSTS` is Flask's own setting: another Host header answers 400.
  Absolute links never come from the Host anyway (`web.links`).
- **Headers** by flask-talisman: a Content-Security-Policy that allows only the site's own
  files (every page's scripts and styles are files; no inline code), `frame-ancestors
  'none'`, `nosniff`, a same-origin Referrer-Policy (Flask-WTF's https CSRF check needs the
  Referer of our own forms), HSTS on https. Violations are reported to `/csp-report` and
  logged.
- **401** answers say how to authenticate (`WWW-Authenticate: Bearer`).
- **Caching.** A response that says nothing of caching is `no-store`: pages and answers
  carry names, phones and tickets, and a shared phone or a proxy must not keep them.
  Static files and the views that choose their own caching keep theirs.
"""

from __future__ import annotations

import json
import logging

from flask import Flask, Response, request
from flask_talisman import Talisman
from markupsafe import escape
from werkzeug.exceptions import SecurityError
from werkzeug.middleware.proxy_fix import ProxyFix

from web.extensions import csrf, limiter
from web.messages import message
from web.problems import problem

log = logging.getLogger(__name__)

CSP_REPORT_PATH = "/csp-report"
CSP = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    # data: for the small images Swagger UI's stylesheet embeds.
    "img-src": "'self' data:",
    "font-src": "'self'",
    # 'self' covers the same-origin websocket of Socket.IO (ws:/wss:) in CSP level 3.
    "connect-src": "'self'",
    "media-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'none'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}
# Browser location (nearest centre) and the kiosk's optional camera scanner, nothing else.
PERMISSIONS_POLICY = {
    "geolocation": "(self)",
    "camera": "(self)",
    "microphone": "()",
    "payment": "()",
    "usb": "()",
}
HSTS_SECONDS = 365 * 24 * 3600
# What a violation report may tell the log: short, and never the page's query string.
_REPORT_FIELDS = ("violated-directive", "effective-directive", "blocked-uri", "source-file")
_REPORT_MAX_BYTES = 16 * 1024


class _Talisman(Talisman):
    """Talisman, but a view that chose its own Referrer-Policy keeps it (the live ticket
    page sends none at all: its address is the ticket's only key)."""

    def _set_referrer_policy_headers(self, headers) -> None:  # type: ignore[no-untyped-def]
        headers.setdefault("Referrer-Policy", self.referrer_policy)


talisman = _Talisman()


def init_app(app: Flask) -> None:
    talisman.init_app(
        app,
        force_https=False,  # TLS ends at nginx; it redirects http itself when it has a certificate
        strict_transport_security=True,
        strict_transport_security_max_age=HSTS_SECONDS,
        strict_transport_security_include_subdomains=False,
        content_security_policy=CSP,
        content_security_policy_report_uri=CSP_REPORT_PATH,
        frame_options="DENY",
        referrer_policy="same-origin",
        permissions_policy=PERMISSIONS_POLICY,
        session_cookie_secure=app.config["COOKIE_SECURE"],
        session_cookie_http_only=True,
        x_xss_protection=False,  # obsolete; the CSP does its job
    )
    app.after_request(_no_store_unless_told)
    app.register_error_handler(SecurityError, _untrusted_host)

    @app.post(CSP_REPORT_PATH)
    @csrf.exempt
    @limiter.limit("60 per minute")
    def csp_report():
        """A browser's report of something the policy blocked: logged for the operators."""
        _log_report(request.get_data(cache=False)[:_REPORT_MAX_BYTES])
        return Response(status=204)


def trust_proxies(app: Flask) -> None:
    """Read the client address from the proxies' header; call last, so ProxyFix wraps every
    other middleware (Socket.IO's included)."""
    hops = app.config["PROXY_HOPS"]
    if hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]


def _untrusted_host(err: SecurityError) -> Response:
    """400 for a Host outside TRUSTED_HOSTS. Flask builds no URL adapter for such a request,
    so the usual error page (its links made by url_for) cannot be rendered: a bare one."""
    if request.path.startswith("/api/"):
        return problem(400, "bad_request")
    text = escape(message("bad_request"))
    page = f'<!doctype html><html lang="vi"><meta charset="utf-8"><title>400</title><p>{text}</p>'
    return Response(page, status=400, mimetype="text/html")


def _no_store_unless_told(response: Response) -> Response:
    if "Cache-Control" not in response.headers:
        response.headers["Cache-Control"] = "no-store"
    if response.status_code == 401 and "WWW-Authenticate" not in response.headers:
        # RFC 9110: a 401 says how to authenticate; the API takes bearer tokens.
        response.headers["WWW-Authenticate"] = 'Bearer realm="xephang"'
    return response


def _log_report(raw: bytes) -> None:
    try:
        report = json.loads(raw).get("csp-report", {})
    except (ValueError, AttributeError):
        return
    if not isinstance(report, dict):
        return
    page = str(report.get("document-uri", "")).split("?", 1)[0]
    facts = {k: str(report.get(k, ""))[:200] for k in _REPORT_FIELDS if report.get(k)}
    log.warning("content security policy violation on %r: %r", page[:200], facts)
