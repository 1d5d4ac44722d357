"""The `refuge` command: demo, serve, check, backup and restore, db upgrade, user create, ledger."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import click

from exchange.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession


@contextlib.asynccontextmanager
async def _session(database_url: str) -> AsyncIterator[AsyncSession]:
    """A session for one command; its engine closes with it."""
    from exchange.db import make_engine, make_sessionmaker

    engine = make_engine(database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            yield session
    finally:
        await engine.dispose()


@click.group()
def main() -> None:
    """Refuge Exchange: shelter beds and emergency funds for a trafficking-response network."""


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True, help="The Alembic revision to upgrade to.")
def db_upgrade(revision: str) -> None:
    """Run the Alembic migrations on DATABASE_URL."""
    from exchange.migrations import upgrade

    upgrade(Settings.from_env().database_url, revision)
    click.echo("database is at " + revision)


def _serve(host: str, port: int, workers: int) -> None:
    import uvicorn

    uvicorn.run(
        "exchange.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        proxy_headers=True,
        ws="websockets-sansio",  # the legacy "websockets" implementation is deprecated
    )


HOST_HELP = "The address to listen on (0.0.0.0 for every interface)."
PORT_HELP = "The TCP port to listen on; pick another one when it is taken."


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help=HOST_HELP)
@click.option("--port", default=8000, type=int, show_default=True, help=PORT_HELP)
@click.option("--workers", default=1, type=int, show_default=True, help="How many server processes to run.")
def serve(host: str, port: int, workers: int) -> None:
    """Serve whatever DATABASE_URL points at (run `refuge db upgrade` first)."""
    _serve(host, port, workers)


def port_problem(host: str, port: int) -> str | None:
    """Why the server could not listen on host:port (in plain words), or None when it can."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as error:
        return f"Cannot use the address {host!r}: {error.strerror}. Try --host 127.0.0.1."
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        # As uvicorn does: an address left in TIME_WAIT by a previous run is free, a listening one is not.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except PermissionError:
            return f"Port {port} needs special rights on this machine. Pick another one, e.g. --port 8080."
        except OSError:
            return (
                f"Port {port} on {host} is already in use (another `refuge demo` or another program). "
                f"Stop it, or pick another port, e.g. `refuge demo --port {port + 1 if port < 65535 else 8080}`."
            )
    return None


def _delete_demo_database(database_url: str) -> str:
    """Delete the SQLite file of the demo (and its journal files); return what was deleted."""
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    if not url.drivername.startswith("sqlite") or not url.database or url.database == ":memory:":
        raise click.UsageError(
            "--reset only deletes a SQLite demo database; DATABASE_URL points elsewhere, drop that database yourself."
        )
    path = Path(url.database)
    for leftover in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        leftover.unlink(missing_ok=True)
    return str(path)


TOUR = """
A first tour (two browsers, or one normal and one private window, side by side):
  1. Log in as `shelter` in one and `police` in the other, both on the board. On the shelter's board press
     "+1" (an Arrival) on a pool: the police board shows the new count at once, without reloading.
  2. As `police`, open Operations, plan an operation and allocate its beds; then as `shelter`, confirm the
     hold on your facility: the operation shows it confirmed.
  3. As `caseworker`, request a hotel night from the emergency fund; then as `approver`, approve it in the
     inbox (and pay it): the case worker sees the decision live.
"""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help=HOST_HELP)
@click.option("--port", default=8000, type=int, show_default=True, help=PORT_HELP)
@click.option("--no-serve", is_flag=True, help="Create and seed the database, print the logins, and stop.")
@click.option("--reset", is_flag=True, help="Delete the demo database first and seed a new network.")
def demo(host: str, port: int, no_serve: bool, reset: bool) -> None:
    """Create (or reuse) a SQLite demo database, seed a realistic network, print the logins and serve it."""
    if not no_serve:
        problem = port_problem(host, port)
        if problem:
            click.echo(problem, err=True)
            sys.exit(2)
    from exchange.demo.environment import demo_environment

    for name, value in demo_environment(host, port).items():
        os.environ.setdefault(name, value)
    settings = Settings.from_env()
    from exchange.demo.network import DEMO_PASSWORD
    from exchange.migrations import upgrade

    if reset:
        click.echo("Deleted the demo database " + _delete_demo_database(settings.database_url))
    upgrade(settings.database_url)
    seeded_now, logins = asyncio.run(_seed_if_empty(settings.database_url))
    click.echo(
        ("Seeded a new demo network in " if seeded_now else "Reusing the demo network in ") + settings.database_url
    )
    click.echo(f"\nDemo logins (password for all: {DEMO_PASSWORD}):")
    for username, roles, display in logins:
        click.echo(f"  {username:<12} {roles:<32} {display}")
    click.echo(TOUR)
    click.echo(f"Open http://{host}:{port}/ (Ctrl+C to stop; `refuge demo --reset` starts over)")
    if not no_serve:
        _serve(host, port, 1)


