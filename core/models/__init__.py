"""Every model, importable from one place: `from core.models import Slot`."""

from core.models.appointment import Appointment, AppointmentStatus
from core.models.base import Base
from core.models.catalogue import Field, Procedure, ProcedureLevel
from core.models.centre import DEFAULT_OPENING_HOURS, Centre, CentreKind, Closure
from core.models.device import Device, DeviceKind
from core.models.notification import CitizenStanding, Notification, NotificationStatus
from core.models.operations import CentreDayLoad, DispatchDecision
from core.models.service import (
    Counter,
    CounterService,
    Service,
    service_fields,
    service_procedures,
    service_takes,
    takes_clause,
)
from core.models.slot import Slot
from core.models.staff import Role, Staff, StaffAssignment, StaffToken
from core.models.statistics import DailyStatistic
from core.models.ticket import (
    PriorityClass,
    Ticket,
    TicketEvent,
    TicketSequence,
    TicketSource,
    TicketStateError,
    TicketStatus,
)

__all__ = [
    "DEFAULT_OPENING_HOURS",
    "Appointment",
    "AppointmentStatus",
    "Base",
    "Centre",
    "CentreDayLoad",
    "CentreKind",
    "CitizenStanding",
    "Closure",
    "Counter",
    "CounterService",
    "DailyStatistic",
    "Device",
    "DeviceKind",
    "DispatchDecision",
    "Field",
    "Notification",
    "NotificationStatus",
    "PriorityClass",
    "Procedure",
    "ProcedureLevel",
    "Role",
    "Service",
    "Slot",
    "Staff",
    "StaffAssignment",
    "StaffToken",
    "Ticket",
    "TicketEvent",
    "TicketSequence",
    "TicketSource",
    "TicketStateError",
    "TicketStatus",
    "service_fields",
    "service_procedures",
    "service_takes",
    "takes_clause",
]
