"""Domain events: gathered during a transaction, published only after it commits."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DomainEvent:
    name: str
    data: dict[str, Any] = field(default_factory=dict)


Subscriber = Callable[[DomainEvent], None]
_subscribers: dict[str, list[Subscriber]] = {}


def subscribe(name: str, fn: Subscriber) -> None:
    """Call `fn` with every committed event called `name` ("*" for all)."""
    _subscribers.setdefault(name, []).append(fn)


def clear_subscribers() -> None:
    _subscribers.clear()


def publish(events: list[DomainEvent]) -> None:
    """Deliver committed events; a failing subscriber is logged and never undoes the commit."""
    for event in events:
        for fn in _subscribers.get(event.name, []) + _subscribers.get("*", []):
            try:
                fn(event)
            except Exception:
                log.exception("subscriber %r failed on %s", fn, event.name)
