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
