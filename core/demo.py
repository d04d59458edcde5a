"""A demo city on top of the imported centres and catalogue: services, counters, accounts.

Everything here is a plausible *demo* layout, not the city's real organisation: which
fields share a ticket line, how many counters a centre has and which 38 wards host an
area team are chosen deterministically from the data so every run builds the same city.
Seeding only adds what is missing, so it is safe to run again after a re-import.
"""

from __future__ import annotations

import math
import re
import secrets
import zlib
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from core.access.passwords import MIN_PASSWORD_LENGTH, hash_password
from core.common.errors import Conflict, InvalidInput
from core.common.text import fold
from core.common.tokens import token_hash
from core.models import (
    Centre,
    CentreKind,
    Counter,
    CounterService,
    Device,
    DeviceKind,
    Field,
    Procedure,
    ProcedureLevel,
    Role,
    Service,
    Staff,
    service_fields,
)

HUB_COUNT = 38
CITY_COUNTERS = 67
# Known from the city's own figures (DESIGN §1): a busy and a small ward centre.
KNOWN_COUNTERS = {"Phường Gò Vấp": 20, "Phường Bến Thành": 5}
# Centres with demo staff accounts and devices: (name in the data, username prefix).
SHOWCASE = (
    ("Phường Bến Thành", "benthanh"),
    ("Phường Gò Vấp", "govap"),
    ("Phường Sài Gòn", "saigon"),
)
OFFICERS_PER_SHOWCASE = 2
_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{2,63}$")


@dataclass(frozen=True)
class Line:
    """A ticket line of the demo layout and the fields (by folded name fragment) it takes."""

    prefix: str
    name: str
    # Folded fragments of field names; empty takes every field no earlier line took.
    fragments: tuple[str, ...]
    # Share of the centre's counters whose first duty is this line.
    share: float


# Commune-level procedures at every ward/commune centre, grouped as ward centres sign
# their counters: civil status and certification are the bulk of visits.
COMMUNE_LINES = (
    Line(
        "A",
        "Hộ tịch – Chứng thực",
        (
            "ho tich",
            "chung thuc",
            "nuoi con nuoi",
            "hoa giai o co so",
            "boi thuong nha nuoc",
            "dang ky bien phap bao dam",
        ),
        0.35,
    ),
    Line(
        "B",
        "Đất đai – Xây dựng – Môi trường",
        (
            "dat dai",
            "xay dung",
            "nha o",
            "quy hoach",
            "ha tang ky thuat",
            "moi truong",
            "tai nguyen nuoc",
            "bien va hai dao",
            "dia chat",
        ),
        0.2,
    ),
    Line(
        "C",
        "Cư trú – Căn cước – Xuất nhập cảnh",
        (
            "cu tru",
            "can cuoc",
            "xuat nhap canh",
            "dinh danh",
            "phuong tien giao thong",
            "phong chay",
            "vu khi",
        ),
        0.25,
    ),
    Line("D", "Kinh doanh – Thuế – Bảo hiểm – Lĩnh vực khác", (), 0.2),
)

