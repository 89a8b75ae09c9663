"""One line per simulator scenario, for ``codexgate simulate --help`` and the README."""

from __future__ import annotations

from codexgate.testing.scenarios import ALIASES, NOT_FROM_PROMPT, SCENARIO_NAMES

__all__ = ["SCENARIO_MEANINGS", "scenario_lines", "scenario_markdown"]

#: what each scenario in :data:`SCENARIO_NAMES` does (a test checks that none is missing).
SCENARIO_MEANINGS: dict[str, str] = {
    "text": "a plain streamed answer echoing the prompt (the default)",
    "reasoning": "a reasoning summary, then the answer",
    "tool_calls": "calls the request's first declared function tool, with arguments valid for its schema",
    "tool_args_done_only": "a tool call whose arguments arrive only in the final event, without deltas",
    "refusal": "the model refuses (a refusal content part)",
    "incomplete": "the answer stops early: response.incomplete, reason max_output_tokens",
    "content_filter": "the answer stops early: response.incomplete, reason content_filter",
    "failed": "response.failed with code server_error, no answer text",
    "error_event": "an error event, then response.failed",
    "context_length_exceeded": "response.failed with code context_length_exceeded",
    "rate_limit_exceeded": "response.failed with code rate_limit_exceeded",
    "web_search": "a web search call, then the answer",
    "custom_tool": "a custom (free-form input) tool call, apply_patch by default",
    "replay": "replays recorded events (test API only; a prompt cannot pick it)",
    "slow": "the plain answer, a quarter second between events",
    "http_400": "HTTP 400 before any event (an unsupported parameter)",
    "http_401": "HTTP 401: the sign-in token is not accepted",
    "http_403": "HTTP 403 Forbidden",
    "http_404": "HTTP 404 Not Found",
    "http_429_usage_limit": "HTTP 429: the subscription's usage limit is reached, with its reset time",
    "http_500": "HTTP 500 Internal Server Error",
    "http_502": "HTTP 502 Bad Gateway",
    "http_503": "HTTP 503 Service Unavailable",
    "drop_mid_stream": "the connection drops in the middle of the stream",
    "close_before_events": "the status line and headers, then the connection closes",
    "never_answer": "accepts the request and never answers",
    "stall_after": "some events, then silence with the connection open",
    "non_json_data": "a data line that is not JSON in the middle of the stream",
}


def scenario_lines() -> list[str]:
    """``name — meaning (aliases: …)`` for every scenario, sorted by name."""
    aliases: dict[str, list[str]] = {}
    for alias, target in ALIASES.items():
        aliases.setdefault(target, []).append(alias)
    lines = []
    for name in sorted(SCENARIO_NAMES):
        also = f" (also: {', '.join(sorted(aliases[name]))})" if name in aliases and name not in NOT_FROM_PROMPT else ""
        lines.append(f"{name} — {SCENARIO_MEANINGS.get(name, '')}{also}")
    return lines


def scenario_markdown() -> str:
    """The README's scenario list (between its ``<!-- scenarios -->`` markers), one bullet each."""
    return "".join(f"- `{name}` —{rest}\n" for name, _, rest in (line.partition(" —") for line in scenario_lines()))


if __name__ == "__main__":  # ``python -m codexgate.testing.scenario_help``: the README's list
    print(scenario_markdown(), end="")
