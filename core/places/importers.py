"""Reference data import: centres (administrative units) and the procedure catalogue.

Both importers upsert by official code, so re-running them with the same file changes
nothing and a corrected file updates rows in place. A file with a malformed row is
refused whole: an operator fixes the file rather than hunting for half an import.
"""

from __future__ import annotations

import csv
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.catalogue import search as catalogue
from core.common.errors import DomainError
from core.common.text import fold, nfc
from core.models import DEFAULT_OPENING_HOURS, Centre, CentreKind, Field, Procedure, ProcedureLevel

# Saturday morning opening, for the centres that have it.
SATURDAY_MORNING = [["07:30", "11:30"]]

CENTRE_COLUMNS = ("code", "name", "type")
NATIONAL_COLUMNS = ("code", "name", "field", "level", "handled_by_province_or_commune")
OFFICIAL_COLUMNS = ("code", "name", "field", "level")

_KINDS = {
    "phuong": CentreKind.WARD,
    "ward": CentreKind.WARD,
    "xa": CentreKind.COMMUNE,
    "commune": CentreKind.COMMUNE,
    "dac khu": CentreKind.SPECIAL_ZONE,
    "special zone": CentreKind.SPECIAL_ZONE,
    "thanh pho": CentreKind.CITY,
    "city": CentreKind.CITY,
}

_LEVELS = {
    "commune": ProcedureLevel.COMMUNE,
    "cap xa": ProcedureLevel.COMMUNE,
    "department": ProcedureLevel.DEPARTMENT,
    "cap tinh": ProcedureLevel.DEPARTMENT,
    "cap so": ProcedureLevel.DEPARTMENT,
    "province": ProcedureLevel.DEPARTMENT,
}

# Counter intake minutes by field (folded name fragment → minutes), first match wins.
# Civil status and certification are short and routine; land dossiers need checking of
# maps and deeds at the counter; business registration sits in between.
FIELD_INTAKE_MINUTES: tuple[tuple[str, int], ...] = (
    ("chung thuc", 7),
    ("ho tich", 8),
    ("cu tru", 8),
    ("can cuoc", 8),
    ("dat dai", 15),
    ("doanh nghiep", 12),
    ("ho kinh doanh", 12),
    ("hop tac xa", 12),
    ("xay dung", 12),
    ("nha o", 12),
)
DEFAULT_INTAKE_MINUTES = 10
_MAX_ERRORS_SHOWN = 10


class ImportFileError(DomainError):
    """The file cannot be imported as it is; nothing was changed."""

    code = "import_file_invalid"
    status = 422

    def __init__(self, message: str, problems: list[str] | None = None):
        super().__init__(message=message, problems=problems or [])
        self.message = message
        self.problems = problems or []

    def __str__(self) -> str:
        shown = self.problems[:_MAX_ERRORS_SHOWN]
        more = len(self.problems) - len(shown)
        lines = [self.message, *(f"  {p}" for p in shown)]
        if more > 0:
            lines.append(f"  … and {more} more")
        return "\n".join(lines)


@dataclass
class ImportReport:
    """Rows created, updated and unchanged by an import."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    # Rows deliberately left out (e.g. procedures handled only by ministries).
    skipped: int = 0

    def __str__(self) -> str:
        return (
            f"{self.created} created, {self.updated} updated, "
            f"{self.unchanged} unchanged, {self.skipped} skipped"
        )


def field_intake_minutes(field_name: str) -> int:
    """Default counter intake minutes for a field, until history teaches better."""
    padded = f" {fold(field_name)} "
    for fragment, minutes in FIELD_INTAKE_MINUTES:
        if f" {fragment} " in padded:
            return minutes
    return DEFAULT_INTAKE_MINUTES


def opens_saturday(code: str) -> bool:
    """Whether a centre opens Saturday morning by default: a stable half of all codes.

    A checksum of the code rather than a rule on its value: codes run in geographic
    order, and Saturday centres should be scattered over the city, not bunched.
    """
    return zlib.crc32(code.encode("utf-8")) % 2 == 0


def default_opening_hours(code: str) -> dict[str, list[list[str]]]:
    """Mon–Fri office hours, plus Saturday morning for about half of the centres."""
    hours = {day: [list(p) for p in periods] for day, periods in DEFAULT_OPENING_HOURS.items()}
    if opens_saturday(code):
        hours["5"] = [list(p) for p in SATURDAY_MORNING]
    return hours


# --- CSV reading --------------------------------------------------------------------


def _read_rows(path: str | Path) -> tuple[list[str], list[dict[str, str]]]:
    """Header and stripped rows of a UTF-8 CSV (a BOM from spreadsheet exports is fine)."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            header = [h.strip() for h in (reader.fieldnames or [])]
            reader.fieldnames = header
            rows = [
                {k: (v or "").strip() for k, v in row.items() if k is not None} for row in reader
            ]
    except OSError as exc:
        raise ImportFileError(f"cannot read {path}: {exc.strerror}") from exc
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ImportFileError(f"{path} is not a UTF-8 CSV file: {exc}") from exc
    return header, rows


