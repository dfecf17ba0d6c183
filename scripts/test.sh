#!/usr/bin/env bash
# Installs everything and runs all the tests: lint, engine, command line, app (AppTest) and the
# real-browser tests in Debian's Chromium, with nginx in front of two replicas for the class-server test,
# and class mode's storage tests on a throwaway PostgreSQL cluster (all three installed here with apt-get
# when they are missing; the tests never start or touch the system's own cluster).
set -euo pipefail
cd "$(dirname "$0")/.."
if { [ ! -x /usr/bin/chromium ] || [ ! -x /usr/sbin/nginx ] || ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; } \
  && command -v apt-get >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-dejavu-core nginx postgresql >/dev/null
fi
python -m pip install -q -r requirements-dev.txt
python -m ruff check .
python -m pytest "$@"
