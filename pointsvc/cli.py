"""flask commands: users, demo, people, openapi."""

from __future__ import annotations

import json

import click
from flask import Flask, current_app
from flask.cli import AppGroup

users_cli = AppGroup("users", help="Accounts.")
demo_cli = AppGroup("demo", help="Demo data.")
openapi_cli = AppGroup("openapi", help="The OpenAPI document.")


@openapi_cli.command("write")
@click.argument("path", default="docs/openapi.json")
def openapi_write(path: str) -> None:
    """Write the OpenAPI document generated from the schemas."""
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(openapi_text())
    click.echo(f"wrote {path}")


def openapi_text() -> str:
    """The document, serialised deterministically (sorted keys) so diffs stay small."""
    spec = current_app.extensions["flask-smorest"]["apis"][""]["ext_obj"].spec.to_dict()
    return json.dumps(spec, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def register_cli(app: Flask) -> None:
    from .ledger.cli import ledger_cli

    app.cli.add_command(ledger_cli)
    from .redemption.cli import redemption_cli

    app.cli.add_command(redemption_cli)
    from .leaderboards.cli import leaderboards_cli

    app.cli.add_command(leaderboards_cli)
    from .audit.cli import load_commands as audit_commands

    app.cli.add_command(audit_commands())
    from .demo import seed_command
    from .people.cli import create_admin_command, people_cli

    users_cli.add_command(create_admin_command)
    demo_cli.add_command(seed_command)
    app.cli.add_command(people_cli)
    app.cli.add_command(users_cli)
    app.cli.add_command(demo_cli)
    app.cli.add_command(openapi_cli)
