"""A simulated city day driven through the real engine, on a clock faster than real time.

Demand is drawn once from a seed: per centre and line, walk-ins by the hour following the
walk-in forecast's daily shape, and citizens who book ahead into the real slots; a few
central centres draw 2–3× their share (location independence moves crowds there). The
day is a discrete-event simulation: the injected clock (`app.config["CLOCK"]`) jumps from
event to event, and every action is the core function an API handler calls, in its own
transaction as the handler runs it — booking, kiosk check-in, walk-in tickets, opening and
closing counters, call next, recall, start, complete. Only citizens are simulated: whether
and when they come, how patient they are, how long their business takes.

Unlike a domain operation the driver commits: it plays the edges. It acts on the session
it is given and knows nothing of scratch databases or processes: xephang/simulate.py builds
those and never hands it an operator's database.

The package: `demand` draws the citizens, `prepare` staffs the counters, books ahead and
accepts the dispatch plan, `day` plays the day and `results` reads back and audits it.
"""

from core.operations.simulation.day import DayRun, RunStats, SimClock
from core.operations.simulation.demand import Demand, DemandOptions, draw_demand
from core.operations.simulation.prepare import (
    BookingReport,
    PlanOutcome,
    book_ahead,
    plan_and_accept,
    staff_counters,
)
from core.operations.simulation.results import (
    Audit,
    CentreResult,
    TicketRow,
    audit,
    centre_results,
    summarise,
    ticket_rows,
)

__all__ = [
    "Audit",
    "BookingReport",
    "CentreResult",
    "DayRun",
    "Demand",
    "DemandOptions",
    "PlanOutcome",
    "RunStats",
    "SimClock",
    "TicketRow",
    "audit",
    "book_ahead",
    "centre_results",
    "draw_demand",
    "plan_and_accept",
    "staff_counters",
    "summarise",
    "ticket_rows",
]
