"""The HTTP server: the app factory (:mod:`.app`), the layer in front (:mod:`.asgi`), the endpoints
(:mod:`.routes`, declared once with :mod:`.endpoints`) and the one path of an upstream call
(:mod:`.gateway`, :mod:`.answers`, :mod:`.streaming`). Import from the modules; nothing is re-exported
here, so importing one part does not load the rest."""

__all__ = [
    "access",
    "answers",
    "app",
    "asgi",
    "body",
    "endpoints",
    "errors",
    "gateway",
    "limits",
    "openapi",
    "request_id",
    "request_models",
    "routes",
    "runner",
    "streaming",
]
