"""The ``telehealth`` command: serve, migrate, seed-demo, create-user, create-client, check,
audit verify, audit export."""

from __future__ import annotations

import asyncio
import getpass
import os
import shutil
import sys
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TextIO, TypeVar

import click
import uvicorn
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import select

from telehealth.auth import two_factor
from telehealth.auth.audit import Actor, append_audit, audit_row
from telehealth.auth.audit_keeping import export_lines, verify_chain
from telehealth.auth.models import AuditOutcome, Role, UserAccount
from telehealth.auth.service import NewAccount, create_account, create_client
from telehealth.backup import BackupError, backup, restore
from telehealth.db import Database
from telehealth.demo import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_PASSWORD,
    demo_accounts,
    seed_demo,
)
from telehealth.directory.models import Organization
from telehealth.errors import NotFound, TelehealthError
from telehealth.migrate import head_revision, schema_state
from telehealth.reactions import open_database, upgrade_database
from telehealth.settings import Settings
from telehealth.timeutil import as_utc

T = TypeVar("T")


def _with_db(settings: Settings, work: Callable[[Database], Awaitable[T]]) -> T:
    async def run() -> T:
        db = open_database(settings)  # the CLI's units of work write FHIR versions too
        try:
            return await work(db)
        finally:
            await db.dispose()

    return asyncio.run(run())


@click.group()
def main() -> None:
    """Telehealth: remote consults for provincial health networks."""


@main.command()
def migrate() -> None:
    """Apply database migrations up to the newest."""
    settings = Settings()
    try:
        upgrade_database(settings.resolved_database_url)
    except (OSError, SQLAlchemyError) as exc:
        raise click.ClickException(f"cannot migrate: {exc.__class__.__name__}: {exc}") from exc
    click.echo(f"database schema is current ({head_revision()})")


@main.command()
@click.option("--host", default=None, help="address to listen on (TELEHEALTH_HOST)")
@click.option("--port", type=int, default=None, help="port to listen on (TELEHEALTH_PORT)")
@click.option(
    "--demo", is_flag=True, help="load the demo province on first start and print its logins"
)
@click.option(
    "--migrate/--no-migrate",
    "apply_migrations",
    default=None,
    help="apply pending migrations first (default: yes on SQLite, no on PostgreSQL)",
)
@click.option(
    "--workers", type=int, default=1, show_default=True, help="worker processes (PostgreSQL only)"
)
def serve(
    host: str | None, port: int | None, demo: bool, apply_migrations: bool | None, workers: int
) -> None:
    """Run the service."""
    # Here, not at the top: the application's imports cost every other command a second.
    from telehealth.app import configure_logging

    settings = Settings()
    configure_logging(settings.log_level)
    if workers > 1 and settings.is_sqlite:
        raise click.UsageError("several workers need PostgreSQL (set TELEHEALTH_DATABASE_URL)")
    if workers > 1:
        _share_metrics(settings)
    if apply_migrations if apply_migrations is not None else settings.is_sqlite:
        upgrade_database(settings.resolved_database_url)
    state = _with_db(settings, schema_state)
    if not state.is_current:
        raise click.ClickException(
            f"database schema is at {state.current or 'nothing'}, the code needs {state.head}: "
            "run 'telehealth migrate' (or serve --migrate)"
        )
    if demo:
        _seed_and_show(settings)
    settings.signing_key  # noqa: B018  (generate the key file now, before workers race for it)
    host, port = host or settings.host, port or settings.port
    click.echo(f"Telehealth is listening on http://{host}:{port}  (API docs: /schema/swagger)")
    uvicorn.run(
        "telehealth.app:create_app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,
        log_level=settings.log_level.lower(),
        proxy_headers=True,
        # On SIGTERM, requests in flight get this long to finish; then open connections (a
        # browser's live-update socket, a stalled client) are closed rather than waited on.
        timeout_graceful_shutdown=30,
    )


