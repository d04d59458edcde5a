"""Small builders for test data: `make_centre()`, `make_procedure()`, `make_slot()` …"""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta

from core.common.text import fold
from core.common.timeutil import local_day
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
from web.extensions import db

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


# Five real HCMC ward centres (official codes, approximate coordinates, pre-2025 ward names)
# and real civil-status and certification procedures: enough city for page journeys,
# browser tests and screenshots without the full import.
DEMO_CENTRES = (
    (
        "26743",
        "Phường Bến Thành",
        10.77072,
        106.69452,
        "92 Nguyễn Trãi, Phường Bến Thành",
        "Phường Bến Thành; Phường Nguyễn Thái Bình; Phường Phạm Ngũ Lão; Quận 1",
        3,
    ),
    (
        "26740",
        "Phường Sài Gòn",
        10.78093,
        106.70418,
        "45–47 Lê Duẩn, Phường Sài Gòn",
        "Phường Đa Kao; Phường Bến Nghé; Quận 1",
        3,
    ),
    (
        "26737",
        "Phường Tân Định",
        10.79123,
        106.69395,
        "58B Nguyễn Đình Chiểu, Phường Tân Định",
        "Phường Tân Định; Phường Đa Kao; Quận 1",
        2,
    ),
    (
        "26758",
        "Phường Cầu Ông Lãnh",
        10.76192,
        106.68929,
        "105 Trần Đình Xu, Phường Cầu Ông Lãnh",
        "Phường Cô Giang; Phường Nguyễn Cư Trinh; Phường Cầu Kho; Quận 1",
        2,
    ),
    (
        "26884",
        "Phường Gò Vấp",
        10.83578,
        106.67335,
        "332 Quang Trung, Phường Gò Vấp",
        "Phường 17; Phường 10; Quận Gò Vấp",
        4,
    ),
)
DEMO_PROCEDURES = (
    ("1.001193", "Thủ tục đăng ký khai sinh", "Hộ tịch"),
    ("1.000894", "Thủ tục đăng ký kết hôn", "Hộ tịch"),
    ("1.000656", "Thủ tục đăng ký khai tử", "Hộ tịch"),
    ("1.004884", "Thủ tục đăng ký lại khai sinh", "Hộ tịch"),
    ("1.000689", "Thủ tục đăng ký khai sinh kết hợp đăng ký nhận cha, mẹ, con", "Hộ tịch"),
    ("2.000635", "Cấp bản sao Trích lục hộ tịch, bản sao Giấy khai sinh", "Hộ tịch"),
    (
        "2.000815",
        "Chứng thực bản sao từ bản chính giấy tờ, văn bản do cơ quan, tổ chức có "
        "thẩm quyền của Việt Nam cấp hoặc chứng nhận",
        "Chứng thực",
    ),
    ("2.000884", "Chứng thực chữ ký trong các giấy tờ, văn bản", "Chứng thực"),
)


def make_demo_city(now: datetime, *, days: int = 7) -> list[Centre]:
    """Five centres with counters and generated slots; Bến Thành nearly fully booked."""
    from core.booking.slots import generate_slots

    fields = [make_field("Hộ tịch"), make_field("Chứng thực", intake=5)]
    for code, name, field_name in DEMO_PROCEDURES:
        make_procedure(code, name, field=make_field(field_name))
    centres = []
    for code, name, lat, lon, address, legacy, counters in DEMO_CENTRES:
        centre = make_centre(code, name, lat=lat, lon=lon, address=address)
        centre.legacy_names = legacy
        centre.search_text = fold(f"{name} {legacy}")
        make_service(centre, fields=fields, counters=counters)
        centres.append(centre)
    generate_slots(db.session, now=now, days=days)
    db.session.flush()
    for centre in centres:
        slots = db.session.query(Slot).filter_by(centre_id=centre.id).order_by(Slot.starts_at)
        for i, slot in enumerate(slots):
            if centre.code == "26743":
                # Crowded in the city centre: the page should steer people elsewhere.
                slot.booked = slot.capacity if i % 8 != 7 else slot.capacity - 1
            else:
                slot.booked = (i * 7 + int(centre.code)) % (slot.capacity + 1)
    db.session.flush()
    return centres


# ---------------------------------------------------------------- staff (counter workstation)

STAFF_PASSWORD = "mat-khau-quay-1"


