"""The operator CLI, run through Flask's CLI runner against a real database."""

from __future__ import annotations

import csv
import re
import stat
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from werkzeug.security import check_password_hash

from core.access.principals import principal_for_token, staff_by_login
from core.common.timeutil import local_day
from core.common.tokens import token_hash
from core.models import (
    Centre,
    CentreKind,
    Counter,
    Device,
    DeviceKind,
    Procedure,
    ProcedureLevel,
    Role,
    Service,
    Slot,
    Staff,
    StaffToken,
    service_fields,
)
from tests.conftest import both_databases
from web.clock import clock
from web.extensions import db

UNIT_HEADER = [
    "code",
    "name",
    "type",
    "lat",
    "lon",
    "area_km2",
    "admin_centre_address",
    "legacy_wards",
    "legacy_ward_codes",
    "legacy_districts",
    "legacy_province",
]
BEN_THANH_WARDS = "Phường Bến Thành; Phường Phạm Ngũ Lão"
UNITS = [
    [
        "26743",
        "Phường Bến Thành",
        "phường",
        "10.77",
        "106.69",
        "1.85",
        "",
        BEN_THANH_WARDS,
        "",
        "Quận 1",
        "",
    ],
    ["27001", "Xã Cần Giờ", "xã", "10.41", "106.95", "120.5", "", "Xã Long Hòa", "", "", ""],
    [
        "79",
        "Trung tâm Phục vụ hành chính công",
        "thành phố",
        "10.84",
        "106.76",
        "",
        "",
        "",
        "",
        "",
        "",
    ],
]
PROCEDURES = [
    ["HCM.1", "Đăng ký khai sinh", "Hộ tịch", "Cấp xã"],
    ["HCM.2", "Chứng thực bản sao từ bản chính", "Chứng thực", "commune"],
    ["HCM.3", "Đăng ký biến động đất đai", "Đất đai", "Cấp xã"],
    ["HCM.4", "Đăng ký thường trú", "Đăng ký, quản lý cư trú", "Cấp xã"],
    ["HCM.5", "Hoàn thuế", "Thuế", "Cấp xã"],
    ["HCM.6", "Cấp giấy phép xây dựng", "Hoạt động xây dựng", "Cấp tỉnh"],
    ["HCM.7", "Cấp phiếu lý lịch tư pháp", "Lý lịch tư pháp", "Cấp sở"],
]


@pytest.fixture
def app_config(now):
    return {"CLOCK": lambda: now}


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def files(tmp_path) -> dict[str, Path]:
    def write(name: str, header: list[str], rows: list[list[str]]) -> Path:
        path = tmp_path / name
        with open(path, "w", encoding="utf-8", newline="") as f:
            csv.writer(f).writerows([header, *rows])
        return path

    return {
        "units": write("units.csv", UNIT_HEADER, UNITS),
        "procedures": write("official.csv", ["code", "name", "field", "level"], PROCEDURES),
        "bad": write("bad.csv", ["code", "name", "field", "level"], [["X", "Y", "Z", "huyện"]]),
    }


def run(runner, *args: str, ok: bool = True, **kw):
    result = runner.invoke(args=list(args), **kw)
    if ok:
        assert result.exit_code == 0, result.output + repr(result.exception)
    # The test shares the CLI's session: end its snapshot so it sees what the CLI committed.
    db.session.rollback()
    return result


def count(model, *where) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


@pytest.fixture
def small_city(runner, files):
    run(runner, "import", "centres", "--file", str(files["units"]))
    run(runner, "import", "procedures", "--file", str(files["procedures"]))


def test_import_centres_and_procedures_from_files_idempotently(runner, files):
    first = run(runner, "import", "centres", "--file", str(files["units"]))
    again = run(runner, "import", "centres", "--file", str(files["units"]))
    procs = run(runner, "import", "procedures", "--file", str(files["procedures"]))

    assert "centres from units.csv: 3 created, 0 updated, 0 unchanged" in first.output
    assert "0 created, 0 updated, 3 unchanged" in again.output
    assert "procedures from official.csv: 7 created" in procs.output
    assert count(Centre) == 3
    assert count(Procedure, Procedure.level == ProcedureLevel.DEPARTMENT) == 2


def test_a_bad_file_is_refused_with_the_reason(runner, files):
    result = run(runner, "import", "procedures", "--file", str(files["bad"]), ok=False)

    assert result.exit_code == 1
    assert "row 2: unknown level 'huyện'" in result.output
    assert count(Procedure) == 0
    missing = run(runner, "import", "centres", "--file", "/nonexistent.csv", ok=False)
    assert missing.exit_code == 2 and "does not exist" in missing.output


