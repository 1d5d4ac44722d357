"""`refuge import hsds PATH`: an HSDS package from files, with a progress bar, a dry run and a report."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from beds.directory import PackageInvalid, plan_import, read_package
from exchange.interop.importer import ImportReport, apply_plan

READABLE = (".json", ".csv", ".zip")


def package_files(path: Path) -> dict[str, bytes]:
    """A file, or every .json / .csv / .zip of a folder."""
    if path.is_dir():
        return {p.name: p.read_bytes() for p in sorted(path.iterdir()) if p.suffix.lower() in READABLE}
    return {path.name: path.read_bytes()}


def report_lines(report: ImportReport) -> list[str]:
    lines = []
    for change in report.changed:
        sign = "+" if change.action == "created" else "~"
        detail = f" ({', '.join(change.fields)})" if change.fields else ""
        lines.append(f"{sign} {change.action} {change.what} {change.name}{detail}")
    for what, label in (("organisation", "organisations"), ("facility", "facilities")):
        lines.append(
            f"{label}: {report.count('created', what)} created, {report.count('updated', what)} updated, "
            f"{report.count('unchanged', what)} unchanged"
        )
    lines += [f"not imported as is: {note.path}: {note.message}" for note in report.notes]
    if report.dry_run:
        lines.append("dry run: nothing was written")
    return lines


async def run_import(database_url: str, path: Path, *, dry_run: bool) -> int:
    from exchange.db import make_engine, make_sessionmaker

    try:
        plan = plan_import(read_package(package_files(path)))
    except PackageInvalid as invalid:
        for error in invalid.errors:
            click.echo(f"error: {error.path}: {error.reason}", err=True)
        click.echo("the package was refused: nothing was written", err=True)
        return 1
    engine = make_engine(database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            with click.progressbar(length=len(plan.facilities), label="facilities", file=sys.stderr) as bar:
                done = [0]

                def advance(index: int) -> None:
                    bar.update(index - done[0])
                    done[0] = index

                report = await apply_plan(session, plan, dry_run=dry_run, progress=advance)
    finally:
        await engine.dispose()
    for line in report_lines(report):
        click.echo(line)
    return 0
