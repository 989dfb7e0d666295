#!/bin/sh
# Installs Debian's Chromium for the browser tests when it is missing. Runs as root on
# a fresh CI machine (apt-get needs no prompt there); anywhere else it says what to run.
# Exits non-zero, with the reason, when the browser cannot be installed: the browser
# tests fail loudly instead of skipping.
set -eu
BROWSER=/usr/bin/chromium
if [ -x "$BROWSER" ]; then exit 0; fi
if [ "$(id -u)" != "0" ]; then
  echo "chromium is missing at $BROWSER and this is not root: run 'sudo apt-get update && sudo apt-get install -y chromium'" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "chromium is missing at $BROWSER and there is no apt-get: install Debian's chromium package" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >&2
apt-get install -y -q --no-install-recommends chromium >&2
if [ ! -x "$BROWSER" ]; then
  echo "apt-get installed chromium but $BROWSER is not there" >&2
  exit 1
fi
