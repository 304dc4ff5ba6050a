#!/usr/bin/env bash
# Install promtool from Debian's `prometheus` package (the tests run `promtool check/test rules`).
set -euo pipefail
if command -v promtool >/dev/null 2>&1; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
  else
    echo "promtool is missing and this user cannot install packages; install Debian's 'prometheus' package" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null
promtool --version >/dev/null
