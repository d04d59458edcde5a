"""The demo city's layout policy: which fields share a ticket service, how many counters a
centre has, which wards host an area team — chosen deterministically from the data."""

from __future__ import annotations

import math
import re
import zlib
from dataclasses import dataclass

from core.common.text import fold
from core.models import (
    Centre,
    CentreKind,
    ProcedureLevel,
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
class ServiceLayout:
    """A ticket service of the demo layout and the fields (by folded name fragment) it takes."""

    prefix: str
    name: str
    # Folded fragments of field names; empty takes every field no earlier layout took.
    fragments: tuple[str, ...]
    # Share of the centre's counters whose first duty is this layout.
    share: float


# Commune-level procedures at every ward/commune centre, grouped as ward centres sign
# their counters: civil status and certification are the bulk of visits.
COMMUNE_SERVICES = (
    ServiceLayout(
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
    ServiceLayout(
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
    ServiceLayout(
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
    ServiceLayout("D", "Kinh doanh – Thuế – Bảo hiểm – Lĩnh vực khác", (), 0.2),
)

# Department-level procedures at the City centre, grouped by the departments receiving them.
CITY_SERVICES = (
    ServiceLayout(
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
    ServiceLayout(
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
    ServiceLayout(
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
    ServiceLayout(
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
    ServiceLayout(
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
    ServiceLayout("F", "An ninh trật tự – Lĩnh vực khác", (), 0.1),
)
# The City centre also receives commune-level procedures, location-independently.
CITY_COMMUNE_SERVICE = ServiceLayout("G", "Thủ tục cấp xã", (), 0.1)

# The area team ("tổ địa bàn") at a hub ward receives department-level procedures.
HUB_SERVICE = ServiceLayout("K", "Tổ địa bàn – thủ tục cấp Sở", (), 1.0)


# --- pure layout policy ----------------------------------------------------------------


def assign_fields(
    layouts: tuple[ServiceLayout, ...], field_names: dict[int, str]
) -> dict[str, set[int]]:
    """Field ids per layout prefix: the first layout with a matching fragment, else the catch-all."""
    out: dict[str, set[int]] = {layout.prefix: set() for layout in layouts}
    catch_all = next((layout for layout in layouts if not layout.fragments), None)
    for field_id, name in field_names.items():
        padded = f" {fold(name)} "
        layout = next(
            (
                candidate
                for candidate in layouts
                if any(f" {frag} " in padded for frag in candidate.fragments)
            ),
            catch_all,
        )
        if layout is not None:
            out[layout.prefix].add(field_id)
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


def services_for(centre: Centre, hub: bool) -> tuple[tuple[ServiceLayout, ProcedureLevel], ...]:
    """The demo layouts of a centre, each with the procedure level it takes."""
    if centre.kind is CentreKind.CITY:
        layouts = tuple((layout, ProcedureLevel.DEPARTMENT) for layout in CITY_SERVICES)
        return (*layouts, (CITY_COMMUNE_SERVICE, ProcedureLevel.COMMUNE))
    layouts = tuple((layout, ProcedureLevel.COMMUNE) for layout in COMMUNE_SERVICES)
    return (*layouts, (HUB_SERVICE, ProcedureLevel.DEPARTMENT)) if hub else layouts
