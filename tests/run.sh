#!/usr/bin/env bash
# Runs every Meridian test, after making sure what the tests use is on the machine:
# the PostgreSQL server (initdb, pg_ctl: the harness starts a throwaway cluster on
# 127.0.0.1 unless DATABASE_URL is set), runuser (to run it as `postgres` when we
# are root), the OCR engine with English data (tesseract-ocr, tesseract-ocr-eng) and
# promtool (prometheus), which checks both services' /metrics, and headless Chromium
# with its WebDriver (chromium, chromium-driver), which tests/tests/console.rs drives.
# As root with apt-get it installs what is missing; otherwise it stops at once and
# prints the command to run. Extra arguments go to `cargo test` (e.g. `-- --nocapture`).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null 2>&1; then
  missing+=(postgresql)
fi
if [ "$(id -u)" = 0 ] && ! command -v runuser >/dev/null 2>&1; then
  missing+=(util-linux)
fi
if ! command -v promtool >/dev/null 2>&1; then
  missing+=(prometheus)
fi
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  missing+=(chromium chromium-driver)
fi
if ! command -v tesseract >/dev/null 2>&1 || ! tesseract --list-langs 2>/dev/null | grep -qx eng; then
  missing+=(tesseract-ocr tesseract-ocr-eng)
fi

if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "tests/run.sh: installing ${missing[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  else
    echo "tests/run.sh: missing ${missing[*]}; install them first, e.g.:" >&2
    echo "    sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
  fi
fi

exec cargo test --workspace "$@"
