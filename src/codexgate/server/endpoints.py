"""How an endpoint is declared once, and the table both ways into the server are built from.

An endpoint is a FastAPI route like any other, plus a marker (:func:`endpoint`) saying in which
API's **dialect** its errors are answered (``openai`` today, ``anthropic`` for the Messages routes)
and whether it is **direct**: served by :class:`~codexgate.server.asgi.GatewayASGI` without
FastAPI's routing, dependency and middleware layers (the answer endpoints, whose every stream event
would otherwise climb through them). :class:`RouteTable` reads the markers from the app's router, so
a new endpoint joins both ways by being declared once::

    @router.post("/v1/messages")
    @endpoint(dialect="anthropic", direct=True)
    async def create_message(request: Request) -> Response: ...

A direct endpoint takes the request as its only argument (it reads its body itself) and must have
a fixed path; :class:`RouteTable` refuses anything else when the app is built.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeVar, get_args

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match
from starlette.types import Scope

__all__ = ["DEFAULT_DIALECT", "Dialect", "DirectEndpoint", "EndpointSpec", "RouteTable", "endpoint", "spec_of"]

Dialect = Literal["openai", "anthropic"]
DIALECTS: Final = frozenset(get_args(Dialect))
DEFAULT_DIALECT: Final[Dialect] = "openai"
SPEC_ATTRIBUTE: Final = "__codexgate_endpoint__"

EndpointFunction = Callable[[Request], Awaitable[Response]]
F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True, slots=True)
class EndpointSpec:
    """What the marker says about an endpoint function."""

    dialect: Dialect = DEFAULT_DIALECT
    direct: bool = False


UNMARKED: Final = EndpointSpec()


def endpoint(*, dialect: Dialect = DEFAULT_DIALECT, direct: bool = False) -> Callable[[F], F]:
    """Mark an endpoint function with its error dialect and whether the fast path serves it."""
    if dialect not in DIALECTS:
        raise ValueError(f"unknown dialect {dialect!r}; one of {sorted(DIALECTS)}")
    spec = EndpointSpec(dialect=dialect, direct=direct)

    def mark(function: F) -> F:
        setattr(function, SPEC_ATTRIBUTE, spec)
        return function

    return mark


def spec_of(function: object) -> EndpointSpec:
    """The marker of ``function``; an unmarked endpoint speaks the default dialect through FastAPI."""
    spec = getattr(function, SPEC_ATTRIBUTE, None)
    return spec if isinstance(spec, EndpointSpec) else UNMARKED


@dataclass(frozen=True, slots=True)
class DirectEndpoint:
    function: EndpointFunction
    dialect: Dialect


class RouteTable:
    """The app's routes as the layer in front reads them: the direct endpoints by POST path, and the
    dialect of any request (for errors answered before or outside an endpoint: 401, 404, 405, 431)."""

    def __init__(self, routes: Iterable[BaseRoute]) -> None:
        self.routes = list(routes)
        #: path -> the endpoint the fast path calls for ``POST`` on it
        self.direct: dict[str, DirectEndpoint] = {}
        for route in self.routes:
            if not isinstance(route, APIRoute):
                continue
            spec = spec_of(route.endpoint)
            if not spec.direct:
                continue
            if route.param_convertors or route.methods != {"POST"}:
                raise ValueError(f"a direct endpoint needs a fixed path and POST only: {route.path}")
            if len(inspect.signature(route.endpoint).parameters) != 1:
                raise ValueError(f"a direct endpoint takes the request only: {route.endpoint.__qualname__}")
            self.direct[route.path] = DirectEndpoint(route.endpoint, spec.dialect)

    def dialect_for(self, scope: Scope) -> Dialect:
        """The dialect of the endpoint ``scope`` is (or would be) routed to; the default for none.

        Not on any hot path: only an error that needs its envelope asks."""
        routed = scope.get("endpoint")
        if routed is not None:
            return spec_of(routed).dialect
        for route in self.routes:
            match, _child = route.matches(scope)
            if match is not Match.NONE:
                return spec_of(getattr(route, "endpoint", None)).dialect
        return DEFAULT_DIALECT
