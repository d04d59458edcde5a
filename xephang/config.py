"""Configuration from the environment: every setting is `XEPHANG_<NAME>`."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

DEFAULTS: dict[str, Any] = {
    # name: default (type is taken from the default)
    "SECRET_KEY": "",
    "CITIZEN_ID_KEY": "",
    "DATABASE_URL": "",
    "REDIS_URL": "",
    "BASE_URL": "http://127.0.0.1:5000",
    # Behind a reverse proxy: how many proxies in front of the app append to X-Forwarded-For.
    "PROXY_HOPS": 0,
    "TRUSTED_HOSTS": "",
    "COOKIE_SECURE": False,
    "CITY_NAME": "Thành phố Hồ Chí Minh",
    "DEFAULT_LOCALE": "vi",
    "SLOT_WINDOW_MINUTES": 30,
    "WALK_IN_SHARE": 0.4,
    "BOOKING_DAYS": 14,
    "MAX_ACTIVE_APPOINTMENTS": 3,
    "MAX_PER_PROCEDURE_DAY": 1,
    "BOOKING_MIN_LEAD_MINUTES": 0,
    "RATE_LIMIT_BOOKING": "20 per minute;200 per hour",
    "RATE_LIMIT_DEFAULT": "600 per minute",
    "RATE_LIMITS_ENABLED": True,
    "SQL_POOL_SIZE": 20,
    # PostgreSQL: a pooled connection idle this long is pinged before use (see core.common.db).
    "SQL_PING_AFTER_IDLE": 5.0,
    # Production shape (deploy/): gunicorn instance and operator endpoints.
    "BIND": "127.0.0.1:8000",
    "THREADS": 200,
    "METRICS_ALLOW": "127.0.0.0/8,::1/128,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7",
    # Largest request body read (API JSON, page forms): 413 beyond it (xephang/guards.py).
    "MAX_BODY_BYTES": 64 * 1024,
    # Days after an appointment or ticket before names, phones and e-mails are erased.
    "PERSONAL_DATA_RETENTION_DAYS": 30,
    # Centre floor.
    "GRACE_MINUTES": 15,
    "EARLY_CHECKIN_MINUTES": 60,
    "LATE_LIMIT_MINUTES": 90,
    "MAX_CALLS": 3,
    "PRIORITY_INTERLEAVE": 2,
    "REMOTE_TICKETS_PER_DAY": 1,
    "KIOSK_IDLE_SECONDS": 30,
    "KIOSK_AUTO_PRINT": True,
    "RATE_LIMIT_KIOSK_CHECKIN": "30 per minute",
    "RATE_LIMIT_LOGIN": "10 per minute;60 per hour",
    # Staff API tokens (core/staff_tokens.py): days valid by default, and at most.
    "STAFF_TOKEN_DAYS": 30,
    "STAFF_TOKEN_MAX_DAYS": 365,
    # Balancing across wards (core/balancing.py).
    "BALANCING_TARGET_LEVEL": 0.8,
    "BALANCING_TARGET_MINUTES": 15,
    "BALANCING_OVERLOAD_THRESHOLD": 0.9,
    "BALANCING_HISTORY_WEEKS": 8,
    "BALANCING_MIN_HISTORY_DAYS": 3,
    "BALANCING_WALK_INS_PER_COUNTER": 15.0,
    "BALANCING_MAX_DISPATCH_KM": 15.0,
    # Live boards (display/).
    "BOARD_RECENT_CALLS": 10,
    "BOARD_DEBOUNCE_MS": 300,
    # Display boards: a folder of recorded announcement clips replacing the defaults.
    "VOICE_DIR": "",
    # Scheduler (scheduler/): embedded thread or its own `flask scheduler run` process.
    "SCHEDULER": "embedded",
    "SCHEDULER_POLL_SECONDS": 15.0,
    "SLOTS_ROLLING_MINUTES": 5,
    "SLOTS_ROLLING_BATCH": 24,
    "NO_SHOW_CALLED_TIMEOUT_MINUTES": 5,
    "NO_SHOW_CLOSING_MINUTES": 60,
    "NO_SHOW_LIMIT": 3,
    "NO_SHOW_WINDOW_DAYS": 30,
    "NO_SHOW_SUSPENSION_DAYS": 30,
    # Reminders (core/notifications.py).
    "REMINDER_DAY_BEFORE_AT": "18:00",
    "REMINDER_HOUR_BEFORE_MINUTES": 60,
    "NOTIFY_CHANNELS": "log",
    "NOTIFY_MAX_ATTEMPTS": 5,
    "NOTIFY_RETRY_MINUTES": 1.0,
    "NOTIFY_TIMEOUT_SECONDS": 5.0,
    "NOTIFY_WEBHOOK_URL": "",
    "NOTIFY_WEBHOOK_TOKEN": "",
    "SMTP_HOST": "",
    "SMTP_PORT": 25,
    "SMTP_FROM": "xephang@localhost",
    "SMTP_USERNAME": "",
    "SMTP_PASSWORD": "",
    "SMTP_STARTTLS": False,
}


def _coerce(raw: str, default: Any) -> Any:
    if isinstance(default, bool):
        return raw.strip().lower() in {"1", "true", "yes", "on"}
    if isinstance(default, int):
        return int(raw)
    if isinstance(default, float):
        return float(raw)
    return raw


def _instance_secret(instance: Path, name: str) -> str:
    """A random secret kept in the instance folder, so a dev install needs no setup."""
    path = instance / name
    if not path.exists():
        instance.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    return path.read_text().strip()


def _base_url(value: str) -> str:
    """The public address, checked at start-up: links in QR codes and messages are built on
    it, so a typo must stop the app rather than print unusable tickets."""
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ValueError(f"XEPHANG_BASE_URL must be an http(s) address, got {value!r}")
    return value.strip().rstrip("/")


def load(instance_path: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Flask config from defaults, then `XEPHANG_*` environment variables, then overrides."""
    cfg: dict[str, Any] = {}
    for name, default in DEFAULTS.items():
        raw = os.environ.get(f"XEPHANG_{name}")
        cfg[name] = _coerce(raw, default) if raw is not None else default
    cfg.update(overrides or {})
    instance = Path(instance_path)
    if not cfg["SECRET_KEY"]:
        cfg["SECRET_KEY"] = _instance_secret(instance, "secret_key")
    if not cfg["CITIZEN_ID_KEY"]:
        cfg["CITIZEN_ID_KEY"] = _instance_secret(instance, "citizen_id_key")
    if not cfg["DATABASE_URL"]:
        instance.mkdir(parents=True, exist_ok=True)
        cfg["DATABASE_URL"] = f"sqlite:///{instance / 'xephang.db'}"
    cfg["SQLALCHEMY_DATABASE_URI"] = cfg["DATABASE_URL"]
    if cfg["DATABASE_URL"].startswith("postgresql"):
        cfg.setdefault(
            "SQLALCHEMY_ENGINE_OPTIONS",
            {
                "pool_size": cfg["SQL_POOL_SIZE"],
                "max_overflow": 10,
                # Not pool_pre_ping, which costs every request a round trip: core.common.db pings
                # only connections idle for SQL_PING_AFTER_IDLE seconds.
                # A database host that silently drops packets must not hang /health or
                # requests: give up connecting after a few seconds.
                "connect_args": {"connect_timeout": 5},
            },
        )
    cfg["RATELIMIT_ENABLED"] = cfg["RATE_LIMITS_ENABLED"]
    # Without Redis, counters live in the process (web.ratelimits: no timer threads).
    cfg["RATELIMIT_STORAGE_URI"] = cfg["REDIS_URL"] or "sweptmemory://"
    # Redis down must not fail requests: count in memory until it returns.
    cfg["RATELIMIT_IN_MEMORY_FALLBACK_ENABLED"] = True
    cfg["RATELIMIT_SWALLOW_ERRORS"] = True
    if cfg["REDIS_URL"]:
        cfg["RATELIMIT_STORAGE_OPTIONS"] = {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}
    cfg["RATELIMIT_HEADERS_ENABLED"] = True
    cfg["BABEL_DEFAULT_LOCALE"] = cfg["DEFAULT_LOCALE"]
    cfg["BABEL_DEFAULT_TIMEZONE"] = "Asia/Ho_Chi_Minh"
    cfg["WTF_CSRF_TIME_LIMIT"] = None
    cfg["API_TITLE"] = "xephang API"
    cfg["API_VERSION"] = "v1"
    cfg["OPENAPI_VERSION"] = "3.0.3"
    cfg["OPENAPI_URL_PREFIX"] = "/api/v1"
    cfg["OPENAPI_JSON_PATH"] = "openapi.json"
    cfg["OPENAPI_REDOC_PATH"] = None
    cfg["OPENAPI_SWAGGER_UI_PATH"] = None
    cfg["SESSION_COOKIE_SAMESITE"] = "Lax"
    cfg["SESSION_COOKIE_HTTPONLY"] = True
    cfg["SESSION_COOKIE_SECURE"] = cfg["COOKIE_SECURE"]
    cfg["BASE_URL"] = _base_url(cfg["BASE_URL"])
    if cfg["PROXY_HOPS"] < 0:
        raise ValueError("XEPHANG_PROXY_HOPS must be 0 or more")
    hosts = [h.strip().lower() for h in cfg["TRUSTED_HOSTS"].split(",") if h.strip()]
    # Flask refuses a request whose Host is not listed (400); None lets every host through.
    cfg["TRUSTED_HOSTS"] = hosts or None
    cfg["JSON_SORT_KEYS"] = False
    return cfg
