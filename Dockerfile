# codexgate in a container: a non-root user, its data (credentials, keys, usage database) in /data.
#
# Bind safety: inside a container the server must listen on 0.0.0.0 to be reachable through a
# published port, and codexgate refuses a non-loopback bind while no API key exists. This image
# keeps that rule (it does NOT set CODEXGATE_ALLOW_NO_AUTH): create a key first, it is stored in the
# /data volume and the server picks it up within a second:
#   docker compose run --rm codexgate keys create --name me
# Only if the port is published on the host's loopback alone (127.0.0.1:9191:9191) and nobody else
# can reach it, set CODEXGATE_ALLOW_NO_AUTH=true instead.

# Base image pinned by its exact version tag (a digest cannot be looked up where this is written).
FROM python:3.11.14-slim-bookworm AS build
COPY --from=ghcr.io/astral-sh/uv:0.13.9 /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /src
# Dependencies first (cached while only the source changes), exactly as pinned in uv.lock.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY src ./src
RUN uv sync --frozen --no-dev --no-editable

FROM python:3.11.14-slim-bookworm
RUN useradd --system --uid 10001 --user-group --create-home --home-dir /home/codexgate codexgate \
    && mkdir -p /data \
    && chown codexgate:codexgate /data \
    && chmod 0700 /data
COPY --from=build /app/.venv /app/.venv
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    CODEXGATE_HOME=/data \
    CODEX_HOME=/data/codex \
    CODEXGATE_HOST=0.0.0.0 \
    CODEXGATE_PORT=9191 \
    CODEXGATE_LOG_FORMAT=json
VOLUME ["/data"]
EXPOSE 9191
USER codexgate
WORKDIR /home/codexgate
# slim has no curl: ask /health (always open, even with API keys) with Python's standard library, on
# the port the server really uses: the one it wrote to $CODEXGATE_HOME/server.json when it bound it
# (CODEXGATE_PORT before that file exists).
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
    CMD ["python", "-c", "import json, os, pathlib, urllib.parse, urllib.request; f = pathlib.Path(os.environ.get('CODEXGATE_HOME', '/data'), 'server.json'); port = urllib.parse.urlsplit(json.loads(f.read_text()).get('url', '')).port if f.is_file() else None; urllib.request.urlopen('http://127.0.0.1:%s/health' % (port or os.environ.get('CODEXGATE_PORT', '9191')), timeout=4)"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["codexgate"]
CMD ["serve"]
