"""Locale choice: Vietnamese first; English by switch (pages) or Accept-Language (API)."""

from __future__ import annotations

from pathlib import Path

from flask import Flask, request
from flask_babel import get_locale

from web.extensions import babel

LOCALES = ("vi", "en")
TRANSLATIONS = str(Path(__file__).resolve().parent / "translations")


def select_locale() -> str:
    chosen = request.args.get("lang") or request.cookies.get("lang")
    if chosen in LOCALES:
        return chosen
    if request.path.startswith("/api/"):
        return request.accept_languages.best_match(LOCALES, default="vi") or "vi"
    return "vi"


def init_app(app: Flask) -> None:
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = TRANSLATIONS
    babel.init_app(app, locale_selector=select_locale)
    app.jinja_env.globals["current_locale"] = lambda: str(get_locale() or "vi")

    @app.after_request
    def _remember_locale(response):
        lang = request.args.get("lang")
        if lang in LOCALES and request.cookies.get("lang") != lang:
            response.set_cookie("lang", lang, max_age=365 * 86400, samesite="Lax")
        return response
