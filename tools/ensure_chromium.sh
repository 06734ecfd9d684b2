#!/usr/bin/env bash
# Headless Chromium for the browser tests of the QuickSight dashboards.
#
# Playwright (a Python package) drives the browser, but its own browser
# download needs the internet; the course uses Debian's `chromium` package
# instead. Installed here with apt-get when this runs as root (as in CI or a
# container) and it is missing. Without root, nothing is installed: only the
# browser tests skip, saying how to install it. Never fails `make`.
set -u
if command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ]; then exit 0; fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing Debian's chromium for the browser tests (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q chromium >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null 2>&1; } \
    || echo "warning: apt-get could not install chromium; the browser tests will skip" >&2
else
  echo "note: no chromium found; the browser tests will skip." \
       "Install it with: sudo apt-get install chromium" >&2
fi
exit 0
