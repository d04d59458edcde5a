"""Procedure search over the whole catalogue, with or without diacritics.

The catalogue is small (a few thousand rows) and read-mostly, so each process keeps a
folded in-memory index and ranks in Python: well under a millisecond per query, and no
dependence on database-specific full-text search.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.common.text import fold
from core.models import Field, Procedure, ProcedureLevel

_REFRESH_SECONDS = 300.0


@dataclass(frozen=True, slots=True)
class ProcedureEntry:
    id: int
    code: str
    name: str
    field: str
    field_id: int
    level: str
    location_independent: bool
    folded_name: str
    folded_words: tuple[str, ...]
    folded_field: str


@dataclass(frozen=True)
class SearchPage:
    items: list[ProcedureEntry]
    total: int


def _rate(entry: ProcedureEntry, phrase: str, terms: int, word_hits: int) -> float:
    """Relevance of a matching procedure: terms that start a name word count more than terms
    found only in the field's name; the whole query as a phrase in the name adds more (most
    at the start); shorter names are the general procedure rather than a special case of it.
    """
    score = 100.0 * word_hits + 40.0 * (terms - word_hits)
    if phrase in entry.folded_name:
        score += 200.0 if entry.folded_name.startswith(phrase) else 120.0
    return score - len(entry.folded_name) / 50.0


class CatalogueIndex:
    """A process-wide snapshot of active procedures, rebuilt when stale or invalidated."""

    def __init__(self) -> None:
        self._entries: list[ProcedureEntry] = []
        self._by_code: dict[str, ProcedureEntry] = {}
        self._prefixes: dict[str, set[int]] = {}
        self._by_field: dict[str, set[int]] = {}
        self._built_at = -math.inf
        self._lock = threading.Lock()

    def invalidate(self) -> None:
        # Not 0.0: time.monotonic() counts from the host's boot, so for the first
        # _REFRESH_SECONDS after a boot a snapshot "built at 0" would still look fresh.
        self._built_at = -math.inf

    def _ensure(self, session: Session) -> None:
        if time.monotonic() - self._built_at < _REFRESH_SECONDS and self._entries:
            return
        with self._lock:
            if time.monotonic() - self._built_at < _REFRESH_SECONDS and self._entries:
                return
            rows = session.execute(
                select(
                    Procedure.id,
                    Procedure.code,
                    Procedure.name,
                    Field.name,
                    Field.id,
                    Procedure.level,
                    Procedure.location_independent,
                )
                .join(Field, Field.id == Procedure.field_id)
                .where(Procedure.active.is_(True))
                .order_by(Procedure.code)
            ).all()
            entries = [
                ProcedureEntry(
                    id=r[0],
                    code=r[1],
                    name=r[2],
                    field=r[3],
                    field_id=r[4],
                    level=r[5].value,
                    location_independent=r[6],
                    folded_name=fold(r[2]),
                    folded_words=tuple(fold(r[2]).split()),
                    folded_field=fold(r[3]),
                )
                for r in rows
            ]
            # Every prefix of every name word → the entries having it: a query term then
            # finds its candidates by one lookup instead of scanning the catalogue.
            prefixes: dict[str, set[int]] = {}
            by_field: dict[str, set[int]] = {}
            for position, entry in enumerate(entries):
                for word in entry.folded_words:
                    for end in range(1, len(word) + 1):
                        prefixes.setdefault(word[:end], set()).add(position)
                by_field.setdefault(entry.folded_field, set()).add(position)
            self._entries = entries
            self._by_code = {e.code: e for e in entries}
            self._prefixes = prefixes
            self._by_field = by_field
            self._built_at = time.monotonic()

    def get(self, session: Session, code: str) -> ProcedureEntry | None:
        self._ensure(session)
        return self._by_code.get(code.strip())

    def search(
        self,
        session: Session,
        q: str = "",
        *,
        field_id: int | None = None,
        level: ProcedureLevel | None = None,
        offset: int = 0,
        limit: int = 20,
    ) -> SearchPage:
        """Procedures matching `q` (code, then name words; diacritics optional), best first."""
        self._ensure(session)
        query = fold(q)
        terms = query.split()
        pool = self._entries
        if field_id is not None:
            pool = [e for e in pool if e.field_id == field_id]
        if level is not None:
            pool = [e for e in pool if e.level == level.value]
        if not terms:
            return SearchPage(pool[offset : offset + limit], len(pool))
        # Codes fold "1.001234" to "1 001234"; compare codes on the raw stripped query.
        raw = q.strip()
        scored = []
        by_code: set[str] = set()
        phrase = query
        if raw[:1].isdigit():
            # A code, whole or its beginning, ranks above any name match.
            phrase = raw
            for entry in pool:
                if entry.code.startswith(raw):
                    by_code.add(entry.code)
                    s = 10_000.0 if entry.code == raw else 5_000.0 - len(entry.code)
                    scored.append((-s, entry.code, entry))
        for entry, word_hits in self._candidates(pool, terms):
            if entry.code in by_code:
                continue
            s = _rate(entry, phrase, len(terms), word_hits)
            scored.append((-s, entry.code, entry))
        scored.sort(key=lambda t: (t[0], t[1]))
        return SearchPage([t[2] for t in scored[offset : offset + limit]], len(scored))

    def _candidates(
        self, pool: list[ProcedureEntry], terms: list[str]
    ) -> list[tuple[ProcedureEntry, int]]:
        """Entries where every term starts a name word or occurs in the field's name (the
        only ones that can match), each with how many terms started a name word."""
        found: set[int] | None = None
        word_sets = []
        for term in terms:
            words = self._prefixes.get(term, set())
            hits = set(words)
            for field_name, ids in self._by_field.items():
                if term in field_name:
                    hits |= ids
            found = hits if found is None else found & hits
            if not found:
                return []
            word_sets.append(words)
        allowed = {id(e) for e in pool} if len(pool) != len(self._entries) else None
        out = []
        for i in sorted(found or ()):
            entry = self._entries[i]
            if allowed is None or id(entry) in allowed:
                out.append((entry, sum(1 for words in word_sets if i in words)))
        return out


index = CatalogueIndex()
