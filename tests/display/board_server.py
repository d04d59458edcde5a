"""The app served in a process of its own, so a browser test can stop it like a real outage.

    python -m tests.display.board_server <database url> <clock ISO time> <port>

Serves HTTP and websockets (werkzeug threaded + simple-websocket) on 127.0.0.1:<port>
with the clock stopped at the given time, until killed. Killing the process closes every
socket at once, as a power cut or a crashed server would.
"""

from __future__ import annotations

import sys
import tempfile
from datetime import datetime
from pathlib import Path

from werkzeug.serving import make_server

from tests.conftest import _make_app


def main(database_url: str, clock_at: str, port: int) -> None:
    now = datetime.fromisoformat(clock_at)
    tmp = Path(tempfile.mkdtemp(prefix="board-server-"))
    app = _make_app(tmp, database_url, {"CLOCK": lambda: now, "WTF_CSRF_ENABLED": True})
    server = make_server("127.0.0.1", port, app, threaded=True)
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