@both_databases
def test_seed_demo_prints_secrets_once_and_keeps_them_owner_only(app, runner, small_city):
    first = run(runner, "seed", "demo")
    second = run(runner, "seed", "demo")

    assert "3 centres laid out" in first.output
    for username in ("admin", "operator", "benthanh.manager", "benthanh.officer1"):
        assert re.search(rf"{re.escape(username)}\s+password \S{{16}}", first.output)
    assert "0 centres laid out, 0 hubs added, 0 services" in second.output
    assert "password" not in second.output and "token" not in second.output
    saved = Path(app.instance_path) / "demo-credentials.txt"
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert saved.read_text(encoding="utf-8").count("password") == 5
    # What was printed is what logs in.
    password = re.search(r"benthanh\.manager\s+password (\S+)", first.output).group(1)
    manager = db.session.scalars(select(Staff).where(Staff.username == "benthanh.manager")).one()
    assert check_password_hash(manager.password_hash, password)
    assert manager.role is Role.MANAGER and manager.centre.name == "Phường Bến Thành"
    token = re.search(r"kiosk\s+Kiosk 1\s+token\s+(\S+)", first.output).group(1)
    kiosk = db.session.scalars(select(Device).where(Device.kind == DeviceKind.KIOSK)).one()
    assert kiosk.token_hash == token_hash(token) and token not in kiosk.token_hash


def test_slots_generate_reports_and_is_idempotent(runner, small_city, now):
    run(runner, "seed", "demo")

    first = run(runner, "slots", "generate", "--days", "3")
    second = run(runner, "slots", "generate", "--days", "3")

    created = int(re.search(r"slots for 3 days: (\d+) created", first.output).group(1))
    assert created == count(Slot) > 0
    assert re.search(r"0 created, 0 resized, 0 removed, 0 booked kept \(\d+\.\d s\)", second.output)
    last = local_day(now) + timedelta(days=2)
    assert db.session.scalar(select(func.max(Slot.day))) <= last


def test_staff_create_prompts_for_the_password(runner, small_city):
    made = run(
        runner,
        "staff",
        "create",
        "Lan.Nguyen",
        "--role",
        "officer",
        "--centre",
        "26743",
        input="mật-khẩu-dài\nmật-khẩu-dài\n",
    )
    taken = run(
        runner,
        "staff",
        "create",
        "lan.nguyen",
        "--role",
        "admin",
        input="x" * 10 + "\n" + "x" * 10 + "\n",
        ok=False,
    )
    no_centre = run(
        runner, "staff", "create", "hoa", "--role", "manager", "--password", "long-enough", ok=False
    )
    short = run(
        runner, "staff", "create", "hoa", "--role", "admin", "--password", "short", ok=False
    )
    unknown = run(
        runner,
        "staff",
        "create",
        "hoa",
        "--role",
        "officer",
        "--centre",
        "99999",
        "--password",
        "long-enough",
        ok=False,
    )

    assert "created officer lan.nguyen at Phường Bến Thành" in made.output
    staff = db.session.scalars(select(Staff)).one()
    assert check_password_hash(staff.password_hash, "mật-khẩu-dài")
    assert "username_taken" in taken.output
    assert "centre: centre_required" in no_centre.output
    assert "password: password_too_short" in short.output
    assert "no centre with code '99999'" in unknown.output
    assert count(Staff) == 1


def test_device_create_prints_its_token_once(runner, small_city):
    result = run(
        runner,
        "device",
        "create",
        "--kind",
        "display",
        "--centre",
        "26743",
        "--name",
        "Màn hình sảnh",
    )

    token = re.search(r"token \(shown once, store it on the device\): (\S+)", result.output).group(
        1
    )
    device = db.session.scalars(select(Device)).one()
    assert (device.kind, device.name) == (DeviceKind.DISPLAY, "Màn hình sảnh")
    assert device.token_hash == token_hash(token)
    bad = run(
        runner,
        "device",
        "create",
        "--kind",
        "printer",
        "--centre",
        "26743",
        "--name",
        "x",
        ok=False,
    )
    assert bad.exit_code == 2 and count(Device) == 1


@pytest.fixture
def officer(runner, small_city):
    run(
        runner,
        "staff",
        "create",
        "lan",
        "--role",
        "officer",
        "--centre",
        "26743",
        "--password",
        "mật-khẩu-dài",
    )
    return db.session.scalars(select(Staff)).one()


def holder(token: str):
    return principal_for_token(db.session(), token, devices=False, staff=True, now=clock())


@both_databases
def test_staff_token_prints_one_token_alone_on_stdout(runner, officer, now):
    result = run(runner, "staff", "token", "LAN", "--days", "7", "--name", "xuất số liệu")
    default = run(runner, "staff", "token", "lan")

    token = result.stdout.strip()
    assert "\n" not in token and len(token) >= 40
    assert "API token of lan, valid until 2026-12-14T08:00:00+07:00 (shown once)" in result.stderr
    assert "valid until 2027-01-06T08:00:00+07:00" in default.stderr  # STAFF_TOKEN_DAYS: 30
    assert holder(token).id == officer.id
    assert holder(default.stdout.strip()).id == officer.id
    rows = db.session.scalars(select(StaffToken).order_by(StaffToken.id)).all()
    assert [(r.name, r.expires_at) for r in rows] == [
        ("xuất số liệu", now + timedelta(days=7)),
        ("", now + timedelta(days=30)),
    ]
    assert rows[0].token_hash == token_hash(token)


