"""Command-line interface: `flask import …`, `flask seed demo`, `flask slots generate` …

Each command parses its options, calls one core function inside `transaction()` and
prints what happened. Secrets (passwords, device and staff tokens) are printed once, when
created.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from pathlib import Path

import click
import sqlalchemy as sa
from flask import Flask, current_app
from flask.cli import AppGroup
from sqlalchemy.orm import Session

from core import demo
from core.access import staff_tokens
from core.booking.slots import generate_slots
from core.catalogue import search as catalogue
from core.common.errors import DomainError, InvalidInput
from core.common.timeutil import iso
from core.models import Centre, DeviceKind, Role, Staff
from core.places import importers
from core.places.directory import get_centre
from display.bridge import bridge_of
from web.clock import clock
from web.db import transaction
from web.extensions import db
from web.settings import slot_policy, staff_token_days

DATA = Path(__file__).resolve().parent.parent / "data"
CENTRE_FILES = (DATA / "hcmc_units.csv", DATA / "city_centres.csv")
PROCEDURE_FILE = DATA / "procedures.csv"
CREDENTIALS_FILE = "demo-credentials.txt"

import_cli = AppGroup("import", help="Import reference data (centres, procedures).")
seed_cli = AppGroup("seed", help="Seed data for trying xephang out.")
slots_cli = AppGroup("slots", help="Bookable slots.")
staff_cli = AppGroup("staff", help="Staff accounts.")
device_cli = AppGroup("device", help="Kiosks and display boards.")
demo_cli = AppGroup("demo", help="The demo city in one go.")
board_cli = AppGroup("board", help="Live display boards.")


def init_app(app: Flask) -> None:
    # Imported here: xephang.simulate reuses this module's data files.
    from xephang.simulate import simulate_cli

    for group in (import_cli, seed_cli, slots_cli, staff_cli, device_cli, demo_cli, board_cli):
        app.cli.add_command(group)
    app.cli.add_command(simulate_cli)


# --- helpers --------------------------------------------------------------------------


def _require_schema() -> None:
    if not sa.inspect(db.engine).has_table("centres"):
        raise click.ClickException("the database has no tables yet: run `flask db upgrade` first")


def _fail(exc: DomainError) -> click.ClickException:
    if isinstance(exc, InvalidInput):
        return click.ClickException(
            "; ".join(f"{field}: {code}" for field, code in exc.errors.items())
        )
    return click.ClickException(str(exc) if str(exc) != exc.code else exc.code)


def _centre(code: str) -> Centre:
    centre = get_centre(db.session, code.strip())
    if centre is None:
        raise click.BadParameter(f"no centre with code {code!r}", param_hint="--centre")
    return centre


def _staff(session: Session, username: str) -> Staff:
    # Stored lower-case (core.demo.create_staff), typed as people like.
    wanted = username.strip().lower()
    staff = session.scalars(sa.select(Staff).where(Staff.username == wanted)).one_or_none()
    if staff is None:
        raise click.BadParameter(f"no staff account {username!r}", param_hint="USERNAME")
    return staff


def _import_centres(paths: Iterable[Path]) -> None:
    for path in paths:
        try:
            with transaction() as session:
                report = importers.import_centres(session, path)
        except importers.ImportFileError as exc:
            raise click.ClickException(str(exc)) from exc
        click.echo(f"centres from {path.name}: {report}")


def _import_procedures(path: Path) -> None:
    try:
        with transaction() as session:
            report = importers.import_procedures(session, path)
    except importers.ImportFileError as exc:
        raise click.ClickException(str(exc)) from exc
    # Again after commit: a search between the importer's call and the commit would have
    # rebuilt the index from the old rows.
    catalogue.index.invalidate()
    click.echo(f"procedures from {path.name}: {report}")


def _seed_demo() -> None:
    with transaction() as session:
        report = demo.seed_demo(session, now=clock())
    for note in report.notes:
        click.secho(f"warning: {note}", fg="yellow", err=True)
    click.echo(f"demo: {report}")
    if report.credentials:
        path = _save_credentials(report.credentials)
        click.echo("New credentials (shown once; also appended to " + str(path) + "):")
        for cred in report.credentials:
            click.echo("  " + _credential_line(cred))


def _credential_line(cred: demo.Credential) -> str:
    where = f" @ {cred.centre}" if cred.centre else ""
    if cred.kind == "staff":
        return f"{cred.role:<9} {cred.name:<20} password {cred.secret}{where}"
    return f"{cred.kind:<9} {cred.name:<20} token    {cred.secret}{where}"


def _save_credentials(credentials: list[demo.Credential]) -> Path:
    """Append new demo secrets to the instance folder, readable by the owner only."""
    instance = Path(current_app.instance_path)
    instance.mkdir(parents=True, exist_ok=True)
    path = instance / CREDENTIALS_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.chmod(path, 0o600)  # an older file may have been created with wider rights
    with os.fdopen(fd, "a", encoding="utf-8") as out:
        out.write(f"# created {clock().isoformat(timespec='seconds')}\n")
        out.writelines(_credential_line(c) + "\n" for c in credentials)
    return path


def _generate_slots(days: int) -> None:
    started = time.perf_counter()
    with transaction() as session:
        report = generate_slots(session, now=clock(), days=days, policy=slot_policy())
    click.echo(
        f"slots for {days} days: {report.created} created, {report.resized} resized, "
        f"{report.removed} removed, {report.kept_booked} booked kept "
        f"({time.perf_counter() - started:.1f} s)"
    )


# --- commands -------------------------------------------------------------------------


@import_cli.command("centres")
@click.option(
    "--file",
    "files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Units CSV (repeatable). Default: data/hcmc_units.csv and data/city_centres.csv.",
)
def import_centres_command(files: tuple[Path, ...]) -> None:
    """Import or update centres by official code (idempotent)."""
    _require_schema()
    _import_centres(files or CENTRE_FILES)


@import_cli.command("procedures")
@click.option(
    "--file",
    "path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=PROCEDURE_FILE,
    show_default=True,
    help="National catalogue extract, or a city's official CSV `code,name,field,level`.",
)
def import_procedures_command(path: Path) -> None:
    """Import or update fields and procedures by code (idempotent)."""
    _require_schema()
    _import_procedures(path)


@seed_cli.command("demo")
def seed_demo_command() -> None:
    """Services, counters, area teams, accounts and devices for the demo city."""
    _require_schema()
    _seed_demo()


@slots_cli.command("generate")
@click.option("--days", type=click.IntRange(1, 120), default=None, help="Default: BOOKING_DAYS.")
def generate_slots_command(days: int | None) -> None:
    """Create or resize bookable slots from today (idempotent; booked slots are kept)."""
    _require_schema()
    _generate_slots(days or current_app.config["BOOKING_DAYS"])


@staff_cli.command("create")
@click.argument("username")
@click.option(
    "--role", type=click.Choice([r.value for r in Role]), required=True, help="Account role."
)
@click.option("--centre", "centre_code", help="Home centre code (officers and managers).")
@click.option("--full-name", default="", help="Shown in the officer's workstation.")
@click.password_option(help="Prompted when not given.")
def create_staff_command(
    username: str, role: str, centre_code: str | None, full_name: str, password: str
) -> None:
    """Create a staff account."""
    _require_schema()
    centre = _centre(centre_code) if centre_code else None
    try:
        with transaction() as session:
            staff = demo.create_staff(
                session,
                username=username,
                password=password,
                role=Role(role),
                centre=centre,
                full_name=full_name,
                now=clock(),
            )
            name = staff.username
    except DomainError as exc:
        raise _fail(exc) from exc
    where = f" at {centre.name}" if centre else ""
    click.echo(f"created {role} {name}{where}")


@staff_cli.command("token")
@click.argument("username")
@click.option("--days", type=int, default=None, help="Valid this long. Default: STAFF_TOKEN_DAYS.")
@click.option("--name", default="", help="What the token is for, e.g. 'nightly export'.")
def staff_token_command(username: str, days: int | None, name: str) -> None:
    """Issue an API token for a staff account and print it (shown only now).

    The token alone goes to standard output (`TOKEN=$(flask staff token …)`), the rest to
    standard error. It dies at its expiry, on `DELETE /api/v1/auth/token`, or when the
    account's password changes or it is deactivated.
    """
    _require_schema()
    default, maximum = staff_token_days()
    days = default if days is None else days
    if not 1 <= days <= maximum:
        raise click.BadParameter(f"from 1 to {maximum} (STAFF_TOKEN_MAX_DAYS)", param_hint="--days")
    try:
        with transaction() as session:
            staff = _staff(session, username)
            token, expires_at = staff_tokens.issue_staff_token(
                session, staff, now=clock(), days=days, max_days=maximum, name=name
            )
            who = staff.username
    except DomainError as exc:
        raise _fail(exc) from exc
    click.echo(f"API token of {who}, valid until {iso(expires_at)} (shown once):", err=True)
    click.echo(token)


@staff_cli.command("password")
@click.argument("username")
@click.password_option(help="Prompted (twice) when not given.")
def staff_password_command(username: str, password: str) -> None:
    """Set a staff account's password; its API tokens are revoked."""
    _require_schema()
    try:
        with transaction() as session:
            staff = _staff(session, username)
            revoked = staff_tokens.set_password(session, staff, password, now=clock())
            who = staff.username
    except DomainError as exc:
        raise _fail(exc) from exc
    click.echo(f"password of {who} changed; {revoked} API token(s) revoked")


