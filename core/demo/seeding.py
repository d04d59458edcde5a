"""Seeding the demo city: services and counters on the imported centres, fields linked."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from core.demo.accounts import _seed_accounts
from core.demo.layout import (
    CITY_COMMUNE_SERVICE,
    CITY_SERVICES,
    COMMUNE_SERVICES,
    HUB_SERVICE,
    ServiceLayout,
    allocate,
    assign_fields,
    choose_hubs,
    counter_count,
    hub_counter_count,
    services_for,
)
from core.demo.report import DemoReport
from core.models import (
    Centre,
    Counter,
    CounterService,
    Field,
    Procedure,
    ProcedureLevel,
    Service,
    service_fields,
)

# --- seeding -------------------------------------------------------------------------


ServiceKey = tuple[str, str]  # (prefix, name): how the demo services are recognised
_LAYOUTS = (
    (COMMUNE_SERVICES, ProcedureLevel.COMMUNE),
    (CITY_SERVICES, ProcedureLevel.DEPARTMENT),
    ((CITY_COMMUNE_SERVICE,), ProcedureLevel.COMMUNE),
    ((HUB_SERVICE,), ProcedureLevel.DEPARTMENT),
)


@dataclass(frozen=True)
class _Plan:
    """What every demo service takes and its intake minutes, from the catalogue as imported."""

    fields: dict[ServiceKey, set[int]]
    intake: dict[ServiceKey, int]
    procedures: int


def _weighted_intake(field_ids: set[int], counts: dict[int, int], intake: dict[int, int]) -> int:
    """A service's intake: its fields' intake weighted by their number of procedures."""
    total = sum(counts.get(f, 0) for f in field_ids)
    if not total:
        return 10
    return round(sum(intake[f] * counts.get(f, 0) for f in field_ids) / total)


def _plan(session: Session) -> _Plan:
    names, intake = {}, {}
    for fid, name, minutes in session.execute(select(Field.id, Field.name, Field.intake_minutes)):
        names[fid], intake[fid] = name, minutes
    counts: dict[ProcedureLevel, dict[int, int]] = defaultdict(dict)
    for fid, level, n in session.execute(
        select(Procedure.field_id, Procedure.level, func.count())
        .where(Procedure.active.is_(True))
        .group_by(Procedure.field_id, Procedure.level)
    ):
        counts[level][fid] = n
    plan = _Plan({}, {}, sum(sum(c.values()) for c in counts.values()))
    for layouts, level in _LAYOUTS:
        # Only fields with procedures at the service's level: the rest would never match.
        used = {fid: names[fid] for fid in counts[level]}
        assigned = assign_fields(layouts, used)
        for layout in layouts:
            key = (layout.prefix, layout.name)
            plan.fields[key] = assigned[layout.prefix]
            plan.intake[key] = _weighted_intake(assigned[layout.prefix], counts[level], intake)
    return plan


@dataclass
class _Batch:
    """Services and counters added to one centre, linked once the flush gives them ids."""

    services: list[Service]
    # (counter, index of its first service, whether it also serves the next service)
    counters: list[tuple[Counter, int, bool]]

    def link_rows(self) -> list[dict[str, int]]:
        rows = []
        for counter, index, backup in self.counters:
            rows.append(
                {"counter_id": counter.id, "service_id": self.services[index].id, "rank": 0}
            )
            if backup and len(self.services) > 1:
                nxt = self.services[(index + 1) % len(self.services)]
                rows.append({"counter_id": counter.id, "service_id": nxt.id, "rank": 1})
        return rows


def _add_services(
    session: Session,
    centre: Centre,
    layouts: tuple[tuple[ServiceLayout, ProcedureLevel], ...],
    *,
    counters: int,
    first_number: int,
    plan: _Plan,
) -> _Batch:
    """Services for `layouts` and `counters` counters shared out by the layouts' shares."""
    services = [
        Service(
            centre_id=centre.id,
            prefix=layout.prefix,
            name=layout.name,
            level=level,
            intake_minutes=plan.intake[(layout.prefix, layout.name)],
        )
        for layout, level in layouts
    ]
    batch = _Batch(services, [])
    number = first_number
    for index, size in enumerate(allocate(counters, [layout.share for layout, _ in layouts])):
        for k in range(size):
            counter = Counter(centre_id=centre.id, number=number, name=f"Quầy {number}")
            # The last of three or more counters of a service is cross-trained on the next one.
            batch.counters.append((counter, index, size >= 3 and k == size - 1))
            number += 1
    session.add_all(services)
    session.add_all(c for c, _, _ in batch.counters)
    return batch