def make_staff(
    centre: Centre | None,
    username: str | None = None,
    *,
    role: str = "officer",
    full_name: str = "Nguyễn Văn An",
    password: str = STAFF_PASSWORD,
    active: bool = True,
):
    """A staff member with a real (fast) password hash; `role` by value: officer, manager …"""
    from datetime import UTC

    from werkzeug.security import generate_password_hash

    from core.models import Role, Staff

    staff = Staff(
        username=username or f"canbo{next(_seq)}",
        full_name=full_name,
        password_hash=generate_password_hash(password, method="pbkdf2:sha256:1000"),
        role=Role(role),
        centre_id=centre.id if centre is not None else None,
        active=active,
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    db.session.add(staff)
    db.session.flush()
    return staff


def make_assignment(staff, centre: Centre, day, reason: str = "Hỗ trợ cao điểm"):
    """Dispatch `staff` to `centre` for the local `day`."""
    from datetime import UTC

    from core.models import StaffAssignment

    assignment = StaffAssignment(
        staff_id=staff.id,
        centre_id=centre.id,
        day=day,
        reason=reason,
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    db.session.add(assignment)
    db.session.flush()
    return assignment


# --- The centre floor: staff tokens, devices, appointments, tickets ----------------------------


def staff_token(staff, *, days: int = 365, now: datetime | None = None) -> str:
    """A fresh API bearer token for `staff` (see `make_staff`), valid `days` from `now` (the
    app clock by default: tests that inject `CLOCK` get tokens valid at their time)."""
    from core.access.staff_tokens import issue_staff_token
    from web.clock import clock

    token, _ = issue_staff_token(db.session, staff, now=now or clock(), days=days)
    return token


def make_device(centre: Centre, kind: str = "kiosk"):
    """A kiosk or display (`kind` by value) of `centre`, and its bearer token."""
    import secrets
    from datetime import UTC

    from core.common.tokens import token_hash
    from core.models import Device, DeviceKind

    token = secrets.token_urlsafe(24)
    device = Device(
        kind=DeviceKind(kind),
        centre_id=centre.id,
        name=f"{kind} {next(_seq)}",
        token_hash=token_hash(token),
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    db.session.add(device)
    db.session.flush()
    return device, token


def make_appointment(
    service: Service,
    procedure: Procedure,
    starts_at: datetime,
    *,
    full_name: str = "Trần Thị Bình",
    phone: str = PHONE,
):
    """A booked appointment in a fresh slot of `service` (its QR: `booking.qr_payload`)."""
    import secrets

    from core.common import tokens
    from core.models import Appointment, AppointmentStatus

    slot = make_slot(service, starts_at, booked=1)
    appointment = Appointment(
        code=tokens.booking_code(),
        slot_id=slot.id,
        centre_id=service.centre_id,
        service_id=service.id,
        procedure_id=procedure.id,
        starts_at=slot.starts_at,
        ends_at=slot.ends_at,
        status=AppointmentStatus.BOOKED,
        full_name=full_name,
        phone=phone,
        citizen_hash=f"{next(_seq):064d}",
        manage_token_hash="t" * 64,
        qr_nonce=secrets.token_hex(8),
        consent_at=starts_at - timedelta(days=1),
        created_at=starts_at - timedelta(days=1),
    )
    db.session.add(appointment)
    db.session.flush()
    return appointment


def make_ticket(
    centre: Centre,
    now: datetime,
    *,
    service: Service | None = None,
    procedure: Procedure | None = None,
    priority: str = "none",
):
    """A walk-in ticket issued at `now` (within opening hours), not yet committed."""
    from core.floor.tickets import issue_walk_in
    from core.models import PriorityClass

    return issue_walk_in(
        db.session,
        centre,
        now=now,
        service=service,
        procedure=procedure,
        priority=PriorityClass(priority),
    )


def make_history_ticket(service: Service, day, at, source=None, **kw):
    """A ticket issued at local time `at` on `day`, for history (forecasts, statistics), not
    the live queue; numbered after the line's tickets so far. Not committed."""
    from sqlalchemy import func, select

    from core.common.timeutil import local_to_utc
    from core.models import Ticket, TicketSource

    number = db.session.scalar(
        select(func.count()).select_from(Ticket).where(Ticket.service_id == service.id)
    )
    issued = local_to_utc(day, at)
    ticket = Ticket(
        public_id=f"h{service.id}-{number}",
        centre_id=service.centre_id,
        service_id=service.id,
        day=day,
        number=number + 1,
        label=f"{service.prefix}{number + 1:03d}",
        source=source or TicketSource.WALK_IN,
        queue_time=issued,
        issued_at=issued,
        **kw,
    )
    db.session.add(ticket)
    db.session.flush()
    return ticket


def make_two_centre_floor():
    """Bến Thành: line A (counters 1, 2), line B (counter 3); Sài Gòn: line A (counter 1).
    Not committed."""
    from types import SimpleNamespace

    civil, land = make_field("Hộ tịch"), make_field("Đất đai")
    here = make_centre("26734", "Phường Bến Thành")
    there = make_centre("26740", "Phường Sài Gòn")
    floor = SimpleNamespace(
        here=here,
        there=there,
        a=make_service(here, "A", fields=[civil], counters=2),
        b=make_service(here, "B", fields=[land], counters=1, name="Đất đai"),
        there_a=make_service(there, "A", fields=[civil], counters=1),
    )
    floor.c1, floor.c2, floor.c3 = here.counters
    return floor
