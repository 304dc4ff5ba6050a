#!/usr/bin/env bash
# Live dependency audit of the app's locked requirements, then the vulnerability gate:
#   audit-deps.sh [requirements file]   (default app/requirements.txt)
#
# 1. pip-audit (pinned with its dependencies in requirements-audit.txt, own venv .venv-audit)
#    audits the hashed, fully pinned file without installing it (--disable-pip --require-hashes)
#    against PyPI's advisory data, and writes its JSON report to $CI_STATE_DIR/pip-audit.json.
# 2. scripts/ci/vuln_gate.py rates every reported vulnerability from its OSV records (fetched
#    from the OSV API into $CI_STATE_DIR/advisories, kept as an artifact) and fails the build on
#    one at or above `failOn` of security/vulnerability-gate.yaml unless its allow-list names it
#    (an expired entry allows nothing). A dependency pip-audit could not audit fails too.
#
# Needs the network (PyPI, the OSV API): the pipelines run it; `make test` checks the gate on
# recorded advisories instead (tests/ci/test_vuln_gate.py), and .ci/run does not run it.
set -euo pipefail
# shellcheck source=scripts/ci/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

requirements="${1:-$REPO_ROOT/app/requirements.txt}"
[[ -f "$requirements" ]] || die "no requirements file at $requirements"
venv="${AUDIT_VENV:-$REPO_ROOT/.venv-audit}"
if [[ ! -x "$venv/bin/pip-audit" ]]; then
  log "pip-audit into $venv (requirements-audit.txt)"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$REPO_ROOT/requirements-audit.txt"
fi
mkdir -p "$STATE_DIR"
report="$STATE_DIR/pip-audit.json"
rm -f "$report"
status=0
"$venv/bin/pip-audit" -r "$requirements" --disable-pip --require-hashes \
  --format json --progress-spinner off -o "$report" || status=$?
# pip-audit exits 1 when it found vulnerabilities: the gate decides. No report is an error.
[[ -s "$report" ]] || die "pip-audit wrote no report (exit $status)"
"$PYTHON" "$CI_DIR/vuln_gate.py" --report "$report" --advisories "$STATE_DIR/advisories" \
  --fetch --policy "$REPO_ROOT/security/vulnerability-gate.yaml"