def _share_metrics(settings: Settings) -> None:
    """Worker processes count into one directory, which a scrape of any of them sums
    (prometheus-client's multiprocess mode). Emptied at each start, so that the counts of an
    earlier run's processes do not carry over, unless the operator named a directory."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return
    directory = settings.data_dir / "metrics"
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True, mode=0o700)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)


def _seed_and_show(settings: Settings) -> None:
    async def work(db: Database) -> None:
        async with db.unit_of_work() as session:
            created = await seed_demo(session, settings)
            logins = created if created is not None else await demo_accounts(session)
        click.echo(f"Demo logins (password for all: {DEMO_PASSWORD}):")
        for login in logins:
            code = " (+ app code)" if two_factor.required_for(settings, login.role) else ""
            click.echo(f"  {login.username:<12} {login.role.value:<14} {login.facility}{code}")
        click.echo(
            "(+ app code): a second factor is required: the first login shows a QR code to scan "
            "with an authenticator app on a phone"
        )
        click.echo(f"Demo system client: {DEMO_CLIENT_ID} / {DEMO_CLIENT_SECRET}")

    _with_db(settings, work)


@main.command("seed-demo")
def seed_demo_command() -> None:
    """Load the demo province (once) and print its logins."""
    settings = Settings()
    upgrade_database(settings.resolved_database_url) if settings.is_sqlite else None
    _seed_and_show(settings)


async def _organization_id(db: Database, moh_code: str) -> uuid.UUID:
    async with db.unit_of_work() as session:
        org = (
            await session.exec(select(Organization).where(Organization.moh_code == moh_code))
        ).first()
    if org is None:
        raise click.ClickException(f"no facility with Ministry code {moh_code}")
    return org.id


@main.command("create-user")
@click.option("--username", required=True)
@click.option("--name", "display_name", required=True, help="name shown to others")
@click.option("--role", type=click.Choice([r.value for r in Role]), required=True)
@click.option("--facility", "moh_code", required=True, help="Ministry code of the user's facility")
@click.option("--language", type=click.Choice(["vi", "en"]), default="vi")
@click.option(
    "--password-stdin",
    is_flag=True,
    help="read the password from the first line of standard input (for scripts)",
)
def create_user(
    username: str,
    display_name: str,
    role: str,
    moh_code: str,
    language: str,
    password_stdin: bool,
) -> None:
    """Create a person's account (asks for the password, or reads it with --password-stdin)."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            raise click.ClickException("the two passwords differ")

    settings = Settings()

    async def work(db: Database) -> None:
        org_id = await _organization_id(db, moh_code)
        async with db.unit_of_work() as session:
            await create_account(
                session,
                settings,
                None,
                NewAccount(
                    username=username,
                    password=password,
                    display_name=display_name,
                    role=Role(role),
                    organization_id=org_id,
                    language=language,
                ),
            )

    try:
        _with_db(settings, work)
    except TelehealthError as exc:
        raise click.ClickException(exc.detail) from exc
    click.echo(f"created {role} account {username}")


@main.command("reset-two-factor")
@click.argument("username")
def reset_two_factor_command(username: str) -> None:
    """Remove a person's authenticator (a lost phone and lost recovery codes, with no other
    administrator to do it); their sessions end, and they enrol again at the next login."""
    settings = Settings()

    async def work(db: Database) -> None:
        async with db.unit_of_work() as session:
            account = (
                await session.exec(select(UserAccount).where(UserAccount.username == username))
            ).first()
            if account is None:
                raise NotFound(f"No account named '{username}'")
            await two_factor.reset(session, account)
            await append_audit(
                session,
                [
                    audit_row(
                        Actor("system", None, "cli.reset-two-factor"),
                        "two-factor-reset",
                        "UserAccount",
                        str(account.id),
                        AuditOutcome.SUCCESS,
                    )
                ],
            )

    try:
        _with_db(settings, work)
    except TelehealthError as exc:
        raise click.ClickException(exc.detail) from exc
    click.echo(f"two-factor sign-in of {username} reset: they enrol again at the next login")


