"""Log lines that a request cannot forge: control characters in messages are escaped.

A path such as `/t/x%00%0A2026-01-01 ERROR forged` reaches `log.warning("... %s",
request.path)` as text with a real newline in it: written as is, it adds a line of the
attacker's choosing to the error log (and ESC sequences rewrite a terminal). Escaping is done
where every record's message is made (`LogRecord.getMessage`, through the record factory),
so every logger and handler — ours, the libraries', gunicorn's, and any added later — gets
it without each call site remembering. Only the message is escaped: a traceback's own lines
(`exc_info`, `stack_info`) are formatted apart and keep their newlines.
"""

from __future__ import annotations

import logging
import re
from typing import Any

# Unicode Cc (C0, DEL, C1) and the line and paragraph separators some viewers break on.
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# Werkzeug's development server colours its own request lines (`make run`); those colour
# codes, and only those, are kept on its records. The request line inside is escaped.
_SGR = re.compile(r"\x1b\[[0-9;]*m")


def _escape_char(match: re.Match[str]) -> str:
    ch = match.group()
    named = _NAMED.get(ch)
    if named is not None:
        return named
    code = ord(ch)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def escape(text: str) -> str:
    """`text` with every control character written as a visible escape (\\n, \\x00 …)."""
    return _UNSAFE.sub(_escape_char, text)


def _escape_keeping_colours(text: str) -> str:
    out, last = [], 0
    for match in _SGR.finditer(text):
        out.append(escape(text[last : match.start()]))
        out.append(match.group())
        last = match.end()
    out.append(escape(text[last:]))
    return "".join(out)


class SafeLogRecord(logging.LogRecord):
    """A record whose message (format string and arguments, once merged) is one line."""

    def getMessage(self) -> str:
        message = super().getMessage()
        if not _UNSAFE.search(message):
            return message
        if self.name == "werkzeug":
            return _escape_keeping_colours(message)
        return escape(message)


def _safe_factory(base: Any) -> Any:
    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = base(*args, **kwargs)
        if not isinstance(record, SafeLogRecord):
            record.__class__ = SafeLogRecord
        return record

    factory.xephang_safe = True  # type: ignore[attr-defined]
    return factory


def install() -> None:
    """Make every record of this process escape its message; a second call changes nothing."""
    current = logging.getLogRecordFactory()
    if getattr(current, "xephang_safe", False):
        return
    logging.setLogRecordFactory(_safe_factory(current))