def _lay_out_centres(
    session: Session, centres: list[Centre], plan: _Plan, report: DemoReport
) -> None:
    """Demo services and counters for centres without any; area teams at the hubs."""
    hubs = {c.id for c in choose_hubs(centres)}
    prefixes: dict[int, set[str]] = defaultdict(set)
    top_number: dict[int, int] = defaultdict(int)
    for centre_id, prefix in session.execute(select(Service.centre_id, Service.prefix)):
        prefixes[centre_id].add(prefix)
    for centre_id, top in session.execute(
        select(Counter.centre_id, func.max(Counter.number)).group_by(Counter.centre_id)
    ):
        top_number[centre_id] = top or 0
    batches = []
    for centre in centres:
        if not prefixes[centre.id]:
            size = counter_count(centre)
            layouts = services_for(centre, hub=False)
            batches.append(
                _add_services(session, centre, layouts, counters=size, first_number=1, plan=plan)
            )
            top_number[centre.id] = size
            report.centres_laid_out += 1
        if centre.id in hubs and HUB_SERVICE.prefix not in prefixes[centre.id]:
            batches.append(
                _add_services(
                    session,
                    centre,
                    ((HUB_SERVICE, ProcedureLevel.DEPARTMENT),),
                    counters=hub_counter_count(centre),
                    first_number=top_number[centre.id] + 1,
                    plan=plan,
                )
            )
            centre.is_hub = True
            report.hubs_added += 1
    session.flush()
    rows = [row for batch in batches for row in batch.link_rows()]
    if rows:
        session.execute(insert(CounterService), rows)
    report.services += sum(len(b.services) for b in batches)
    report.counters += sum(len(b.counters) for b in batches)


def _link_fields(session: Session, plan: _Plan, report: DemoReport) -> None:
    """Give every demo service the fields its layout assigns it, including newly imported ones."""
    have: dict[int, set[int]] = defaultdict(set)
    for service_id, field_id in session.execute(select(service_fields)):
        have[service_id].add(field_id)
    rows = []
    for service_id, prefix, name in session.execute(
        select(Service.id, Service.prefix, Service.name)
    ):
        planned = plan.fields.get((prefix, name))
        if planned is None:
            continue  # not a demo service: an operator's own service is theirs to configure
        for field_id in sorted(planned - have[service_id]):
            rows.append({"service_id": service_id, "field_id": field_id})
    if rows:
        session.execute(insert(service_fields), rows)
    report.field_links += len(rows)


def seed_demo(session: Session, *, now: datetime) -> DemoReport:
    """Build the demo city on the imported centres and catalogue; idempotent.

    Centres without services get the demo services and counters, 38 wards (one per group
    of neighbouring wards) an area team, and the showcase centres staff accounts and
    devices; an admin and a city operator account are added too. Existing services,
    accounts and devices are left as they are; services created by an earlier run gain the
    fields imported since. New passwords and tokens are returned once, in the report.
    """
    report = DemoReport()
    centres = list(
        session.scalars(select(Centre).where(Centre.active.is_(True)).order_by(Centre.code))
    )
    if not centres:
        report.notes.append("no centres: run `flask import centres` first")
        return report
    plan = _plan(session)
    if not plan.procedures:
        report.notes.append("no procedures: run `flask import procedures` first")
    _lay_out_centres(session, centres, plan, report)
    _link_fields(session, plan, report)
    _seed_accounts(session, centres, now, report)
    session.flush()
    return report
