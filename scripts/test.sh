#!/usr/bin/env bash
# Installs everything and runs all the tests: lint, engine, command line, app (AppTest) and the
# real-browser test in Debian's Chromium (installed here with apt-get when it is missing).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-dejavu-core >/dev/null
fi
python -m pip install -q -r requirements-dev.txt
python -m ruff check .
python -m pytest "$@"
