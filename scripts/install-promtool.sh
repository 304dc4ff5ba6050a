#!/usr/bin/env bash
# Install promtool from Debian's `prometheus` package (the tests run `promtool check/test rules`).
set -euo pipefail
if command -v promtool >/dev/null 2>&1; then
  exit 0
fi
"$(dirname "$0")/apt-install.sh" prometheus
promtool --version >/dev/null
