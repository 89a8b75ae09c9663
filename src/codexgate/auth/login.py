"""Signing in with ChatGPT: the PKCE browser flow, its paste variant, and the device-code flow.

All three talk to ``auth_issuer`` (protocol.md §5) and end by storing the tokens in codexgate's own
``auth.json`` (atomic, 0600), or wherever the caller's ``store`` puts them (the account pool).
Everything that touches the outside world is injectable (issuer URL, callback port, the browser
opener, the input and output functions, the clock) so tests drive the real flows against a local
fake issuer.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
from aiohttp import web

from codexgate.auth.credentials import Credentials, credentials_from, read_document, write_tokens
from codexgate.auth.oauth_client import AuthError, OAuthClient, TokenSet

SCOPE = "openid profile email offline_access"
CALLBACK_PATH = "/auth/callback"
DEVICE_REDIRECT = "/deviceauth/callback"
#: where a login's tokens go instead of ``own_file`` (the account pool's store); returns what it stored
TokenStore = Callable[[TokenSet], Awaitable[Credentials]]
SUCCESS_PAGE = "<html><body><h1>Signed in to codexgate.</h1><p>You can close this tab.</p></body></html>"


@dataclass(frozen=True)
class Pkce:
    verifier: str
    challenge: str


def new_pkce() -> Pkce:
    """64 random bytes, base64url without padding; challenge = base64url(SHA-256(verifier))."""
    verifier = base64.urlsafe_b64encode(secrets.token_bytes(64)).rstrip(b"=").decode()
    digest = hashlib.sha256(verifier.encode()).digest()
    return Pkce(verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode())


def authorize_url(issuer: str, client_id: str, redirect_uri: str, pkce: Pkce, state: str) -> str:
    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": SCOPE,
        "code_challenge": pkce.challenge,
        "code_challenge_method": "S256",
        "id_token_add_organizations": "true",
        "codex_cli_simplified_flow": "true",
        "state": state,
        "originator": "codex_cli_rs",
    }
    return f"{issuer.rstrip('/')}/oauth/authorize?{urllib.parse.urlencode(query)}"


def parse_pasted(text: str, expected_state: str) -> str:
    """The code from a pasted redirect URL (state checked) or a bare code."""
    text = text.strip()
    if "://" in text or text.startswith("/") or "code=" in text:
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(text).query or text.split("?", 1)[-1])
        if "error" in query:
            raise AuthError(f"Sign-in failed: {query['error'][0]}.", code="login_failed")
        state = query.get("state", [None])[0]
        if state != expected_state:
            raise AuthError(
                "The pasted URL belongs to another sign-in attempt (state mismatch).", code="state_mismatch"
            )
        code = query.get("code", [None])[0]
        if not code:
            raise AuthError("The pasted URL has no `code` parameter.", code="login_failed")
        return code
    if not text:
        raise AuthError("Nothing was pasted.", code="login_failed")
    return text


def store_tokens(own_file: Path, tokens: TokenSet) -> Credentials:
    write_tokens(
        own_file, access_token=tokens.access_token, refresh_token=tokens.refresh_token, id_token=tokens.id_token
    )
    document = read_document(own_file) or {}
    credentials = credentials_from(document, own_file)
    if credentials is None:  # pragma: no cover - we just wrote it
        raise AuthError("Could not store the credentials.", code="login_failed")
    return credentials


async def exchange_and_store(
    issuer: str,
    client_id: str,
    own_file: Path,
    code: str,
    redirect_uri: str,
    verifier: str,
    http: httpx.AsyncClient | None,
    store: TokenStore | None = None,
) -> Credentials:
    """Trade the authorization code for tokens and store them (``store``, else codexgate's own file)."""
    oauth = OAuthClient(issuer, client_id, http)
    try:
        tokens = await oauth.exchange_code(code, redirect_uri, verifier)
    finally:
        await oauth.aclose()
    if store is not None:
        return await store(tokens)
    return store_tokens(own_file, tokens)


async def _wait_for_callback(port: int, expected_state: str, wait_seconds: float) -> tuple[str, int]:
    """Serve ``/auth/callback`` on 127.0.0.1:port until it receives a code with the right state."""
    result: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def callback(request: web.Request) -> web.Response:
        params = request.query
        if "error" in params:
            if not result.done():
                result.set_exception(AuthError(f"Sign-in failed: {params['error']}.", code="login_failed"))
            return web.Response(text="Sign-in failed; see the terminal.", status=400)
        if params.get("state") != expected_state:
            return web.Response(text="State mismatch: this is not the sign-in codexgate started.", status=400)
        code = params.get("code")
        if not code:
            return web.Response(text="No code in the callback.", status=400)
        if not result.done():
            result.set_result(code)
        return web.Response(text=SUCCESS_PAGE, content_type="text/html")

    app = web.Application()
    app.router.add_get(CALLBACK_PATH, callback)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        return await asyncio.wait_for(result, wait_seconds), port
    except TimeoutError:
        raise AuthError("Timed out waiting for the browser sign-in.", code="login_timeout") from None
    finally:
        await runner.cleanup()


async def browser_login(
    *,
    issuer: str,
    client_id: str,
    own_file: Path,
    port: int,
    show: Callable[[str], None],
    open_browser: Callable[[str], object] | None,
    on_url: Callable[[str], Awaitable[None]] | None = None,
    wait_seconds: float = 600.0,
    http: httpx.AsyncClient | None = None,
    store: TokenStore | None = None,
) -> Credentials:
    """PKCE flow with a local callback server; ``on_url`` (tests) plays the browser."""
    pkce = new_pkce()
    state = secrets.token_urlsafe(24)
    redirect_uri = f"http://localhost:{port}{CALLBACK_PATH}"
    url = authorize_url(issuer, client_id, redirect_uri, pkce, state)
    waiter = asyncio.create_task(_wait_for_callback(port, state, wait_seconds))
    await asyncio.sleep(0)  # let the callback server bind before the browser goes there
    show(f"Open this URL to sign in with ChatGPT:\n{url}")
    if open_browser is not None:
        open_browser(url)
    if on_url is not None:
        await on_url(url)
    code, _ = await waiter
    return await exchange_and_store(issuer, client_id, own_file, code, redirect_uri, pkce.verifier, http, store)


async def paste_login(
    *,
    issuer: str,
    client_id: str,
    own_file: Path,
    port: int,
    show: Callable[[str], None],
    read_line: Callable[[str], str],
    http: httpx.AsyncClient | None = None,
    store: TokenStore | None = None,
) -> Credentials:
    """For a remote machine: sign in in any browser, then paste the URL it was redirected to."""
    pkce = new_pkce()
    state = secrets.token_urlsafe(24)
    redirect_uri = f"http://localhost:{port}{CALLBACK_PATH}"
    url = authorize_url(issuer, client_id, redirect_uri, pkce, state)
    show(f"Open this URL in a browser and sign in with ChatGPT:\n{url}")
    show("The browser then fails to load a localhost page; copy that page's full URL from the address bar.")
    code = parse_pasted(read_line("Paste the URL (or the code): "), state)
    return await exchange_and_store(issuer, client_id, own_file, code, redirect_uri, pkce.verifier, http, store)


async def device_login(
    *,
    issuer: str,
    client_id: str,
    own_file: Path,
    show: Callable[[str], None],
    wait_seconds: float = 900.0,
    http: httpx.AsyncClient | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    store: TokenStore | None = None,
) -> Credentials:
    """Device code: show a code, poll until the user approved it on any device, then exchange."""
    base = issuer.rstrip("/")
    client = http or httpx.AsyncClient(timeout=30.0, trust_env=False)
    try:
        try:
            start = await client.post(f"{base}/api/accounts/deviceauth/usercode", json={"client_id": client_id})
        except httpx.HTTPError as exc:
            raise AuthError(
                f"Could not reach the sign-in server ({type(exc).__name__}).", code="auth_unreachable"
            ) from None
        if start.status_code != 200:
            raise AuthError(
                f"The sign-in server refused a device code (HTTP {start.status_code}).", code="login_failed"
            )
        data = start.json()
        device_auth_id, user_code = data.get("device_auth_id"), data.get("user_code") or data.get("usercode")
        if not isinstance(device_auth_id, str) or not isinstance(user_code, str):
            raise AuthError("The sign-in server sent no device code.", code="login_failed")
        interval = float(data.get("interval") or 5)
        show(f"Open {base}/codex/device on any device and enter the code: {user_code}")
        deadline = time.monotonic() + wait_seconds
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AuthError("The device code expired before it was approved.", code="login_timeout")
            show(f"Waiting for approval… ({int(remaining)} s left)")
            poll = await client.post(
                f"{base}/api/accounts/deviceauth/token", json={"device_auth_id": device_auth_id, "user_code": user_code}
            )
            if poll.status_code == 200:
                approved = poll.json()
                break
            if poll.status_code not in (403, 404):
                raise AuthError(f"Device sign-in failed (HTTP {poll.status_code}).", code="login_failed")
            await sleep(interval)
        code, verifier = approved.get("authorization_code"), approved.get("code_verifier")
        if not isinstance(code, str) or not isinstance(verifier, str):
            raise AuthError("The approved device sign-in carried no code.", code="login_failed")
        redirect = f"{base}{DEVICE_REDIRECT}"
        return await exchange_and_store(issuer, client_id, own_file, code, redirect, verifier, client, store)
    finally:
        if http is None:
            await client.aclose()
