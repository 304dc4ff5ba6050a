#!/usr/bin/env bash
# Deploy one stack from CI:  deploy.sh <stack>
#
#   python -m stackctl deploy <stack> --yes [--refresh]
#     (refresh if DEPLOY_REFRESH=true, preview with the policy pack, up with a message carrying
#      the git commit; non-zero on any failure). It runs under `timeout` (DEPLOY_TIMEOUT,
#      default 45m) with SIGINT, which Pulumi handles by stopping cleanly, so the rollback below
#      still runs before the CI job's own time limit kills everything.
#
# On failure of a prod stack it rolls back (rollback.sh: only if an update actually ran) and then
# exits non-zero EVEN IF THE ROLLBACK SUCCEEDED, so the pipeline stays red and someone looks.
# Other stacks (dev) are left as they are, for debugging. ROLLBACK_ON_FAILURE=true|false
# overrides the default.
#
# Needs: the Pulumi CLI on PATH, the project venv (bootstrap.sh), PULUMI_BACKEND_URL or
# PULUMI_ACCESS_TOKEN, PULUMI_CONFIG_PASSPHRASE (passphrase secrets provider) and KUBECONFIG_DATA
# / KUBECONFIG_DATA_B64 / a KUBECONFIG file, all from the CI system's secret store.
set -euo pipefail
# shellcheck source=scripts/ci/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

stack="${1:-}"
require_stack "$stack"
require_credentials
use_kubeconfig

environment="$(stack_environment "$stack")"
rollback="${ROLLBACK_ON_FAILURE:-}"
if [[ -z "$rollback" ]]; then
  if [[ "$environment" == prod ]]; then rollback=true; else rollback=false; fi
fi

# The newest history version before this deploy: a rollback only undoes what ran after it.
# A stack that does not exist yet has no history (0).
since=0
if history_json="$(stackctl history "$stack" --json 2>/dev/null)"; then
  since="$(printf '%s' "$history_json" | "$PYTHON" "$CI_DIR/rollback_plan.py" --latest)"
fi
mkdir -p "$STATE_DIR"
printf '%s\n' "$since" >"$(state_file deploy-since "$stack")"
rm -f -- "$(state_file rollback-result "$stack")"

args=(deploy "$stack" --yes)
if [[ "${DEPLOY_REFRESH:-false}" == true ]]; then
  args+=(--refresh)
fi

log "deploy $stack (history before: v$since)"
status=0
(cd "$REPO_ROOT" && timeout --signal=INT --kill-after=5m "${DEPLOY_TIMEOUT:-45m}" \
  "$PYTHON" -m stackctl "${args[@]}") || status=$?
if [[ "$status" -eq 0 ]]; then
  log "deploy $stack: succeeded"
  exit 0
fi

log "deploy $stack: FAILED (exit $status)"
if [[ "$rollback" == true ]]; then
  if "$CI_DIR/rollback.sh" "$stack"; then
    log "automatic rollback of $stack finished; the failed deploy still fails this pipeline"
  else
    log "automatic rollback of $stack FAILED: the stack needs an operator (docs/operations.md)"
  fi
else
  log "no automatic rollback for $stack (ROLLBACK_ON_FAILURE=$rollback)"
fi
exit "$status"
