#!/usr/bin/env bash
# Prepare a CI job that runs stackctl against a real backend (preview, deploy, rollback):
#   - the project venv with the program's pinned dependencies (`make venv`, or the same by hand
#     where the image has no make);
#   - the policy pack's own venv (policy/PulumiPolicy.yaml: virtualenv venv), which
#     `--policy-pack policy` runs in;
#   - checks that the Pulumi CLI is on PATH (the pipeline installs it: pulumi/actions, the
#     pulumi/pulumi-python image, or the Jenkins `pulumi` pod template image).
# Test jobs do not need this: `make test` creates what it needs.
set -euo pipefail
# shellcheck source=scripts/ci/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$REPO_ROOT"

host_python="${HOST_PYTHON:-python3}"
if command -v make >/dev/null 2>&1; then
  make venv
elif [[ ! -x .venv/bin/python ]]; then
  "$host_python" -m venv .venv
  .venv/bin/pip install --quiet --upgrade pip
  .venv/bin/pip install --quiet -r requirements.txt
fi

if [[ ! -x policy/venv/bin/python ]]; then
  log "policy pack venv (policy/venv)"
  "$host_python" -m venv policy/venv
  policy/venv/bin/pip install --quiet --upgrade pip
  # from the pack's directory, as the Pulumi CLI does: its requirements hold a relative path
  (cd policy && venv/bin/pip install --quiet -r requirements.txt)
fi

command -v pulumi >/dev/null 2>&1 || die "the Pulumi CLI is not on PATH"
log "pulumi $(pulumi version)"
