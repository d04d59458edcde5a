"""JSON bodies of the booking API, built from values the handlers already hold.

Times are shown in Ho Chi Minh City time (ISO 8601 with +07:00); the database keeps UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.booking.appointments import Booked, BookedSlot
from core.booking.availability import FreeSlot
from core.catalogue.search import ProcedureEntry
from core.common.timeutil import to_local
from core.models import Appointment, AppointmentStatus, Centre, Procedure, Service
from web.messages import message


def iso(moment: datetime | None) -> str | None:
    return to_local(moment).isoformat() if moment is not None else None


def _round(value: float | None, digits: int) -> float | None:
    return round(value, digits) if value is not None else None


def procedure_item(entry: ProcedureEntry) -> dict[str, Any]:
    return {
        "code": entry.code,
        "name": entry.name,
        "field": entry.field,
        "field_id": entry.field_id,
        "level": entry.level,
        "location_independent": entry.location_independent,
    }


def procedure_detail(entry: ProcedureEntry, procedure: Procedure) -> dict[str, Any]:
    return {
        **procedure_item(entry),
        "intake_minutes": procedure.expected_intake_minutes,
        "processing_time": procedure.processing_time,
        "fee": procedure.fee,
        "source_url": procedure.source_url,
    }


def centre_item(
    centre: Centre,
    *,
    distance_km: float | None = None,
    next_free_slot: datetime | None = None,
    load: float | None = None,
    overloaded: bool | None = None,
) -> dict[str, Any]:
    return {
        "code": centre.code,
        "name": centre.name,
        "kind": centre.kind.value,
        "address": centre.address,
        "lat": centre.lat,
        "lon": centre.lon,
        "distance_km": _round(distance_km, 2),
        "next_free_slot": iso(next_free_slot),
        "load": _round(load, 3),
        "overloaded": overloaded,
    }


def opening_hours(centre: Centre) -> list[dict[str, Any]]:
    """Stored as weekday "0" (Monday) → [[opens, closes], …]; shown with ISO weekdays."""
    hours = centre.opening_hours or {}
    return [
        {"weekday": int(day) + 1, "opens": opens, "closes": closes}
        for day in sorted(hours, key=int)
        for opens, closes in hours[day]
    ]


def service_item(service: Service) -> dict[str, Any]:
    return {
        "prefix": service.prefix,
        "name": service.name,
        "level": service.level.value if service.level else None,
        "fields": [f.name for f in service.fields],
        "procedures": [p.code for p in service.procedures],
    }


def centre_detail(
    centre: Centre, *, counters: int, closed_days: list[tuple[date, str]]
) -> dict[str, Any]:
    return {
        **centre_item(centre),
        "is_hub": centre.is_hub,
        "counters": counters,
        "services": [service_item(s) for s in centre.services if s.active],
        "opening_hours": opening_hours(centre),
        "closed_days": [{"date": d.isoformat(), "reason": why} for d, why in closed_days],
    }


def slot_item(slot: FreeSlot) -> dict[str, Any]:
    return {
        "id": slot.id,
        "centre": {"code": slot.centre_code, "name": slot.centre_name},
        "service": {"prefix": slot.service_prefix, "name": slot.service_name},
        "starts_at": iso(slot.starts_at),
        "ends_at": iso(slot.ends_at),
        "capacity": slot.capacity,
        "remaining": slot.remaining,
    }


def suggestion_item(
    centre: Centre,
    slot: FreeSlot,
    *,
    distance_km: float | None,
    load: float,
    overloaded: bool,
    reason: str,
) -> dict[str, Any]:
    return {
        "centre": centre_item(
            centre,
            distance_km=distance_km,
            next_free_slot=slot.starts_at,
            load=load,
            overloaded=overloaded,
        ),
        "slot": slot_item(slot),
        "distance_km": _round(distance_km, 2),
        "load": _round(load, 3),
        "overloaded": overloaded,
        "reason": reason,
        "reason_text": message(f"reason_{reason}"),
    }


@dataclass(frozen=True)
class AppointmentView:
    """What an appointment body shows."""

    code: str
    status: AppointmentStatus
    full_name: str
    starts_at: datetime
    ends_at: datetime
    centre_code: str
    centre_name: str
    centre_address: str
    service_prefix: str
    service_name: str
    procedure_code: str
    procedure_name: str


def appointment_view(session: Session, appointment_id: int) -> AppointmentView:
    """An appointment as its body shows it, in one query (no ORM objects loaded)."""
    row = session.execute(
        select(
            Appointment.code,
            Appointment.status,
            Appointment.full_name,
            Appointment.starts_at,
            Appointment.ends_at,
            Centre.code.label("centre_code"),
            Centre.name.label("centre_name"),
            Centre.address.label("centre_address"),
            Service.prefix.label("service_prefix"),
            Service.name.label("service_name"),
            Procedure.code.label("procedure_code"),
            Procedure.name.label("procedure_name"),
        )
        .join(Centre, Centre.id == Appointment.centre_id)
        .join(Service, Service.id == Appointment.service_id)
        .join(Procedure, Procedure.id == Appointment.procedure_id)
        .where(Appointment.id == appointment_id)
    ).one()
    return AppointmentView(**row._mapping)


def new_appointment_view(
    booked: Booked, where: BookedSlot, proc: ProcedureEntry, full_name: str
) -> AppointmentView:
    """A booking just made, from what the booking returned: the hot path needs no query."""
    return AppointmentView(
        code=booked.code,
        status=AppointmentStatus.BOOKED,
        full_name=full_name,
        starts_at=where.starts_at,
        ends_at=where.ends_at,
        centre_code=where.centre_code,
        centre_name=where.centre_name,
        centre_address=where.centre_address,
        service_prefix=where.service_prefix,
        service_name=where.service_name,
        procedure_code=proc.code,
        procedure_name=proc.name,
    )


def appointment(view: AppointmentView, *, url: str) -> dict[str, Any]:
    """An appointment body; `url` is the appointment's own API address (files hang off it)."""
    return {
        "code": view.code,
        "status": view.status.value,
        "full_name": view.full_name,
        "centre": {
            "code": view.centre_code,
            "name": view.centre_name,
            "address": view.centre_address,
        },
        "service": {"prefix": view.service_prefix, "name": view.service_name},
        "procedure": {"code": view.procedure_code, "name": view.procedure_name},
        "starts_at": iso(view.starts_at),
        "ends_at": iso(view.ends_at),
        "qr_svg_url": f"{url}/qr.svg",
        "qr_png_url": f"{url}/qr.png",
        "ics_url": f"{url}.ics",
    }
