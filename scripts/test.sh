#!/usr/bin/env bash
# Installs everything and runs all the tests: lint, engine, command line, app (AppTest) and the
# real-browser tests in Debian's Chromium, with nginx in front of two replicas for the class-server test
# (both installed here with apt-get when they are missing).
set -euo pipefail
cd "$(dirname "$0")/.."
if { [ ! -x /usr/bin/chromium ] || [ ! -x /usr/sbin/nginx ]; } && command -v apt-get >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-dejavu-core nginx >/dev/null
fi
python -m pip install -q -r requirements-dev.txt
python -m ruff check .
python -m pytest "$@"