# Department-level procedures at the City centre, grouped by the departments receiving them.
CITY_LINES = (
    Line(
        "A",
        "Tư pháp",
        (
            "cong chung",
            "luat su",
            "thua phat lai",
            "trong tai",
            "hoa giai thuong mai",
            "tro giup phap ly",
            "giam dinh tu phap",
            "dau gia",
            "quan tai vien",
            "tu van phap luat",
            "thi hanh an",
            "ly lich tu phap",
            "quoc tich",
            "nuoi con nuoi",
            "ho tich",
            "chung thuc",
            "dang ky bien phap bao dam",
            "boi thuong nha nuoc",
        ),
        0.2,
    ),
    Line(
        "B",
        "Đất đai – Tài nguyên – Môi trường",
        (
            "dat dai",
            "tai nguyen nuoc",
            "dia chat",
            "moi truong",
            "bien va hai dao",
            "bien doi khi hau",
            "khi tuong",
            "do dac",
            "bao ton thien nhien",
        ),
        0.2,
    ),
    Line(
        "C",
        "Xây dựng – Giao thông",
        (
            "xay dung",
            "nha o",
            "kien truc",
            "quy hoach",
            "phat trien do thi",
            "duong bo",
            "duong sat",
            "hang hai",
            "dang kiem",
            "sat hach",
            "ha tang ky thuat",
            "bat dong san",
            "hang khong",
            "giao thong",
        ),
        0.2,
    ),
    Line(
        "D",
        "Đầu tư – Doanh nghiệp – Tài chính",
        (
            "doanh nghiep",
            "dau tu",
            "ngan hang",
            "ngoai hoi",
            "thue",
            "hai quan",
            "tien te",
            "tin dung",
            "thanh toan",
            "kho quy",
            "bao hiem",
            "chung khoan",
            "tai chinh",
            "quan ly gia",
            "cong san",
            "dau thau",
            "du tru",
            "khu cong nghiep",
            "hop tac xa",
        ),
        0.2,
    ),
    Line(
        "E",
        "Nông nghiệp – Thủy sản",
        (
            "nong nghiep",
            "thuy san",
            "thu y",
            "trong trot",
            "chan nuoi",
            "lam nghiep",
            "kiem lam",
            "thuy loi",
            "de dieu",
            "nong lam san",
            "nong thon",
        ),
        0.1,
    ),
    Line("F", "An ninh trật tự – Lĩnh vực khác", (), 0.1),
)
# The City centre also receives commune-level procedures, location-independently.
CITY_COMMUNE_LINE = Line("G", "Thủ tục cấp xã", (), 0.1)

# The area team ("tổ địa bàn") at a hub ward receives department-level procedures.
HUB_LINE = Line("K", "Tổ địa bàn – thủ tục cấp Sở", (), 1.0)


@dataclass(frozen=True)
class Credential:
    """A secret created by this run, shown once: a staff password or a device token."""

    kind: str  # "staff", "kiosk" or "display"
    name: str  # username or device name
    role: str
    centre: str  # centre name, "" for city-wide accounts
    secret: str


@dataclass
class DemoReport:
    """What a seeding run added; `credentials` holds the secrets to show once."""

    centres_laid_out: int = 0
    hubs_added: int = 0
    services: int = 0
    counters: int = 0
    field_links: int = 0
    credentials: list[Credential] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return (
            f"{self.centres_laid_out} centres laid out, {self.hubs_added} hubs added, "
            f"{self.services} services, {self.counters} counters, "
            f"{self.field_links} field links, {len(self.credentials)} new credentials"
        )


# --- pure layout policy ----------------------------------------------------------------


def assign_fields(lines: tuple[Line, ...], field_names: dict[int, str]) -> dict[str, set[int]]:
    """Field ids per line prefix: the first line with a matching fragment, else the catch-all."""
    out: dict[str, set[int]] = {line.prefix: set() for line in lines}
    catch_all = next((line for line in lines if not line.fragments), None)
    for field_id, name in field_names.items():
        padded = f" {fold(name)} "
        line = next(
            (ln for ln in lines if any(f" {frag} " in padded for frag in ln.fragments)), catch_all
        )
        if line is not None:
            out[line.prefix].add(field_id)
    return out


def allocate(total: int, shares: list[float]) -> list[int]:
    """Split `total` counters by `shares` (largest remainder), at least one each."""
    base = [1] * len(shares)
    rest = total - len(shares)
    if rest <= 0:
        return base
    scaled = [rest * s / sum(shares) for s in shares]
    counts = [math.floor(x) for x in scaled]
    order = sorted(range(len(shares)), key=lambda i: (-(scaled[i] - counts[i]), i))
    for i in order[: rest - sum(counts)]:
        counts[i] += 1
    return [b + c for b, c in zip(base, counts, strict=True)]