async def _seed_if_empty(database_url: str) -> tuple[bool, list[tuple[str, str, str]]]:
    """(whether it seeded now, each user's username, roles and display name)."""
    from exchange.demo.network import is_seeded, logins, seed
    from exchange.plugin import build_registry

    async with _session(database_url) as session:
        seeded_now = not await is_seeded(session)
        if seeded_now:
            await seed(session, build_registry(Settings.from_env()).demo_steps)
        return seeded_now, await logins(session)


@main.command()
def check() -> None:
    """Check this deployment's settings and what they point at (database, migrations, Redis, SMTP, keys); say
    what to fix in plain words, and exit 1 if anything needs fixing."""
    from exchange.ops.check import run_checks

    findings = asyncio.run(run_checks(Settings.from_env(), os.environ))
    for finding in findings:
        click.echo(finding.line())
    problems = sum(not f.ok for f in findings)
    if problems:
        click.echo(f"\n{problems} thing(s) to fix before serving real people.", err=True)
        sys.exit(1)
    click.echo("\nEverything checked is sound.")


@main.command()
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def backup(path: Path) -> None:
    """Write a consistent backup of DATABASE_URL to PATH while the app runs (PostgreSQL: pg_dump's custom
    format; SQLite: its online backup). PATH must not exist yet."""
    from exchange.ops.backup import BackupError
    from exchange.ops.backup import backup as back_up

    try:
        click.echo(back_up(Settings.from_env().database_url, path))
    except BackupError as error:
        click.echo(str(error), err=True)
        sys.exit(1)


@main.command()
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace everything a non-empty database holds with the backup.")
def restore(path: Path, force: bool) -> None:
    """Restore the backup at PATH into DATABASE_URL (an empty database unless --force), then verify the
    ledger's chains as `refuge ledger verify` does; exit 1 if either fails."""
    from exchange.ops.backup import BackupError
    from exchange.ops.backup import restore as bring_back

    settings = Settings.from_env()
    try:
        click.echo(bring_back(settings.database_url, path, force=force))
    except BackupError as error:
        click.echo(str(error), err=True)
        sys.exit(1)
    click.echo("Verifying the ledger's chains in the restored database:")
    if not asyncio.run(_ledger_verify(settings, None)):
        click.echo("The restored ledger does NOT verify: do not serve it; keep the previous database.", err=True)
        sys.exit(1)
    click.echo("Restored and verified. Run `refuge db upgrade` if this version of the code is newer than the backup.")


@main.group()
def user() -> None:
    """Users."""


@user.command("create")
@click.option("--username", required=True, help="The login name.")
@click.option("--organisation", "organisation_name", required=True, help="Organisation name (created if missing).")
@click.option(
    "--org-kind",
    default="coalition",
    show_default=True,
    type=click.Choice(["shelter", "police", "coalition", "community"]),
    help="The kind of organisation, when it is created.",
)
@click.option("--role", "roles", multiple=True, required=True, help="A role of the user; repeat for several.")
@click.option("--lead-worker", is_flag=True, help="A lead worker: small requests (food, clothing) pass at once.")
@click.password_option(help="At least 12 characters; asked for when left out.")
def user_create(
    username: str,
    organisation_name: str,
    org_kind: str,
    roles: tuple[str, ...],
    lead_worker: bool,
    password: str,
) -> None:
    """Create a user (and their organisation if it does not exist)."""
    from exchange.accounts.models import Role

    bad = [r for r in roles if r not in {x.value for x in Role}]
    if bad:
        raise click.BadParameter(f"unknown role(s): {', '.join(bad)}; known: {', '.join(r.value for r in Role)}")
    if len(password) < 12:
        raise click.BadParameter("passwords need at least 12 characters")
    asyncio.run(_create_user(username, organisation_name, org_kind, list(roles), lead_worker, password))
    click.echo(f"created {username}")


