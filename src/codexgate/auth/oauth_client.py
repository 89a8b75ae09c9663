"""Calls to the OAuth issuer (``auth_issuer``): code exchange and token refresh (protocol.md §5).

Errors never carry a token: messages name the endpoint and the issuer's error code only. httpx is imported
when a call is made (it costs the server's start-up ~30 ms, and most starts make no call at once).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from codexgate.errors import APIError

if TYPE_CHECKING:
    import httpx

LOGIN_HINT = "Run `codexgate login` to sign in again."
PERMANENT_REFRESH_ERRORS = frozenset({"refresh_token_reused", "refresh_token_expired", "refresh_token_invalidated"})


class AuthError(APIError):
    """A 401 telling the user what to do (usually: run ``codexgate login``)."""

    def __init__(self, message: str, *, code: str = "not_logged_in") -> None:
        super().__init__(401, message, type="authentication_error", code=code)


@dataclass(frozen=True)
class TokenSet:
    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    id_token: str | None = field(repr=False)


def _error_code(response: httpx.Response) -> str | None:
    try:
        data: Any = response.json()
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    error = data.get("error")
    if isinstance(error, dict):
        code = error.get("code") or error.get("type")
        return code if isinstance(code, str) else None
    if isinstance(error, str):
        return error
    code = data.get("code")
    return code if isinstance(code, str) else None


def _token_set(response: httpx.Response, previous_refresh: str | None = None) -> TokenSet:
    data = response.json()
    if not isinstance(data, dict) or not isinstance(data.get("access_token"), str):
        raise AuthError(
            "The sign-in server answered without an access token. " + LOGIN_HINT, code="token_exchange_failed"
        )
    refresh = data.get("refresh_token") if isinstance(data.get("refresh_token"), str) else previous_refresh
    id_token = data.get("id_token") if isinstance(data.get("id_token"), str) else None
    return TokenSet(access_token=data["access_token"], refresh_token=refresh, id_token=id_token)


class OAuthClient:
    def __init__(self, issuer: str, client_id: str, http: httpx.AsyncClient | None = None) -> None:
        self.issuer = issuer.rstrip("/")
        self.client_id = client_id
        self._http = http
        self._owns_http = http is None

    @property
    def http(self) -> httpx.AsyncClient:
        if self._http is None:
            import httpx

            self._http = httpx.AsyncClient(timeout=httpx.Timeout(30.0), trust_env=False)
        return self._http

    async def aclose(self) -> None:
        if self._http is not None and self._owns_http:
            await self._http.aclose()
            self._http = None

    async def refresh(self, refresh_token: str) -> TokenSet:
        """``POST /oauth/token`` with the refresh grant (JSON body)."""
        import httpx

        body = {"client_id": self.client_id, "grant_type": "refresh_token", "refresh_token": refresh_token}
        try:
            response = await self.http.post(f"{self.issuer}/oauth/token", json=body)
        except httpx.HTTPError as exc:
            raise APIError(
                502,
                f"Could not reach the sign-in server to refresh the ChatGPT token ({type(exc).__name__}).",
                type="upstream_error",
                code="auth_unreachable",
            ) from None
        if response.status_code == 200:
            return _token_set(response, previous_refresh=refresh_token)
        code = _error_code(response)
        if code in PERMANENT_REFRESH_ERRORS or response.status_code in (400, 401):
            reason = {
                "refresh_token_reused": "was already used (another program refreshed it first)",
                "refresh_token_expired": "has expired",
                "refresh_token_invalidated": "was revoked",
            }.get(code or "", f"was rejected ({code or response.status_code})")
            raise AuthError(f"Your ChatGPT sign-in {reason}. {LOGIN_HINT}", code=code or "refresh_failed")
        raise APIError(
            502,
            f"The sign-in server failed to refresh the token (HTTP {response.status_code}).",
            type="upstream_error",
            code="auth_refresh_failed",
        )

    async def exchange_code(self, code: str, redirect_uri: str, code_verifier: str) -> TokenSet:
        """``POST /oauth/token`` with the authorization-code grant (form-encoded)."""
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "client_id": self.client_id,
            "code_verifier": code_verifier,
        }
        import httpx

        try:
            response = await self.http.post(f"{self.issuer}/oauth/token", data=form)
        except httpx.HTTPError as exc:
            raise AuthError(
                f"Could not reach the sign-in server ({type(exc).__name__}).", code="auth_unreachable"
            ) from None
        if response.status_code != 200:
            raise AuthError(
                f"The sign-in server refused the code ({_error_code(response) or response.status_code}).",
                code="token_exchange_failed",
            )
        return _token_set(response)