def _jitter(code: str, modulo: int) -> int:
    return zlib.crc32(code.encode("utf-8")) % modulo


def counter_count(centre: Centre) -> int:
    """Counters of a centre: 5–20 at a ward or commune (more for wards and large areas,
    stable per code), 67 at the City centre."""
    if centre.name in KNOWN_COUNTERS:
        return KNOWN_COUNTERS[centre.name]
    area = centre.area_km2 or 0.0
    if centre.kind is CentreKind.CITY:
        return CITY_COUNTERS
    if centre.kind is CentreKind.WARD:
        count = 7 + _jitter(centre.code, 10) + (3 if area >= 10 else 0)
    elif centre.kind is CentreKind.COMMUNE:
        count = 5 + _jitter(centre.code, 5) + (2 if area >= 100 else 0)
    else:
        count = 5
    return max(5, min(20, count))


def hub_counter_count(centre: Centre) -> int:
    """Extra counters of an area team: 3–5."""
    return 3 + _jitter(centre.code, 3)


Point = tuple[float, float]


def _medoid(group: list[Centre], points: dict[str, Point]) -> Centre:
    return min(
        group,
        key=lambda c: (sum(math.dist(points[c.code], points[o.code]) for o in group), c.code),
    )


def _split(group: list[Centre], teams: int, points: dict[str, Point]) -> list[Centre]:
    """One hub per part of `group`, cut into `teams` parts of nearly equal ward count."""
    if teams <= 1:
        return [_medoid(group, points)]
    spans = [
        max(points[c.code][a] for c in group) - min(points[c.code][a] for c in group)
        for a in (0, 1)
    ]
    axis = 0 if spans[0] >= spans[1] else 1
    ordered = sorted(group, key=lambda c: (points[c.code][axis], c.code))
    first = teams // 2
    cut = round(len(ordered) * first / teams)
    return _split(ordered[:cut], first, points) + _split(ordered[cut:], teams - first, points)


def choose_hubs(centres: list[Centre], count: int = HUB_COUNT) -> list[Centre]:
    """`count` ward centres hosting area teams: one per group of neighbouring wards.

    The wards are cut, by repeated halving along the longer side of the map, into
    `count` groups of nearly equal size (about three wards each), and each group's most
    central ward hosts the team. Ward boundaries follow population, so equal groups of
    wards put teams where people live; pure distance optimisation would send most teams
    to the thinly peopled outskirts. Ties go to the lower code: the choice is stable.
    """
    points: dict[str, Point] = {}
    wards = []
    for c in sorted(centres, key=lambda c: c.code):
        if c.kind is CentreKind.WARD and c.lat is not None and c.lon is not None:
            # Degrees of longitude shrink with latitude; at 10–11° N a flat map is plenty.
            points[c.code] = (c.lat, c.lon * math.cos(math.radians(c.lat)))
            wards.append(c)
    if len(wards) <= count:
        return wards
    return sorted(_split(wards, count, points), key=lambda c: c.code)


def lines_for(centre: Centre, hub: bool) -> tuple[tuple[Line, ProcedureLevel], ...]:
    """The demo lines of a centre, each with the procedure level it takes."""
    if centre.kind is CentreKind.CITY:
        lines = tuple((line, ProcedureLevel.DEPARTMENT) for line in CITY_LINES)
        return (*lines, (CITY_COMMUNE_LINE, ProcedureLevel.COMMUNE))
    lines = tuple((line, ProcedureLevel.COMMUNE) for line in COMMUNE_LINES)
    return (*lines, (HUB_LINE, ProcedureLevel.DEPARTMENT)) if hub else lines


# --- seeding -------------------------------------------------------------------------


LineKey = tuple[str, str]  # (prefix, name): how a demo line's services are recognised
_LAYOUTS = (
    (COMMUNE_LINES, ProcedureLevel.COMMUNE),
    (CITY_LINES, ProcedureLevel.DEPARTMENT),
    ((CITY_COMMUNE_LINE,), ProcedureLevel.COMMUNE),
    ((HUB_LINE,), ProcedureLevel.DEPARTMENT),
)