async def _create_user(
    username: str, organisation_name: str, org_kind: str, roles: list[str], lead_worker: bool, password: str
) -> None:
    from sqlalchemy import select

    from exchange.accounts.models import Organisation
    from exchange.accounts.service import create_organisation, create_user

    async with _session(Settings.from_env().database_url) as session:
        org = (
            await session.execute(select(Organisation).where(Organisation.name == organisation_name))
        ).scalar_one_or_none()
        if org is None:
            org = await create_organisation(session, name=organisation_name, kind=org_kind)
        await create_user(
            session,
            username=username,
            password=password,
            organisation_id=org.id,
            roles=roles,
            lead_worker=lead_worker,
        )


@main.group()
def ledger() -> None:
    """Emergency fund ledger."""


@ledger.command("verify")
@click.option("--fund", "fund_id", default=None, help="One fund's id; every fund when left out.")
@click.option(
    "--checkpoints",
    "checkpoint_file",
    default=None,
    type=click.Path(exists=True, dir_okay=False),
    help="Signed checkpoints kept outside the database (JSON lines); the database's when left out.",
)
def ledger_verify(fund_id: str | None, checkpoint_file: str | None) -> None:
    """Check every fund's journal and audit hash chains end to end, every posting against its audit event,
    the network chain of admin actions, and, with LEDGER_PUBLIC_KEY set, every chain against its signed
    checkpoints; exit 1 naming the first altered entry."""
    ok = asyncio.run(_ledger_verify(Settings.from_env(), fund_id, checkpoint_file))
    sys.exit(0 if ok else 1)


async def _ledger_verify(settings: Settings, fund_id: str | None, checkpoint_file: str | None = None) -> bool:
    from ledger.checkpoints import parse_checkpoint_lines
    from ledger.funds import list_funds
    from ledger.verify import verify_fund, verify_network

    public_key = settings.ledger_public_key
    checkpoints = None
    if checkpoint_file:
        with open(checkpoint_file, encoding="utf-8") as lines:  # noqa: ASYNC230 (a command, nothing else runs)
            checkpoints = parse_checkpoint_lines(lines)
    if not public_key:
        click.echo("checkpoints: not checked, LEDGER_PUBLIC_KEY is not set")

    def anchor_line(name: str, anchor) -> bool:  # type: ignore[no-untyped-def]
        if anchor is None:
            return True
        if anchor.ok:
            click.echo(f"{name} checkpoints: ok, {anchor.checked} signed, up to entry {anchor.anchored_journal}")
            return True
        click.echo(f"{name} checkpoints: BROKEN ({anchor.problem}) {anchor.bad_checkpoint_id or ''}".rstrip())
        return False

    all_ok = True
    async with _session(settings.database_url) as session:
        fund_ids = [fund_id] if fund_id else [f.id for f in await list_funds(session)]
        for fid in fund_ids:
            result = await verify_fund(session, fid, public_key=public_key, checkpoints=checkpoints)
            for name, chain in (("journal", result.journal), ("audit", result.events)):
                if chain.ok:
                    click.echo(f"{fid} {name}: ok, {chain.count} entries, head {chain.head_hash[:16]}")
                else:
                    all_ok = False
                    click.echo(
                        f"{fid} {name}: BROKEN after {chain.count} good entries: first bad entry "
                        f"{chain.first_bad_id} ({chain.problem})"
                    )
            all_ok = anchor_line(fid, result.anchor) and all_ok
        if not fund_id:
            network = await verify_network(session, public_key=public_key, checkpoints=checkpoints)
            if network.events.ok:
                click.echo(f"network: ok, {network.events.count} admin actions")
            else:
                all_ok = False
                click.echo(f"network: BROKEN at {network.events.first_bad_id} ({network.events.problem})")
            all_ok = anchor_line("network", network.anchor) and all_ok
    return all_ok


@ledger.command("checkpoint")
def ledger_checkpoint() -> None:
    """Sign every chain head that moved since its last checkpoint (LEDGER_SIGNING_KEY) and print each one;
    keep the output somewhere else than the database."""
    settings = Settings.from_env()
    if not settings.ledger_signing_key:
        click.echo("LEDGER_SIGNING_KEY is not set: no checkpoint written.", err=True)
        sys.exit(1)
    for line in asyncio.run(_ledger_checkpoint(settings)):
        click.echo(line)