def _require(path: str | Path, header: list[str], columns: tuple[str, ...]) -> None:
    missing = [c for c in columns if c not in header]
    if missing:
        raise ImportFileError(
            f"{path}: missing column(s) {', '.join(missing)} (header: {','.join(header)})"
        )


def _one_line(text: str) -> str:
    """NFC with runs of whitespace as one space: some portal names carry hard line breaks."""
    return " ".join(nfc(text).split())


def _float(raw: str, low: float, high: float) -> float | None:
    if not raw:
        return None
    value = float(raw)
    if not low <= value <= high:
        raise ValueError(f"{raw} is outside {low}..{high}")
    return value


# --- centres ------------------------------------------------------------------------


def _centre_values(row: dict[str, str]) -> dict[str, Any]:
    """The Centre attributes one CSV row describes; ValueError when malformed."""
    code, name = row["code"], _one_line(row["name"])
    if not code or len(code) > 16:
        raise ValueError(f"code {code!r} must be 1–16 characters")
    if not name:
        raise ValueError("name is empty")
    kind = _KINDS.get(fold(row["type"]))
    if kind is None:
        raise ValueError(f"unknown type {row['type']!r}")
    wards = nfc(row.get("legacy_wards", ""))
    districts = nfc(row.get("legacy_districts", ""))
    # "(một phần)" marks a ward only partly merged: useful to read, noise to search.
    searchable = " ".join([name, wards.replace("(một phần)", ""), districts])
    return {
        "code": code,
        "name": name,
        "kind": kind,
        "address": _one_line(row.get("admin_centre_address", "")),
        "lat": _float(row.get("lat", ""), -90, 90),
        "lon": _float(row.get("lon", ""), -180, 180),
        "area_km2": _float(row.get("area_km2", ""), 0, 100_000),
        "legacy_names": " — ".join(part for part in (wards, districts) if part),
        "search_text": fold(searchable),
    }


def import_centres(session: Session, path: str | Path) -> ImportReport:
    """Upsert centres by official code from a units CSV (`code,name,type,lat,lon,…`).

    Opening hours are set only when a centre is first created, so hours an operator has
    changed survive a re-import; names, addresses and coordinates follow the file.
    Raises ImportFileError (and changes nothing) when a row is malformed.
    """
    header, rows = _read_rows(path)
    _require(path, header, CENTRE_COLUMNS)
    parsed, problems = [], []
    seen: set[str] = set()
    for row_number, row in enumerate(rows, start=2):  # row 1 is the header
        try:
            values = _centre_values(row)
        except ValueError as exc:
            problems.append(f"row {row_number}: {exc}")
            continue
        if values["code"] in seen:
            problems.append(f"row {row_number}: duplicate code {values['code']}")
        seen.add(values["code"])
        parsed.append(values)
    if problems:
        raise ImportFileError(f"{path}: {len(problems)} bad row(s), nothing imported", problems)

    existing = {c.code: c for c in session.scalars(select(Centre))}
    report = ImportReport()
    for values in parsed:
        centre = existing.get(values["code"])
        if centre is None:
            session.add(Centre(**values, opening_hours=default_opening_hours(values["code"])))
            report.created += 1
        elif _assign(centre, values):
            report.updated += 1
        else:
            report.unchanged += 1
    session.flush()
    return report


def _assign(obj: Any, values: dict[str, Any]) -> bool:
    """Set the attributes that differ; whether anything changed."""
    changed = False
    for name, value in values.items():
        if getattr(obj, name) != value:
            setattr(obj, name, value)
            changed = True
    return changed


