"""Text folding so that "ho tich" finds "Hộ tịch"."""

from __future__ import annotations

import re
import unicodedata

_WORD = re.compile(r"[0-9a-z]+")


def fold(text: str) -> str:
    """Lower-case, strip Vietnamese diacritics (đ → d) and collapse punctuation to spaces."""
    decomposed = unicodedata.normalize("NFD", text.lower().replace("đ", "d").replace("Đ", "d"))
    stripped = "".join(ch for ch in decomposed if unicodedata.category(ch) != "Mn")
    return " ".join(_WORD.findall(stripped))


def words(text: str) -> list[str]:
    """The folded words of `text`."""
    return fold(text).split()


def nfc(text: str) -> str:
    """Normalise to NFC and trim: what we store for names typed by people."""
    return unicodedata.normalize("NFC", text).strip()


def is_name(text: str) -> bool:
    """A person's name as typed: no digit of any script, no control character or surrogate."""
    return not any(ch.isdigit() or unicodedata.category(ch) in _NOT_IN_NAMES for ch in text)


_NOT_IN_NAMES = frozenset({"Cc", "Cs"})


# Database ids are PostgreSQL `integer`: a larger one can only be unknown.
MAX_ID = 2**31 - 1
_ID = re.compile(r"[0-9]{1,10}")


def parse_id(raw: str | None, *, minimum: int = 1, maximum: int = MAX_ID) -> int | None:
    """A database id typed in a form or query string, else None.

    ASCII digits only: `str.isdigit()` also takes '²' and '٣', which `int()` refuses or reads,
    and thousands of digits, which `int()` refuses; a value beyond `maximum` (by default what
    PostgreSQL's `integer` holds) cannot be an id.
    """
    text = (raw or "").strip()
    if not _ID.fullmatch(text):
        return None
    value = int(text)
    return value if minimum <= value <= maximum else None


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def has_controls(text: str) -> bool:
    """Whether `text` holds a control character (NUL, newline, ESC, DEL, C1 …): no code,
    id or name does, and PostgreSQL refuses NUL in text."""
    return _CONTROL.search(text) is not None