@main.command("create-client")
@click.option("--client-id", required=True)
@click.option("--name", required=True)
@click.option("--scopes", required=True, help="e.g. 'system/Patient.rs system/Appointment.cruds'")
@click.option("--facility", "moh_code", default=None, help="Ministry code of the owning facility")
def create_client_command(client_id: str, name: str, scopes: str, moh_code: str | None) -> None:
    """Create a system client; prints its secret once."""

    async def work(db: Database) -> str:
        org_id = await _organization_id(db, moh_code) if moh_code else None
        async with db.unit_of_work() as session:
            _, secret = await create_client(
                session, None, client_id=client_id, name=name, scopes=scopes, organization_id=org_id
            )
        return secret

    try:
        secret = _with_db(Settings(), work)
    except TelehealthError as exc:
        raise click.ClickException(exc.detail) from exc
    click.echo(
        f"client_id={client_id}\nclient_secret={secret}\n(store the secret now; it is not shown again)"
    )


@main.command("backup")
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False))
def backup_command(directory: Path) -> None:
    """Copy the database (pg_dump or SQLite's backup API) and every stored file into a new
    DIRECTORY, with a manifest of row counts and file hashes; safe while the service runs."""
    try:
        manifest = asyncio.run(backup(Settings(), directory))
    except BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        f"backed up {sum(manifest.rows.values())} rows in {len(manifest.rows)} tables and "
        f"{len(manifest.files)} files to {directory}"
    )
    if manifest.secret_key_from_environment:
        click.echo("the signing key comes from TELEHEALTH_SECRET_KEY: keep it with the backup")


@main.command("restore")
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False, exists=True))
def restore_command(directory: Path) -> None:
    """Restore a backup DIRECTORY into an empty database and data directory, then check every
    table's row count and every file's hash against the backup's manifest."""
    try:
        report = asyncio.run(restore(Settings(), directory))
    except BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        f"restored {report.rows} rows in {report.tables} tables and {report.files} files; "
        "all match the backup"
    )


@main.command()
def check() -> None:
    """Check the configuration and that the database is reachable and current."""
    settings = Settings()
    click.echo(f"database: {settings.resolved_database_url.split('@')[-1]}")
    if not settings.secret_key:
        click.echo(
            "warning: TELEHEALTH_SECRET_KEY is not set; using a key generated in the data directory"
        )
    try:
        state = _with_db(settings, schema_state)
    except Exception as exc:
        raise click.ClickException(
            f"database unreachable: {exc.__class__.__name__}: {exc}"
        ) from exc
    if not state.is_current:
        raise click.ClickException(
            f"schema at {state.current or 'nothing'}, code needs {state.head}"
        )
    click.echo(f"schema current ({state.head}); ok")


@main.group()
def audit() -> None:
    """The audit log's hash chain: verify it, export it."""


@audit.command("verify")
def audit_verify() -> None:
    """Check that no audit row was changed, deleted or inserted since it was written; names
    the first that was, and exits non-zero."""
    verification = _with_db(Settings(), verify_chain)
    if verification.broken is not None:
        raise click.ClickException(
            f"{verification.broken} ({verification.rows} rows before it verified)"
        )
    start = verification.start.seq
    since = f"after the checkpoint at seq {start}" if start else "from the first row"
    click.echo(
        f"audit chain intact: {verification.rows} rows verified {since}, "
        f"up to seq {verification.tail.seq}"
    )


@contextmanager
def _private_output(path: Path | None) -> Iterator[TextIO]:
    """Standard output, or a new file only its owner can read (the audit names patients)."""
    if path is None:
        yield sys.stdout
        return
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)  # a file that was there keeps its mode otherwise
    with open(descriptor, "w", encoding="utf-8") as file:
        yield file


@audit.command("export")
@click.option(
    "--since",
    type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S%z"]),
    default=None,
    help="from the first row recorded at or after this time (ISO 8601, UTC unless it says)",
)
@click.option(
    "--after-seq",
    type=click.IntRange(min=0),
    default=0,
    help="only rows after this seq (the last one a previous export wrote)",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="file to write (default: standard output)",
)
def audit_export(since: datetime | None, after_seq: int, out: Path | None) -> None:
    """Write the audit log as JSON lines, one row a line in chain order, with seq, prev_hash
    and hash, for a central log server (which can re-check the chain; see docs/security.md)."""
    start = None if since is None else as_utc(since)
    with _private_output(out) as sink:
        count = _with_db(Settings(), lambda db: export_lines(db, sink, start, after_seq))
    click.echo(f"exported {count} audit rows", err=True)