@dataclass(frozen=True)
class _Plan:
    """What every demo line takes and its intake minutes, from the catalogue as imported."""

    fields: dict[LineKey, set[int]]
    intake: dict[LineKey, int]
    procedures: int


def _weighted_intake(field_ids: set[int], counts: dict[int, int], intake: dict[int, int]) -> int:
    """A line's intake: its fields' intake weighted by their number of procedures."""
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
    for lines, level in _LAYOUTS:
        # Only fields with procedures at the line's level: the rest would never match.
        used = {fid: names[fid] for fid in counts[level]}
        assigned = assign_fields(lines, used)
        for line in lines:
            key = (line.prefix, line.name)
            plan.fields[key] = assigned[line.prefix]
            plan.intake[key] = _weighted_intake(assigned[line.prefix], counts[level], intake)
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


def _add_lines(
    session: Session,
    centre: Centre,
    lines: tuple[tuple[Line, ProcedureLevel], ...],
    *,
    counters: int,
    first_number: int,
    plan: _Plan,
) -> _Batch:
    """Services for `lines` and `counters` counters shared out by the lines' shares."""
    services = [
        Service(
            centre_id=centre.id,
            prefix=line.prefix,
            name=line.name,
            level=level,
            intake_minutes=plan.intake[(line.prefix, line.name)],
        )
        for line, level in lines
    ]
    batch = _Batch(services, [])
    number = first_number
    for index, size in enumerate(allocate(counters, [line.share for line, _ in lines])):
        for k in range(size):
            counter = Counter(centre_id=centre.id, number=number, name=f"Quầy {number}")
            # The last of three or more counters on a line is cross-trained on the next line.
            batch.counters.append((counter, index, size >= 3 and k == size - 1))
            number += 1
    session.add_all(services)
    session.add_all(c for c, _, _ in batch.counters)
    return batch


