"""The keys page: every key with its limits and use, the create form (the new key shown once), revoke."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from codexgate.console.html import csrf_field, esc, fmt_count, fmt_time, table
from codexgate.console.queries import KeyTotals
from codexgate.storage.api_keys import KeyInfo
from codexgate.storage.budgets import TOKEN_WINDOWS, KeyLimits, KeyUsage, parse_expiry, parse_patterns

__all__ = ["LimitsFormError", "keys_body", "limits_from_form"]

_COUNT_FIELDS = ("tokens_per_day", "tokens_per_week", "tokens_per_month", "requests_per_minute")


class LimitsFormError(ValueError):
    """A limits form field that cannot be read (its message is shown on the page)."""


def limits_from_form(form: Mapping[str, str]) -> KeyLimits:
    counts: dict[str, int | None] = {}
    for name in _COUNT_FIELDS:
        text = (form.get(name) or "").strip().replace(",", "").replace("_", "")
        if not text:
            counts[name] = None
            continue
        if not text.isdigit():
            raise LimitsFormError(f"{name.replace('_', ' ')} must be a whole number")
        counts[name] = int(text)
    expires_text = (form.get("expires_at") or "").strip()
    try:
        expires = parse_expiry(expires_text) if expires_text else None
    except ValueError as exc:
        raise LimitsFormError("the expiry must be a date (YYYY-MM-DD) or an ISO date and time") from exc
    return KeyLimits(
        tokens_per_day=counts["tokens_per_day"],
        tokens_per_week=counts["tokens_per_week"],
        tokens_per_month=counts["tokens_per_month"],
        requests_per_minute=counts["requests_per_minute"],
        allowed_models=parse_patterns(form.get("allowed_models") or ""),
        allowed_accounts=parse_patterns(form.get("allowed_accounts") or ""),
        expires_at=expires,
    )


def _limits_fields(limits: KeyLimits) -> str:
    def number(name: str, label: str) -> str:
        value = getattr(limits, name)
        return (
            f'<label>{esc(label)}<input type="text" inputmode="numeric" name="{name}" '
            f'value="{"" if value is None else value}" placeholder="no limit"></label>'
        )

    expires = "" if limits.expires_at is None else fmt_time(limits.expires_at).removesuffix(" UTC").replace(" ", "T")
    return (
        number("tokens_per_day", "Tokens / day")
        + number("tokens_per_week", "Tokens / week")
        + number("tokens_per_month", "Tokens / month")
        + number("requests_per_minute", "Requests / minute")
        + f'<label>Allowed models (globs)<input type="text" name="allowed_models" '
        f'value="{esc(", ".join(limits.allowed_models))}" placeholder="any"></label>'
        f'<label>Allowed accounts<input type="text" name="allowed_accounts" '
        f'value="{esc(", ".join(limits.allowed_accounts))}" placeholder="any"></label>'
        f'<label>Expires (UTC)<input type="text" name="expires_at" value="{esc(expires)}" '
        'placeholder="never, or YYYY-MM-DD"></label>'
    )


def _budget_cell(limits: KeyLimits, usage: KeyUsage | None) -> str:
    parts = []
    for window in TOKEN_WINDOWS:
        budget = limits.token_budget(window)
        used = usage.tokens.get(window, 0) if usage else None
        if budget is None and not used:
            continue
        of = f" / {fmt_count(budget)}" if budget is not None else ""
        over = ' class="over"' if budget is not None and used is not None and used >= budget else ""
        parts.append(f"<span{over}>{window}: {fmt_count(used)}{of}</span>")
    if limits.requests_per_minute is not None:
        recent = usage.requests_last_minute if usage else 0
        parts.append(f"<span>rpm: {recent} / {limits.requests_per_minute}</span>")
    return "<br>".join(parts) or "no budget"


def _rules_cell(limits: KeyLimits, now: float) -> str:
    parts = []
    if limits.allowed_models:
        parts.append("models: " + esc(", ".join(limits.allowed_models)))
    if limits.allowed_accounts:
        parts.append("accounts: " + esc(", ".join(limits.allowed_accounts)))
    if limits.expires_at is not None:
        word = "expired" if limits.expires_at <= now else "expires"
        parts.append(f"{word} {esc(fmt_time(limits.expires_at, seconds=False))}")
    return "<br>".join(parts) or "—"


def keys_body(
    keys: Sequence[KeyInfo],
    *,
    base: str,
    csrf_token: str,
    now: float,
    usage: Mapping[str, KeyUsage],
    totals: Mapping[str, KeyTotals],
    created: tuple[str, str] | None = None,
    error: str | None = None,
    form_values: KeyLimits | None = None,
    editing: KeyInfo | None = None,
) -> str:
    notice = ""
    if created is not None:
        name, secret = created
        notice = (
            '<section class="notice" id="new-key"><p>New key <strong>'
            f"{esc(name)}</strong>. It is shown only now: copy it somewhere safe.</p>"
            f'<code class="secret" id="new-key-value">{esc(secret)}</code></section>'
        )
    if error:
        notice += f'<p class="error" role="alert">{esc(error)}</p>'
    if editing is not None:
        return notice + (
            f'<form method="post" action="{esc(base)}/keys/{esc(editing.id)}/limits" class="limits" id="edit-limits">'
            f"{csrf_field(csrf_token)}<h2>Limits of {esc(editing.name)}</h2>"
            f"{_limits_fields(form_values or editing.limits)}"
            f'<button type="submit">Save</button> <a href="{esc(base)}/keys">Cancel</a></form>'
        )
    rows = []
    for info in keys:
        total = totals.get(info.name) or KeyTotals()
        revoke = (
            f'<form method="post" action="{esc(base)}/keys/{esc(info.id)}/revoke" class="inline">'
            f'{csrf_field(csrf_token)}<button type="submit" class="danger" data-confirm="Revoke {esc(info.name)}?">'
            "Revoke</button></form>"
        )
        edit = f'<a href="{esc(base)}/keys/{esc(info.id)}">Limits</a>'
        rows.append(
            [
                f'<span class="key-name">{esc(info.name)}</span><br><small>{esc(info.id)}</small>',
                esc(fmt_time(info.created_at, seconds=False)),
                _budget_cell(info.limits, usage.get(info.id)),
                _rules_cell(info.limits, now),
                f"{fmt_count(total.requests)} req<br>{fmt_count(total.tokens)} tok<br>{fmt_count(total.errors)} err",
                esc(fmt_time(total.last_used, seconds=False)),
                edit + " " + revoke,
            ]
        )
    listing = table(
        ["Key", "Created", "Budget use", "Rules", "Last 30 days", "Last used", ""],
        rows,
        table_id="keys",
        empty="No keys yet: the gateway accepts any client on a loopback address.",
    )
    create = (
        f'<form method="post" action="{esc(base)}/keys" class="limits" id="create-key">{csrf_field(csrf_token)}'
        '<h2>Create a key</h2><label>Name<input type="text" name="name" required maxlength="64"></label>'
        f"{_limits_fields(form_values or KeyLimits())}"
        '<button type="submit">Create key</button></form>'
    )
    return notice + listing + create