async def _ledger_checkpoint(settings: Settings) -> list[str]:
    from exchange.fund.anchor import checkpoint_now
    from ledger.checkpoints import checkpoint_line

    async with _session(settings.database_url) as session:
        return [checkpoint_line(cp) for cp in await checkpoint_now(session, settings)]


@ledger.command("keygen")
def ledger_keygen() -> None:
    """A new Ed25519 key pair for the checkpoints: put the first in LEDGER_SIGNING_KEY (a secret, never in
    the database) and the second in LEDGER_PUBLIC_KEY."""
    from ledger.checkpoints import generate_keys

    private, public = generate_keys()
    click.echo(f"LEDGER_SIGNING_KEY={private}")
    click.echo(f"LEDGER_PUBLIC_KEY={public}")


@main.command("push-keygen")
def push_keygen() -> None:
    """A new VAPID key pair for Web Push: put the first in VAPID_PUBLIC_KEY and the second in VAPID_PRIVATE_KEY
    (a secret, only in the environment). Changing it later makes every phone turn notifications on again."""
    from exchange.oncall.push import new_vapid_keys

    public, private = new_vapid_keys()
    click.echo(f"VAPID_PUBLIC_KEY={public}")
    click.echo(f"VAPID_PRIVATE_KEY={private}")


@ledger.command("create-fund")
@click.option("--name", required=True, help="The fund's name.")
@click.option("--currency", default="CAD", show_default=True, help="The fund's currency (ISO 4217 code).")
def ledger_create_fund(name: str, currency: str) -> None:
    """Create a fund with its accounts and the default rule set."""
    click.echo(asyncio.run(_ledger_create_fund(Settings.from_env().database_url, name, currency)))


async def _ledger_create_fund(database_url: str, name: str, currency: str) -> str:
    from ledger.funds import create_fund

    async with _session(database_url) as session:
        return (await create_fund(session, name=name, currency=currency)).id


@ledger.command("reconcile")
@click.option("--fund", "fund_id", required=True, help="The fund's id.")
@click.option("--from", "start", default=None, help="First day, YYYY-MM-DD (default: the 1st of this month).")
@click.option("--to", "end", default=None, help="Last day included, YYYY-MM-DD (default: today).")
def ledger_reconcile(fund_id: str, start: str | None, end: str | None) -> None:
    """List every difference between the fund's journal and Stripe for the period; exit 1 if there is any."""
    ok = asyncio.run(_ledger_reconcile(Settings.from_env(), fund_id, start, end))
    sys.exit(0 if ok else 1)


async def _ledger_reconcile(settings: Settings, fund_id: str, start: str | None, end: str | None) -> bool:
    from exchange.stripe.issuer import client_for
    from exchange.stripe.service import Period
    from ledger.reconcile import reconcile

    first, last = Period(start, end).bounds()
    async with _session(settings.database_url) as session:
        report = await reconcile(session, client_for(settings), fund_id, first, last)
    click.echo(f"fund {report.fund_id} {report.currency} from {report.start.isoformat()} to {report.end.isoformat()}")
    for d in report.differences:
        journal = "-" if d.journal_cents is None else str(d.journal_cents)
        stripe_side = "-" if d.stripe_cents is None else str(d.stripe_cents)
        at = d.at.isoformat() if d.at else "-"
        click.echo(
            f"{d.kind:<28} {d.object:<20} {d.stripe_id or '-':<32} journal {journal:>10} stripe {stripe_side:>10} "
            f"{at} {d.entry_id or ''} {d.detail}".rstrip()
        )
    click.echo(
        f"totals (cents): journal {report.journal_cents} stripe {report.stripe_cents} "
        f"difference {report.difference_cents}; {report.matched} matched, {len(report.differences)} differences"
    )
    return report.ok


@main.group("import")
def import_group() -> None:
    """Bring a directory in from another system."""


@import_group.command("hsds")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Print what would change, and write nothing.")
def import_hsds(path: Path, dry_run: bool) -> None:
    """Import an HSDS 3.0 package (a .json, a .zip, or a folder of its .csv tables) into DATABASE_URL."""
    from exchange.interop.commands import run_import

    sys.exit(asyncio.run(run_import(Settings.from_env().database_url, path, dry_run=dry_run)))


if __name__ == "__main__":
    sys.exit(main())