def _lay_out_centres(
    session: Session, centres: list[Centre], plan: _Plan, report: DemoReport
) -> None:
    """Demo lines and counters for centres without services; area teams at the hubs."""
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
            lines = lines_for(centre, hub=False)
            batches.append(
                _add_lines(session, centre, lines, counters=size, first_number=1, plan=plan)
            )
            top_number[centre.id] = size
            report.centres_laid_out += 1
        if centre.id in hubs and HUB_LINE.prefix not in prefixes[centre.id]:
            batches.append(
                _add_lines(
                    session,
                    centre,
                    ((HUB_LINE, ProcedureLevel.DEPARTMENT),),
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
    """Give every demo line the fields the layout assigns it, including newly imported ones."""
    have: dict[int, set[int]] = defaultdict(set)
    for service_id, field_id in session.execute(select(service_fields)):
        have[service_id].add(field_id)
    rows = []
    for service_id, prefix, name in session.execute(
        select(Service.id, Service.prefix, Service.name)
    ):
        planned = plan.fields.get((prefix, name))
        if planned is None:
            continue  # not a demo line: an operator's own service is theirs to configure
        for field_id in sorted(planned - have[service_id]):
            rows.append({"service_id": service_id, "field_id": field_id})
    if rows:
        session.execute(insert(service_fields), rows)
    report.field_links += len(rows)


def seed_demo(session: Session, *, now: datetime) -> DemoReport:
    """Build the demo city on the imported centres and catalogue; idempotent.

    Centres without services get the demo lines and counters, 38 wards (one per group
    of neighbouring wards) an area team, and the showcase centres staff accounts and
    devices; an admin and a city operator account are added too. Existing services,
    accounts and devices are left as they are; lines created by an earlier run gain the
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


# --- accounts and devices -------------------------------------------------------------


def create_staff(
    session: Session,
    *,
    username: str,
    password: str,
    role: Role,
    centre: Centre | None,
    full_name: str,
    now: datetime,
) -> Staff:
    """A staff account with a hashed password.

    Raises InvalidInput for a malformed username, a short password or an officer/manager
    without a centre, and Conflict when the username is taken.
    """
    username = username.strip().lower()
    if not _USERNAME.match(username):
        raise InvalidInput({"username": "invalid_username"})
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput({"password": "password_too_short"})
    if role in (Role.OFFICER, Role.MANAGER) and centre is None:
        raise InvalidInput({"centre": "centre_required"})
    if session.scalar(select(Staff.id).where(Staff.username == username)) is not None:
        raise Conflict("username_taken", field="username")
    staff = Staff(
        username=username,
        full_name=full_name.strip() or username,
        password_hash=hash_password(password),
        role=role,
        centre_id=centre.id if centre else None,
        created_at=now,
    )
    session.add(staff)
    session.flush()
    return staff


def create_device(
    session: Session, *, kind: DeviceKind, centre: Centre, name: str, now: datetime
) -> tuple[Device, str]:
    """A kiosk or display bound to `centre`, and its bearer token (stored only as a hash).

    Raises InvalidInput when the name is empty or too long.
    """
    name = name.strip()
    if not name or len(name) > 100:
        raise InvalidInput({"name": "invalid_name"})
    token = secrets.token_urlsafe(32)
    device = Device(
        kind=kind, centre_id=centre.id, name=name, token_hash=token_hash(token), created_at=now
    )
    session.add(device)
    session.flush()
    return device, token


def _new_password() -> str:
    return secrets.token_urlsafe(12)


def _ensure_staff(
    session: Session,
    report: DemoReport,
    *,
    username: str,
    role: Role,
    centre: Centre | None,
    full_name: str,
    now: datetime,
) -> None:
    if session.scalar(select(Staff.id).where(Staff.username == username)) is not None:
        return
    password = _new_password()
    create_staff(
        session,
        username=username,
        password=password,
        role=role,
        centre=centre,
        full_name=full_name,
        now=now,
    )
    centre_name = centre.name if centre else ""
    report.credentials.append(Credential("staff", username, role.value, centre_name, password))


def _ensure_device(
    session: Session,
    report: DemoReport,
    *,
    kind: DeviceKind,
    centre: Centre,
    name: str,
    now: datetime,
) -> None:
    exists = session.scalar(
        select(Device.id).where(
            Device.centre_id == centre.id, Device.kind == kind, Device.name == name
        )
    )
    if exists is not None:
        return
    _, token = create_device(session, kind=kind, centre=centre, name=name, now=now)
    report.credentials.append(Credential(kind.value, name, kind.value, centre.name, token))


def _seed_accounts(
    session: Session, centres: list[Centre], now: datetime, report: DemoReport
) -> None:
    by_name = {c.name: c for c in centres}
    _ensure_staff(
        session,
        report,
        username="admin",
        role=Role.ADMIN,
        centre=None,
        full_name="Quản trị hệ thống",
        now=now,
    )
    _ensure_staff(
        session,
        report,
        username="operator",
        role=Role.OPERATOR,
        centre=None,
        full_name="Điều hành Thành phố",
        now=now,
    )
    for name, slug in SHOWCASE:
        centre = by_name.get(name)
        if centre is None:
            continue
        _ensure_staff(
            session,
            report,
            username=f"{slug}.manager",
            role=Role.MANAGER,
            centre=centre,
            full_name=f"Quản lý – {centre.name}",
            now=now,
        )
        for i in range(1, OFFICERS_PER_SHOWCASE + 1):
            _ensure_staff(
                session,
                report,
                username=f"{slug}.officer{i}",
                role=Role.OFFICER,
                centre=centre,
                full_name=f"Cán bộ {i} – {centre.name}",
                now=now,
            )
        _ensure_device(
            session, report, kind=DeviceKind.KIOSK, centre=centre, name="Kiosk 1", now=now
        )
        _ensure_device(
            session, report, kind=DeviceKind.DISPLAY, centre=centre, name="Màn hình 1", now=now
        )
