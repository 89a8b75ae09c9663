"""Claims of the ChatGPT tokens, decoded but never verified (we are not their audience).

The access and id tokens are JWTs; their payload carries ``exp``, ``email`` and, under
``https://api.openai.com/auth``, ``chatgpt_account_id``, ``chatgpt_plan_type`` and
``chatgpt_user_id``. A token that does not decode yields empty claims, never an exception.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

import orjson

AUTH_CLAIM = "https://api.openai.com/auth"
PROFILE_CLAIM = "https://api.openai.com/profile"


def decode_payload(token: str | None) -> dict[str, Any]:
    """The JWT's payload as a dict; ``{}`` when it is not a decodable JWT."""
    if not token or token.count(".") < 2:
        return {}
    payload = token.split(".")[1]
    try:
        raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        data = orjson.loads(raw)
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


@dataclass(frozen=True)
class TokenClaims:
    account_id: str | None = None
    plan_type: str | None = None
    user_id: str | None = None
    email: str | None = None
    expires_at: float | None = None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def claims_of(*tokens: str | None) -> TokenClaims:
    """Merge what the given tokens say (earlier tokens win); ``expires_at`` comes from the first."""
    account_id = plan_type = user_id = email = None
    expires_at: float | None = None
    for index, token in enumerate(tokens):
        payload = decode_payload(token)
        auth = payload.get(AUTH_CLAIM)
        auth = auth if isinstance(auth, dict) else {}
        profile = payload.get(PROFILE_CLAIM)
        profile = profile if isinstance(profile, dict) else {}
        account_id = account_id or _text(auth.get("chatgpt_account_id"))
        plan_type = plan_type or _text(auth.get("chatgpt_plan_type"))
        user_id = user_id or _text(auth.get("chatgpt_user_id")) or _text(auth.get("user_id"))
        email = email or _text(payload.get("email")) or _text(profile.get("email"))
        exp = payload.get("exp")
        if index == 0 and isinstance(exp, int | float):
            expires_at = float(exp)
    return TokenClaims(account_id, plan_type, user_id, email, expires_at)
