"""Erlang C (M/M/N) queueing: chance of waiting, waits, service level, officers needed.

Plain functions on plain numbers. `load` is the offered traffic A = λ × mean service time
in Erlangs; `service` is the mean service time and every wait is returned in its unit
(minutes throughout xephang). Factorials overflow long before a city centre's load does,
so Erlang B is computed with its recursion B(0) = 1, B(n) = A·B(n−1) / (n + A·B(n−1)),
which stays in [0, 1] for any load, and Erlang C is derived from it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


def erlang_b(agents: int, load: float) -> float:
    """Blocking probability of `agents` servers offered `load` Erlangs (no queue)."""
    if agents < 0 or load < 0:
        raise ValueError("agents and load must not be negative")
    blocking = 1.0
    for n in range(1, agents + 1):
        blocking = load * blocking / (n + load * blocking)
    return blocking


def _c_from_b(agents: int, load: float, blocking: float) -> float:
    if load <= 0:
        return 0.0
    if agents <= load:
        return 1.0
    return agents * blocking / (agents - load * (1.0 - blocking))


def erlang_c(agents: int, load: float) -> float:
    """Probability that an arrival has to wait; 1.0 when the queue is unstable (N ≤ A)."""
    return _c_from_b(agents, load, erlang_b(agents, load))


def expected_wait(agents: int, load: float, service: float) -> float:
    """Mean wait in queue over all arrivals (ASA); infinite when N ≤ A."""
    if load <= 0:
        return 0.0
    if agents <= load:
        return math.inf
    return erlang_c(agents, load) * service / (agents - load)


def _level(agents: int, load: float, service: float, target: float, c: float) -> float:
    if load <= 0:
        return 1.0
    if agents <= load:
        return 0.0
    return 1.0 - c * math.exp(-(agents - load) * target / service)


def service_level(agents: int, load: float, service: float, target: float) -> float:
    """P(wait ≤ target): the share of arrivals called within `target`."""
    return _level(agents, load, service, target, erlang_c(agents, load))


def wait_quantile(agents: int, load: float, service: float, q: float = 0.9) -> float:
    """The wait that a share `q` of arrivals does not exceed (q = 0.9: the p90 wait)."""
    if not 0 < q < 1:
        raise ValueError("q must lie strictly between 0 and 1")
    if load <= 0:
        return 0.0
    if agents <= load:
        return math.inf
    c = erlang_c(agents, load)
    if c <= 1.0 - q:
        return 0.0
    return service / (agents - load) * math.log(c / (1.0 - q))


def min_agents(load: float, service: float, target: float, level: float) -> int:
    """Fewest agents calling a share `level` of arrivals within `target` (0 for no load).

    Walks N upwards from the first stable count, carrying Erlang B along, so the search
    costs O(N) however large the load.
    """
    if not 0 < level < 1:
        raise ValueError("level must lie strictly between 0 and 1")
    if load <= 0:
        return 0
    blocking = 1.0
    n = 0
    while True:
        n += 1
        blocking = load * blocking / (n + load * blocking)
        if n > load:
            c = _c_from_b(n, load, blocking)
            if _level(n, load, service, target, c) >= level:
                return n


@dataclass(frozen=True)
class Target:
    """A service-level target: a share `level` of arrivals called within `minutes`."""

    level: float = 0.8
    minutes: float = 15.0
