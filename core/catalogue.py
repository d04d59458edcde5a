"""Procedure search over the whole catalogue, with or without diacritics.

The catalogue is small (a few thousand rows) and read-mostly, so each process keeps a
folded in-memory index and ranks in Python: well under a millisecond per query, and no
dependence on database-specific full-text search.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.models import Field, Procedure, ProcedureLevel
from core.text import fold

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


def _score(entry: ProcedureEntry, query: str, terms: list[str]) -> float:
    """Relevance of one procedure to a folded query; 0 means no match."""
    if entry.code == query:
        return 10_000.0
    if query and entry.code.startswith(query):
        return 5_000.0 - len(entry.code)
    score = 0.0
    for term in terms:
        if any(word.startswith(term) for word in entry.folded_words):
            score += 100.0
        elif term in entry.folded_field:
            score += 40.0
        else:
            return 0.0
    if query in entry.folded_name:
        score += 200.0 if entry.folded_name.startswith(query) else 120.0
    # Shorter names are the general procedure rather than a special case of it.
    return score - len(entry.folded_name) / 50.0


class CatalogueIndex:
    """A process-wide snapshot of active procedures, rebuilt when stale or invalidated."""

    def __init__(self) -> None:
        self._entries: list[ProcedureEntry] = []
        self._by_code: dict[str, ProcedureEntry] = {}
        self._built_at = 0.0
        self._lock = threading.Lock()

    def invalidate(self) -> None:
        self._built_at = 0.0

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
            self._entries = entries
            self._by_code = {e.code: e for e in entries}
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
        for entry in pool:
            s = _score(entry, raw, terms) if raw[:1].isdigit() else _score(entry, query, terms)
            if s > 0:
                scored.append((-s, entry.code, entry))
        scored.sort(key=lambda t: (t[0], t[1]))
        return SearchPage([t[2] for t in scored[offset : offset + limit]], len(scored))


index = CatalogueIndex()
