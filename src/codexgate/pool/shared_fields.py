"""Which parts of an :class:`AccountState` the instances of a cluster share, as JSON-able groups.

Pure: no I/O, no clock. An account's shared fields come in three groups, each written to the shared state
with its own version, so that a change of one (a window update on every answer) never overwrites a
concurrent change of another (a pause, a cooldown):

* ``health`` — ``status`` (active, cooling, needs_login, disabled, paused), ``cooling_until``,
  ``disabled_reason``, ``disabled_models`` (``usage_not_included`` per model);
* ``errors`` — the transient backoff (``transient_failures``, ``backoff_until``) and the latest error;
* ``windows`` — the rate-limit windows (``primary``, ``secondary``) and the plan.

Per process, never shared: the alias and email (from this instance's files), the streams in flight, the
probe in flight (each instance may probe a cooled account once), and the day's request/token counters.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from codexgate.pool.accounts import AccountState, AccountStatus, UsageWindow

__all__ = ["GROUPS", "apply_group", "snapshot", "snapshots"]

GROUPS: Final = ("health", "errors", "windows")


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _window(value: Any) -> UsageWindow | None:
    return UsageWindow.from_dict(value) if isinstance(value, Mapping) else None


def _health(state: AccountState) -> dict[str, Any]:
    return {
        "status": state.status.value,
        "cooling_until": state.cooling_until,
        "disabled_reason": state.disabled_reason,
        "disabled_models": dict(state.disabled_models),
    }


def _errors(state: AccountState) -> dict[str, Any]:
    return {
        "transient_failures": state.transient_failures,
        "backoff_until": state.backoff_until,
        "last_error": state.last_error,
        "last_error_at": state.last_error_at,
    }


def _windows(state: AccountState) -> dict[str, Any]:
    return {
        "primary": state.primary.to_dict() if state.primary is not None else None,
        "secondary": state.secondary.to_dict() if state.secondary is not None else None,
        "plan": state.plan,
    }


_SNAPSHOTS: Final[dict[str, Callable[[AccountState], dict[str, Any]]]] = {
    "health": _health,
    "errors": _errors,
    "windows": _windows,
}


def snapshot(state: AccountState, group: str) -> dict[str, Any]:
    """The group's fields of ``state`` as a JSON-able dict (equal dicts: nothing changed)."""
    return _SNAPSHOTS[group](state)


def snapshots(state: AccountState) -> dict[str, dict[str, Any]]:
    """Every group of ``state``."""
    return {group: make(state) for group, make in _SNAPSHOTS.items()}


def apply_group(state: AccountState, group: str, fields: Mapping[str, Any]) -> None:
    """Set the group's fields of ``state`` from a snapshot another instance wrote (unknown values ignored)."""
    if group == "health":
        try:
            status = AccountStatus(str(fields.get("status")))
        except ValueError:
            return
        if status is not AccountStatus.COOLING and state.status is AccountStatus.COOLING:
            state.probe_in_flight = False
        state.status = status
        state.cooling_until = _number(fields.get("cooling_until"))
        state.disabled_reason = _text(fields.get("disabled_reason"))
        models = fields.get("disabled_models")
        state.disabled_models = (
            {str(model): float(until) for model, until in models.items() if _number(until) is not None}
            if isinstance(models, Mapping)
            else {}
        )
    elif group == "errors":
        failures = fields.get("transient_failures")
        state.transient_failures = failures if isinstance(failures, int) and not isinstance(failures, bool) else 0
        state.backoff_until = _number(fields.get("backoff_until"))
        state.last_error = _text(fields.get("last_error"))
        state.last_error_at = _number(fields.get("last_error_at"))
    elif group == "windows":
        primary, secondary = _window(fields.get("primary")), _window(fields.get("secondary"))
        if state.primary != primary:
            state.primary = primary
        if state.secondary != secondary:
            state.secondary = secondary
        plan = _text(fields.get("plan"))
        if plan:
            state.plan = plan
