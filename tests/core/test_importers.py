"""Importing centres and the procedure catalogue from the project's data and from a city's CSV."""

from __future__ import annotations

import csv
import unicodedata
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select

from core.catalogue import search as catalogue
from core.common.text import fold, nfc
from core.models import Centre, CentreKind, Field, Procedure, ProcedureLevel
from core.places.directory import search_centres
from core.places.importers import (
    ImportFileError,
    field_intake_minutes,
    import_centres,
    import_procedures,
    opens_saturday,
)
from tests.conftest import both_databases
from web.db import transaction

DATA = Path(__file__).resolve().parents[2] / "data"
UNITS = DATA / "hcmc_units.csv"
CITY = DATA / "city_centres.csv"
PROCEDURES = DATA / "procedures.csv"


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _write(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _import_centres(*paths: Path):
    reports = []
    for path in paths:
        with transaction() as session:
            reports.append(import_centres(session, path))
    return reports


def _import_procedures(path: Path):
    with transaction() as session:
        return import_procedures(session, path)


def _count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


# --- centres ---------------------------------------------------------------------------


@both_databases
def test_the_168_units_and_the_city_centre_import_once(session):
    units, city = _import_centres(UNITS, CITY)

    assert (units.created, city.created) == (168, 1)
    kinds = Counter(session.scalars(select(Centre.kind)))
    assert kinds == {
        CentreKind.WARD: 113,
        CentreKind.COMMUNE: 54,
        CentreKind.SPECIAL_ZONE: 1,
        CentreKind.CITY: 1,
    }
    again = _import_centres(UNITS, CITY)
    assert [(r.created, r.updated, r.unchanged) for r in again] == [(0, 0, 168), (0, 0, 1)]
    assert _count(session, Centre) == 169


def test_centre_attributes_follow_the_file(session):
    _import_centres(UNITS, CITY)
    sai_gon = session.scalars(select(Centre).where(Centre.code == "26740")).one()

    assert sai_gon.name == "Phường Sài Gòn"
    assert sai_gon.kind is CentreKind.WARD
    assert sai_gon.address.startswith("45 - 47 Lê Duẩn")
    row = next(r for r in _rows(UNITS) if r["code"] == "26740")
    assert (sai_gon.lat, sai_gon.lon, sai_gon.area_km2) == (
        float(row["lat"]),
        float(row["lon"]),
        float(row["area_km2"]),
    )
    assert "Phường Bến Nghé" in sai_gon.legacy_names and "Quận 1" in sai_gon.legacy_names
    assert "mot phan" not in sai_gon.search_text
    city = session.scalars(select(Centre).where(Centre.kind == CentreKind.CITY)).one()
    assert city.name == "Trung tâm Phục vụ hành chính công Thành phố Hồ Chí Minh"
    for centre in session.scalars(select(Centre)):
        assert unicodedata.is_normalized("NFC", centre.name)


def test_old_ward_names_find_the_new_centre(session):
    _import_centres(UNITS, CITY)

    def names(q: str) -> list[str]:
        return [c.name for c in search_centres(session, q)]

    assert "Phường Sài Gòn" in names("Ben Nghe")
    assert "Phường Bến Thành" in names("phạm ngũ lão")
    # An old district name finds the wards carved from it; the current name comes first.
    assert names("Ben Thanh")[0] == "Phường Bến Thành"
    assert "Phường Gò Vấp" in names("quan go vap")


def test_weekday_hours_everywhere_and_saturday_morning_at_about_half(session):
    _import_centres(UNITS, CITY)
    centres = session.scalars(select(Centre)).all()

    saturday = [c for c in centres if "5" in c.opening_hours]
    assert all(c.opening_hours["0"] == [["07:30", "11:30"], ["13:00", "17:00"]] for c in centres)
    assert all(c.opening_hours["5"] == [["07:30", "11:30"]] for c in saturday)
    assert all("6" not in c.opening_hours for c in centres)
    assert 0.35 < len(saturday) / len(centres) < 0.65
    assert {c.code for c in saturday} == {c.code for c in centres if opens_saturday(c.code)}


def test_reimport_corrects_names_but_keeps_an_operators_hours(session):
    _import_centres(UNITS)
    centre = session.scalars(select(Centre).where(Centre.code == "26743")).one()
    centre.name = "Phuong Ben Thanh (typo)"
    centre.opening_hours = {"0": [["08:00", "12:00"]]}
    session.commit()

    (report,) = _import_centres(UNITS)

    assert (report.updated, report.unchanged) == (1, 167)
    centre = session.scalars(select(Centre).where(Centre.code == "26743")).one()
    assert centre.name == "Phường Bến Thành"
    assert centre.opening_hours == {"0": [["08:00", "12:00"]]}


def test_a_bad_centre_file_changes_nothing(session, tmp_path):
    header = ["code", "name", "type", "lat", "lon"]
    bad = _write(
        tmp_path / "units.csv",
        header,
        [["90001", "Phường Một", "phường", "10.7", "106.7"], ["90002", "Xã Hai", "thôn", "", ""]],
    )
    with pytest.raises(ImportFileError, match="row 3: unknown type 'thôn'"):
        _import_centres(bad)
    assert _count(session, Centre) == 0

    no_type = _write(tmp_path / "no_type.csv", ["code", "name"], [["1", "x"]])
    with pytest.raises(ImportFileError, match="missing column"):
        _import_centres(no_type)
    with pytest.raises(ImportFileError, match="cannot read"):
        _import_centres(tmp_path / "absent.csv")


# --- procedures ------------------------------------------------------------------------


@both_databases
def test_national_catalogue_rows_for_city_centres_import_once(session):
    rows = _rows(PROCEDURES)
    taken = [r for r in rows if r["handled_by_province_or_commune"] == "yes"]
    commune = [r for r in taken if "Cấp xã" in r["level"]]

    report = _import_procedures(PROCEDURES)

    assert (report.created, report.skipped) == (len(taken), len(rows) - len(taken))
    levels = Counter(session.scalars(select(Procedure.level)))
    assert levels == {
        ProcedureLevel.COMMUNE: len(commune),
        ProcedureLevel.DEPARTMENT: len(taken) - len(commune),
    }
    # Some source rows spell a field in decomposed Unicode: one field either way.
    assert _count(session, Field) == len({nfc(r["field"]) for r in taken})

    again = _import_procedures(PROCEDURES)
    assert (again.created, again.updated, again.unchanged) == (0, 0, len(taken))
    assert _count(session, Procedure) == len(taken)


def test_procedure_levels_and_details(session):
    rows = {r["code"]: r for r in _rows(PROCEDURES)}
    _import_procedures(PROCEDURES)
    by_code = {p.code: p for p in session.scalars(select(Procedure))}

    for code, row in rows.items():
        if row["handled_by_province_or_commune"] != "yes":
            assert code not in by_code
            continue
        proc = by_code[code]
        levels = [part.strip() for part in row["level"].split(",")]
        expected = ProcedureLevel.COMMUNE if "Cấp xã" in levels else ProcedureLevel.DEPARTMENT
        assert proc.level is expected, code
        assert proc.field.name == nfc(row["field"])
        assert proc.name == " ".join(nfc(row["name"]).split())  # no hard line breaks
        assert unicodedata.is_normalized("NFC", proc.name)
        assert proc.source_url == row["source_url"]
        assert proc.name_folded == fold(proc.name)
        assert len(proc.processing_time) <= 200


def test_new_fields_get_an_intake_time_by_kind_of_work(session):
    _import_procedures(PROCEDURES)
    intake = dict(session.execute(select(Field.name, Field.intake_minutes)).all())

    assert intake["Hộ tịch"] == 8
    assert intake["Chứng thực"] == 7
    assert intake["Đất đai"] == 15
    assert intake["Thành lập và hoạt động doanh nghiệp (hộ kinh doanh)"] == 12
    assert intake["Hải quan"] == 10
    assert field_intake_minutes("Đăng ký, quản lý cư trú") == 8


def test_a_citys_official_list_is_accepted_and_updates_in_place(session, tmp_path):
    _import_procedures(PROCEDURES)
    known = session.scalars(
        select(Procedure).where(Procedure.level == ProcedureLevel.COMMUNE)
    ).first()
    kept_url = known.source_url
    # Warm the search index: the import must invalidate it.
    assert catalogue.index.search(session, "Cấp bản sao trích lục thử nghiệm").total == 0
    decomposed = unicodedata.normalize("NFD", "Cấp bản sao trích lục thử nghiệm")
    official = _write(
        tmp_path / "official.csv",
        ["code", "name", "field", "level"],
        [
            ["HCM.0001", decomposed, "Hộ tịch", "Cấp xã"],
            ["HCM.0002", "Cấp phép thử nghiệm", "Lĩnh vực mới", "Cấp tỉnh"],
            ["HCM.0003", "Thủ tục sở thử nghiệm", "Lĩnh vực mới", "Cấp sở"],
            ["HCM.0004", "Thủ tục xã thử nghiệm", "Lĩnh vực mới", "commune"],
            [known.code, known.name, known.field.name, "department"],
        ],
    )

    report = _import_procedures(official)

    assert (report.created, report.updated, report.skipped) == (4, 1, 0)
    new = {
        p.code: p for p in session.scalars(select(Procedure).where(Procedure.code.like("HCM.%")))
    }
    assert new["HCM.0001"].name == unicodedata.normalize("NFC", decomposed)
    assert new["HCM.0001"].field.name == "Hộ tịch"
    assert [new[c].level for c in sorted(new)] == [
        ProcedureLevel.COMMUNE,
        ProcedureLevel.DEPARTMENT,
        ProcedureLevel.DEPARTMENT,
        ProcedureLevel.COMMUNE,
    ]
    session.refresh(known)
    assert known.level is ProcedureLevel.DEPARTMENT
    assert known.source_url == kept_url  # the short format does not blank what it lacks
    hits = catalogue.index.search(session, "cap ban sao trich luc thu nghiem")
    assert [e.code for e in hits.items] == ["HCM.0001"]
    again = _import_procedures(official)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 5)


def test_a_bad_official_list_changes_nothing(session, tmp_path):
    bad = _write(
        tmp_path / "official.csv",
        ["code", "name", "field", "level"],
        [
            ["HCM.1", "Thủ tục một", "Hộ tịch", "Cấp xã"],
            ["HCM.2", "Thủ tục hai", "Hộ tịch", "cấp huyện"],
            ["", "Thủ tục ba", "Hộ tịch", "commune"],
            ["HCM.1", "Thủ tục một lần nữa", "Hộ tịch", "commune"],
        ],
    )
    with pytest.raises(ImportFileError) as caught:
        _import_procedures(bad)

    message = str(caught.value)
    assert "3 bad row(s), nothing imported" in message
    assert "row 3: unknown level 'cấp huyện'" in message
    assert "row 4: code '' must be 1–32 characters" in message
    assert "row 5: duplicate code HCM.1" in message
    assert _count(session, Procedure) == 0
    assert _count(session, Field) == 0
    wrong = _write(tmp_path / "wrong.csv", ["ma", "ten"], [["1", "x"]])
    with pytest.raises(ImportFileError, match="missing column"):
        _import_procedures(wrong)
