"""The operator's console at ``/dashboard``: overview charts, accounts, keys and budgets, the request log.

Wiring (in the server's app factory)::

    console = create_console(
        ConsoleConfig.from_settings(settings), key_store, settings.database_path,
        accounts_provider=registry.snapshot, metrics=metrics, budgets=budgets, pause_account=registry.set_paused,
    )
    routes.append(Mount("/dashboard", app=console))
"""

from codexgate.console.app import AccountsProvider, ConsoleApp, ConsoleConfig, PauseAccount, create_console
from codexgate.console.auth import hash_password, verify_password

__all__ = [
    "AccountsProvider",
    "ConsoleApp",
    "ConsoleConfig",
    "PauseAccount",
    "create_console",
    "hash_password",
    "verify_password",
]