def test_staff_token_refuses_bad_days_and_unknown_accounts(runner, officer):
    for days in ("0", "366"):
        refused = run(runner, "staff", "token", "lan", "--days", days, ok=False)
        assert refused.exit_code == 2 and "from 1 to 365 (STAFF_TOKEN_MAX_DAYS)" in refused.output
    unknown = run(runner, "staff", "token", "nobody", ok=False)
    assert unknown.exit_code == 2 and "no staff account 'nobody'" in unknown.output
    run(runner, "staff", "deactivate", "lan")
    inactive = run(runner, "staff", "token", "lan", ok=False)
    assert inactive.exit_code == 1 and "staff_inactive" in inactive.output
    assert count(StaffToken) == 0


@both_databases
def test_staff_password_prompts_twice_and_revokes_the_tokens(runner, officer):
    token = run(runner, "staff", "token", "lan").stdout.strip()
    assert holder(token) is not None

    changed = run(runner, "staff", "password", "lan", input="mật-khẩu-mới\nmật-khẩu-mới\n")
    mismatch = run(
        runner, "staff", "password", "lan", input="một-mật-khẩu\nmột-khác-nữa\n" * 3, ok=False
    )
    short = run(runner, "staff", "password", "lan", "--password", "ngắn", ok=False)

    assert "password of lan changed; 1 API token(s) revoked" in changed.output
    assert holder(token) is None and count(StaffToken) == 0
    assert mismatch.exit_code != 0 and "password: password_too_short" in short.output
    assert auth_login("lan", "mật-khẩu-mới") and not auth_login("lan", "mật-khẩu-dài")


def auth_login(username: str, password: str) -> bool:
    return staff_by_login(db.session, username, password) is not None


@both_databases
def test_staff_deactivate_revokes_the_tokens(runner, officer):
    token = run(runner, "staff", "token", "lan").stdout.strip()
    assert holder(token) is not None

    result = run(runner, "staff", "deactivate", "lan")

    assert "lan deactivated; 1 API token(s) revoked" in result.output
    assert holder(token) is None and count(StaffToken) == 0
    assert not db.session.get(Staff, officer.id).active
    assert not auth_login("lan", "mật-khẩu-dài")


def test_demo_setup_builds_the_whole_city_once(app, runner):
    first = run(runner, "demo", "setup")
    second = run(runner, "demo", "setup")

    assert "centres from hcmc_units.csv: 168 created" in first.output
    assert "centres from city_centres.csv: 1 created" in first.output
    assert "procedures from procedures.csv: 1601 created" in first.output
    assert "demo city ready" in first.output and "demo city ready" in second.output
    assert "0 created, 0 resized, 0 removed" in second.output
    assert "password" not in second.output
    assert count(Centre) == 169
    assert count(Centre, Centre.is_hub.is_(True)) == 38
    assert count(Staff) == 2 + 3 * 3
    assert count(Device) == 6
    _every_centre_takes_its_procedures()
    _counters_are_sized_to_the_centre()
    slot_days = db.session.scalar(select(func.count(func.distinct(Slot.day))))
    assert count(Slot) > 100_000 and slot_days >= 9


def _every_centre_takes_its_procedures() -> None:
    """Commune-level at every centre; department-level at the City centre and the hubs."""
    covered: dict[int, set[tuple[int, ProcedureLevel]]] = {}
    levels = dict(db.session.execute(select(Service.id, Service.level)).all())
    centre_of = dict(db.session.execute(select(Service.id, Service.centre_id)).all())
    for service_id, field_id in db.session.execute(select(service_fields)):
        level = levels[service_id]
        for lv in [level] if level else list(ProcedureLevel):
            covered.setdefault(centre_of[service_id], set()).add((field_id, lv))
    procedures = db.session.execute(select(Procedure.code, Procedure.field_id, Procedure.level))
    procedures = procedures.all()
    for centre in db.session.scalars(select(Centre)):
        offers_department = centre.is_hub or centre.kind is CentreKind.CITY
        for code, field_id, level in procedures:
            expected = level is ProcedureLevel.COMMUNE or offers_department
            assert ((field_id, level) in covered[centre.id]) == expected, (centre.name, code)
    # The same answer through the model's own rule, at one hub.
    go_vap = db.session.scalars(select(Centre).where(Centre.name == "Phường Gò Vấp")).one()
    for proc in db.session.scalars(select(Procedure).limit(50)):
        assert any(s.takes(proc) for s in go_vap.services), proc.code


def _counters_are_sized_to_the_centre() -> None:
    sizes = dict(
        db.session.execute(
            select(Centre.name, func.count(Counter.id)).join(Counter).group_by(Centre.name)
        ).all()
    )
    hubs = set(db.session.scalars(select(Centre.name).where(Centre.is_hub.is_(True))))
    for name, size in sizes.items():
        if name.startswith("Trung tâm"):
            assert 60 <= size <= 70
        elif name in hubs:
            assert 5 + 3 <= size <= 20 + 5, name
        else:
            assert 5 <= size <= 20, name
    # The two centres whose size the city has published (DESIGN §1).
    assert sizes["Phường Gò Vấp"] >= 20 and sizes["Phường Bến Thành"] == 5