# --- procedures ---------------------------------------------------------------------


@dataclass(frozen=True)
class _ProcedureRow:
    code: str
    name: str
    field: str
    level: ProcedureLevel
    # Only the columns the file has: an official list without them keeps what we hold.
    extra: dict[str, str]


def _national_level(raw: str) -> ProcedureLevel:
    levels = {fold(part) for part in raw.split(",")}
    return ProcedureLevel.COMMUNE if "cap xa" in levels else ProcedureLevel.DEPARTMENT


def _official_level(raw: str) -> ProcedureLevel:
    level = _LEVELS.get(fold(raw))
    if level is None:
        raise ValueError(
            f"unknown level {raw!r} (use commune/department, Cấp xã, Cấp tỉnh or Cấp sở)"
        )
    return level


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _procedure_row(row: dict[str, str], national: bool) -> _ProcedureRow | None:
    """One procedure from a CSV row; None when the row is not for city centres."""
    if national and row["handled_by_province_or_commune"].lower() != "yes":
        return None
    code, name, field_name = row["code"], _one_line(row["name"]), _one_line(row["field"])
    if not code or len(code) > 32:
        raise ValueError(f"code {code!r} must be 1–32 characters")
    if not name:
        raise ValueError("name is empty")
    if not field_name or len(field_name) > 200:
        raise ValueError("field must be 1–200 characters")
    level = _national_level(row["level"]) if national else _official_level(row["level"])
    extra = {}
    # The portal's processing-time cell sometimes carries a paragraph; keep its start.
    for column, limit in (("processing_time", 200), ("fee", 10_000), ("source_url", 300)):
        if column in row:
            extra[column] = _clip(_one_line(row[column]), limit)
    return _ProcedureRow(code, name, field_name, level, extra)


def _parse_procedures(path: str | Path) -> tuple[list[_ProcedureRow], int]:
    header, rows = _read_rows(path)
    national = "handled_by_province_or_commune" in header
    _require(path, header, NATIONAL_COLUMNS if national else OFFICIAL_COLUMNS)
    parsed: list[_ProcedureRow] = []
    problems: list[str] = []
    skipped = 0
    seen: set[str] = set()
    for row_number, row in enumerate(rows, start=2):  # row 1 is the header
        try:
            item = _procedure_row(row, national)
        except ValueError as exc:
            problems.append(f"row {row_number}: {exc}")
            continue
        if item is None:
            skipped += 1
            continue
        if item.code in seen:
            problems.append(f"row {row_number}: duplicate code {item.code}")
        seen.add(item.code)
        parsed.append(item)
    if problems:
        raise ImportFileError(f"{path}: {len(problems)} bad row(s), nothing imported", problems)
    return parsed, skipped


def import_procedures(session: Session, path: str | Path) -> ImportReport:
    """Upsert fields by name and procedures by code from a catalogue CSV.

    Accepts the national catalogue extract (`data/procedures.csv`: rows handled by a
    province department or a commune; level COMMUNE when "Cấp xã" is among its levels)
    or a city's official list `code,name,field,level` with level commune/department or
    Cấp xã/Cấp tỉnh/Cấp sở. New fields get a default intake time; existing fields keep
    theirs (it may have been learnt). Raises ImportFileError, changing nothing, on a
    malformed row. Invalidates the in-process catalogue index.
    """
    parsed, skipped = _parse_procedures(path)
    fields = {f.name: f for f in session.scalars(select(Field))}
    for name in sorted({p.field for p in parsed} - fields.keys()):
        fields[name] = Field(name=name, intake_minutes=field_intake_minutes(name))
        session.add(fields[name])
    session.flush()

    existing = {p.code: p for p in session.scalars(select(Procedure))}
    report = ImportReport(skipped=skipped)
    for item in parsed:
        values = {
            "name": item.name,
            "name_folded": fold(item.name),
            "field_id": fields[item.field].id,
            "level": item.level,
            **item.extra,
        }
        proc = existing.get(item.code)
        if proc is None:
            session.add(Procedure(code=item.code, **values))
            report.created += 1
        elif _assign(proc, values):
            report.updated += 1
        else:
            report.unchanged += 1
    session.flush()
    catalogue.index.invalidate()
    return report