@staff_cli.command("deactivate")
@click.argument("username")
def staff_deactivate_command(username: str) -> None:
    """Switch a staff account off: no sign-in, its API tokens revoked."""
    _require_schema()
    with transaction() as session:
        staff = _staff(session, username)
        revoked = staff_tokens.deactivate_staff(session, staff, now=clock())
        who = staff.username
    click.echo(f"{who} deactivated; {revoked} API token(s) revoked")


@device_cli.command("create")
@click.option("--kind", type=click.Choice([k.value for k in DeviceKind]), required=True)
@click.option("--centre", "centre_code", required=True, help="Centre code.")
@click.option("--name", required=True, help="e.g. 'Kiosk sảnh chính'.")
def create_device_command(kind: str, centre_code: str, name: str) -> None:
    """Register a kiosk or display and print its token (shown only now)."""
    _require_schema()
    centre = _centre(centre_code)
    try:
        with transaction() as session:
            _, token = demo.create_device(
                session, kind=DeviceKind(kind), centre=centre, name=name, now=clock()
            )
    except DomainError as exc:
        raise _fail(exc) from exc
    click.echo(f"created {kind} {name!r} at {centre.name}")
    click.echo(f"token (shown once, store it on the device): {token}")


@demo_cli.command("setup")
@click.option("--days", type=click.IntRange(1, 120), default=None, help="Default: BOOKING_DAYS.")
def demo_setup_command(days: int | None) -> None:
    """Import centres and procedures, seed the demo city and generate slots (idempotent)."""
    _require_schema()
    started = time.perf_counter()
    _import_centres(CENTRE_FILES)
    _import_procedures(PROCEDURE_FILE)
    _seed_demo()
    _generate_slots(days or current_app.config["BOOKING_DAYS"])
    click.echo(f"demo city ready ({time.perf_counter() - started:.1f} s)")


@board_cli.command("refresh")
@click.option("--centre", "centre_code", required=True, help="Centre code.")
def board_refresh_command(centre_code: str) -> None:
    """Push a fresh board and queue counts of a centre to its live clients now.

    From a process that serves no clients this goes through the Redis message queue
    (XEPHANG_REDIS_URL); without Redis only clients of this process could get it: none.
    """
    _require_schema()
    centre = _centre(centre_code)
    bridge = bridge_of(current_app)
    bridge.refresh_centre(centre)
    where = "through Redis" if current_app.config["REDIS_URL"] else "(no Redis: nobody to reach)"
    click.echo(f"board of {centre.name} pushed {where}")
