"""`flask scheduler run | list | run-job <id>`."""

from __future__ import annotations

import signal
import sys
from types import FrameType

import click
from flask import current_app
from flask.cli import AppGroup

from scheduler.lock import lock_for
from scheduler.runner import Runner, run_job
from scheduler.schedule import JOBS, JOBS_BY_ID

scheduler_cli = AppGroup("scheduler", help="Timed jobs: no-shows, reminders, purge, statistics.")


@scheduler_cli.command("run")
def run_command() -> None:
    """Run the schedule in this process; a second copy stands by and takes over when the
    first dies (leader lock: PostgreSQL advisory lock, or a file lock on SQLite)."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    cfg = app.config
    runner = Runner(
        app,
        lock_for(cfg["DATABASE_URL"], app.instance_path),
        poll_seconds=cfg["SCHEDULER_POLL_SECONDS"],
    )

    def stop(signum: int, _frame: FrameType | None) -> None:
        click.echo(f"scheduler: signal {signum}, stopping", err=True)
        runner.stop.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    runner.run_forever()


@scheduler_cli.command("list")
def list_command() -> None:
    """The jobs, by stable id, and when they run."""
    cfg = current_app.config
    width = max(len(spec.id) for spec in JOBS)
    for spec in JOBS:
        doc = (spec.func.__doc__ or "").strip().splitlines()[0]
        click.echo(f"{spec.id:<{width}}  {spec.every(cfg):<44}  {doc}")


@scheduler_cli.command("run-job")
@click.argument("job_id", type=click.Choice(sorted(JOBS_BY_ID)))
def run_job_command(job_id: str) -> None:
    """Run one job now, in this process (the jobs are safe to run beside the scheduler)."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    try:
        summary = run_job(app, JOBS_BY_ID[job_id])
    except Exception as exc:
        raise click.ClickException(f"{job_id} failed: {exc}") from exc
    click.echo(f"{job_id}: {summary}")
    sys.stdout.flush()
