"""Finding centres by name, including the names of the wards merged into them in 2025."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.common.text import fold
from core.models import Centre


def search_centres(session: Session, q: str, *, limit: int = 20) -> list[Centre]:
    """Active centres whose name or former ward/district names contain every word of `q`."""
    terms = fold(q).split()
    query = select(Centre).where(Centre.active.is_(True)).order_by(Centre.name)
    for term in terms:
        query = query.where(Centre.search_text.contains(term, autoescape=True))
    centres = list(session.scalars(query.limit(500)))
    folded = fold(q)
    # Current names first: someone typing "Ben Thanh" means the ward named so today.
    centres.sort(key=lambda c: (folded not in fold(c.name), c.name))
    return centres[:limit]


def get_centre(session: Session, code: str) -> Centre | None:
    return session.scalars(select(Centre).where(Centre.code == code)).one_or_none()
