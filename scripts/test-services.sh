#!/bin/sh
# Install the servers the test suite starts (redis-server, PostgreSQL) and the browser it drives (chromium),
# with apt, when they are missing. Runs apt as root, or through `sudo -n` (never prompts); otherwise says
# what to install and exits 1. Safe to run every time: it does nothing when everything is present.
set -eu

missing=""
command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ] || missing="$missing redis-server"
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null 2>&1; then
    missing="$missing postgresql"
fi
command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || missing="$missing chromium"

if [ -z "$missing" ]; then
    echo "test services: redis-server, postgresql and chromium are installed"
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    as_root=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true >/dev/null 2>&1; then
    as_root="sudo -n"
else
    echo "test services: missing$missing, and this user can't run apt (not root, no password-less sudo)." >&2
    echo "Install them yourself, e.g.: sudo apt-get install$missing" >&2
    echo "(or point the tests at other builds: CODEXGATE_REDIS_SERVER=/path/to/redis-server," >&2
    echo " CODEXGATE_PG_BIN=/path/to/postgresql/bin)" >&2
    exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "test services: no apt-get on this system; install$missing with your package manager" >&2
    exit 1
fi

echo "test services: installing$missing"
# shellcheck disable=SC2086  # $as_root and $missing are word lists on purpose
DEBIAN_FRONTEND=noninteractive $as_root apt-get update -qq
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive $as_root apt-get install -y -qq --no-install-recommends $missing
# The package starts a system-wide server; the tests start their own on free ports and don't need it.
echo "test services: installed$missing"
