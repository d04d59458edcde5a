"""Small builders for test data: `make_centre()`, `make_procedure()`, `make_slot()` …"""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta

from core.extensions import db
from core.models import (
    DEFAULT_OPENING_HOURS,
    Centre,
    CentreKind,
    Counter,
    CounterService,
    Field,
    Procedure,
    ProcedureLevel,
    Service,
    Slot,
)
from core.text import fold
from core.timeutil import local_day

_seq = itertools.count(1)

# A valid CCCD: HCMC (079), born 1990 male.
CCCD = "079090001234"
PHONE = "0912345678"


def cccd(n: int) -> str:
    """The n-th distinct valid citizen ID."""
    return f"079090{n % 10**6:06d}"


def make_centre(
    code: str | None = None,
    name: str = "Phường Bến Thành",
    *,
    lat: float = 10.7725,
    lon: float = 106.6980,
    hub: bool = False,
    **kw,
) -> Centre:
    centre = Centre(
        code=code or f"{26700 + next(_seq)}",
        name=name,
        kind=kw.pop("kind", CentreKind.WARD),
        address=kw.pop("address", "1 Lê Lợi"),
        lat=lat,
        lon=lon,
        is_hub=hub,
        opening_hours=kw.pop("opening_hours", DEFAULT_OPENING_HOURS),
        search_text=fold(name),
        **kw,
    )
    db.session.add(centre)
    db.session.flush()
    return centre


def make_field(name: str = "Hộ tịch", intake: int = 10) -> Field:
    field = db.session.query(Field).filter_by(name=name).one_or_none()
    if field is None:
        field = Field(name=name, intake_minutes=intake)
        db.session.add(field)
        db.session.flush()
    return field


def make_procedure(
    code: str | None = None,
    name: str = "Đăng ký khai sinh",
    *,
    field: Field | None = None,
    level: ProcedureLevel = ProcedureLevel.COMMUNE,
) -> Procedure:
    field = field or make_field()
    proc = Procedure(
        code=code or f"1.{next(_seq):06d}",
        name=name,
        name_folded=fold(name),
        field_id=field.id,
        level=level,
    )
    db.session.add(proc)
    db.session.flush()
    return proc


def make_service(
    centre: Centre,
    prefix: str = "A",
    *,
    fields: list[Field] | None = None,
    level: ProcedureLevel | None = None,
    counters: int = 0,
    name: str = "Hộ tịch – chứng thực",
) -> Service:
    service = Service(
        centre_id=centre.id, prefix=prefix, name=name, level=level, fields=fields or [make_field()]
    )
    db.session.add(service)
    db.session.flush()
    for _ in range(counters):
        number = len(centre.counters) + 1
        counter = Counter(centre_id=centre.id, number=number)
        db.session.add(counter)
        db.session.flush()
        db.session.add(CounterService(counter_id=counter.id, service_id=service.id, rank=0))
        db.session.refresh(centre)
    db.session.flush()
    return service


def make_slot(
    service: Service, starts_at: datetime, *, capacity: int = 3, booked: int = 0, minutes: int = 30
) -> Slot:
    slot = Slot(
        centre_id=service.centre_id,
        service_id=service.id,
        day=local_day(starts_at),
        starts_at=starts_at,
        ends_at=starts_at + timedelta(minutes=minutes),
        capacity=capacity,
        booked=booked,
    )
    db.session.add(slot)
    db.session.flush()
    return slot
