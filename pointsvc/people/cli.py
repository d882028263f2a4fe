"""flask people import, flask users create-admin: thin wrappers over people.service."""

from __future__ import annotations

import re
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup, with_appcontext

from ..errors import DomainError
from ..security.passwords import MIN_PASSWORD_LENGTH
from . import service

people_cli = AppGroup("people", help="Residents and staff.")


def _describe(error: DomainError) -> str:
    detail = f": {error.detail}" if error.detail else ""
    fields = f" {error.errors}" if error.errors else ""
    return f"{error.code}{detail}{fields}"


def _echo_row_errors(errors: list[dict]) -> None:
    for error in errors:
        column = f" [{error['field']}]" if error.get("field") else ""
        click.echo(f"  line {error['line']} (row {error['row']}){column}: {error['message']}")


@people_cli.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--community-id", type=int, help="Community of rows without a community_id.")
@click.option("--partial", is_flag=True, help="Import the good rows and report the bad ones.")
def import_command(file: Path, community_id: int | None, partial: bool) -> None:
    """Import residents from a CSV file (name,phone,community_id,grid_id,household,is_minor)."""
    try:
        if community_id is not None:
            service.community_for_input(community_id=community_id, field="--community-id")
        with click.progressbar(length=1, label="Importing residents") as bar:

            def progress(done: int, total: int) -> None:
                bar.length = max(total, 1)
                bar.update(done - bar.pos)

            result = service.import_residents(
                data=file.read_bytes(),
                default_community_id=community_id,
                partial=partial,
                scope_paths=None,
                max_rows=current_app.config["IMPORT_MAX_ROWS"],
                progress=progress,
            )
    except DomainError as exc:
        if exc.extra.get("row_errors"):
            click.echo("Errors (line = line of the file, header is line 1):", err=True)
            _echo_row_errors(exc.extra["row_errors"])
        raise click.ClickException(_describe(exc)) from exc
    click.echo(
        f"rows {result['rows']}: created {result['created']}, unchanged {result['unchanged']}, "
        f"failed {result['failed']}; households created {result['households_created']}"
    )
    if result["errors"]:
        click.echo("Skipped rows (line = line of the file, header is line 1):")
        _echo_row_errors(result["errors"])


@click.command("create-admin")
@with_appcontext
@click.option("--username", required=True)
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@click.option("--name", "display_name", required=True, help="Display name.")
@click.option("--district", required=True, help="Chinese name of the district, e.g. 滨江区.")
@click.option("--district-en", help="English name of the district (default: --district).")
def create_admin_command(
    username: str, password: str, display_name: str, district: str, district_en: str | None
) -> None:
    """Create a district (if missing) and an admin on it; running it again changes nothing."""
    if not re.fullmatch(r"[A-Za-z0-9_.-]{3,64}", username):
        raise click.BadParameter("3-64 letters, digits, _ . -", param_hint="--username")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise click.BadParameter(
            f"at least {MIN_PASSWORD_LENGTH} characters", param_hint="--password"
        )
    if not display_name.strip() or not district.strip():
        raise click.BadParameter("must not be blank", param_hint="--name/--district")
    result = service.ensure_admin(
        username=username,
        password=password,
        display_name=display_name.strip(),
        district_zh=district.strip(),
        district_en=(district_en or district).strip(),
    )
    click.echo(
        f"district {district} (id {result['district_id']}): "
        f"{'created' if result['district_created'] else 'exists'}; "
        f"user {username} (id {result['user_id']}): "
        f"{'created' if result['user_created'] else 'exists, password unchanged'}; "
        f"admin grant: {'created' if result['grant_created'] else 'exists'}"
    )
