"""``codexgate admin set-password|clear-password``: the console's admin password (see ``console/auth.py``).

The password is stored only as a scrypt hash in ``$CODEXGATE_HOME/admin.json`` (0600). A running
gateway picks the change up within a second; until a password is set the console answers 404.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from codexgate.cli.common import err_console, fail, settings

ADMIN_FILE_NAME = "admin.json"


def register(app: typer.Typer) -> None:
    admin_app = typer.Typer(help="The operator's console (/dashboard): admin password.", no_args_is_help=True)
    app.add_typer(admin_app, name="admin")

    @admin_app.command("set-password")
    def set_password(
        ctx: typer.Context,
        from_stdin: Annotated[
            bool, typer.Option("--password-stdin", help="Read the password from stdin (first line) instead of asking.")
        ] = False,
    ) -> None:
        """Set the console's admin password (stored as a slow hash; the console opens at /dashboard)."""
        from codexgate.console.auth import MIN_PASSWORD_LENGTH, hash_password, write_admin_file

        if from_stdin:
            password = sys.stdin.readline().rstrip("\r\n")
        else:
            password = typer.prompt("Admin password", hide_input=True, confirmation_prompt=True)
        if len(password) < MIN_PASSWORD_LENGTH:
            fail(f"the admin password needs at least {MIN_PASSWORD_LENGTH} characters")
        path = settings(ctx).home / ADMIN_FILE_NAME
        write_admin_file(path, hash_password(password))
        err_console.print(
            f"Admin password set ({path}). A running gateway opens /dashboard with it within a second.",
            markup=False,
            soft_wrap=True,
        )

    @admin_app.command("clear-password")
    def clear_password(ctx: typer.Context) -> None:
        """Remove the stored admin password: the console answers 404 again (a configured one still applies)."""
        path = settings(ctx).home / ADMIN_FILE_NAME
        try:
            path.unlink()
        except FileNotFoundError:
            fail("no admin password is stored")
        err_console.print("Admin password removed: the console is off.", markup=False, soft_wrap=True)
