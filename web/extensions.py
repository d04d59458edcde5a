"""Extension instances shared by every package; `xephang` binds them to the app."""

from __future__ import annotations

from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_smorest import Api
from flask_socketio import SocketIO
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect

from core.models.base import Base
from web import ratelimits as ratelimit_storage  # noqa: F401 (registers sweptmemory:// with limits)

db = SQLAlchemy(model_class=Base)
migrate = Migrate()
csrf = CSRFProtect()
babel = Babel()
login_manager = LoginManager()
limiter = Limiter(key_func=get_remote_address)
# The OpenAPI layer: feature packages register their API blueprints on it.
api = Api()
# Socket.IO for live boards, phone tickets and counters (namespaces in display/); bound by
# xephang with the Redis message queue when XEPHANG_REDIS_URL is set.
socketio = SocketIO()
