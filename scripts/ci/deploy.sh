#!/usr/bin/env bash
# Deploy one stack from CI:  deploy.sh <stack>
#
#   python -m stackctl deploy <stack> --yes [--refresh] [--image web=<repo>@sha256:... ...]
#     (refresh if DEPLOY_REFRESH=true; the images this pipeline built (DEPLOY_IMAGES or the file
#      build-image.sh wrote) set in the stack config; preview with the policy pack, up with a
#      message carrying the git commit and the images; non-zero on any failure). It runs under
#      `timeout` (DEPLOY_TIMEOUT, default 45m) with SIGINT, which Pulumi handles by stopping
#      cleanly, so the rollback below still runs before the CI job's own time limit kills it.
#   verify.sh <stack>   every app checked from outside (python -m stackctl verify): a stack that
#     updated but does not answer ready is a failed deploy too.
#
# On failure of a stack that keeps prod's rules (staging, prod: ROLLBACK_ENVIRONMENTS in
# common.sh) it rolls back (rollback.sh: only if an update actually ran) and then exits non-zero
# EVEN IF THE ROLLBACK SUCCEEDED, so the pipeline stays red (a staging failure stops it before
# the prod approval) and someone looks. Other stacks (dev) are left as they are, for debugging.
# ROLLBACK_ON_FAILURE=true|false overrides the default. After a rollback the stack is verified
# again (reported, not fatal).
#
# Notifications (APPSTACK_NOTIFY_WEBHOOK_URL or APPSTACK_NOTIFY_WEBHOOK_URL_FILE set, from the
# CI's secret store): a failed deploy posts one message (stack, environment, apps and images, the
# reason in one line, whether a rollback follows) before the rollback starts; rollback.sh posts
# the rollback's outcome. A notification never changes this script's exit status.
#
# GitOps (GITOPS=true): the same step in the same place of the pipeline (so behind the same
# approval for prod) publishes the stack's manifests with the built images instead
# (publish-manifests.sh <stack>; Argo CD applies them) and verifies the apps (verify.sh). When a
# staging or prod stack fails that, its manifests are reverted on the branch (revert-manifests.sh), the
# apps are checked again without expecting the new version, and the job still fails.
#
# Needs: the Pulumi CLI on PATH, the project venv (bootstrap.sh), PULUMI_BACKEND_URL or
# PULUMI_ACCESS_TOKEN, PULUMI_CONFIG_PASSPHRASE (passphrase secrets provider) and KUBECONFIG_DATA
# / KUBECONFIG_DATA_B64 / a KUBECONFIG file, all from the CI system's secret store.
set -euo pipefail
# shellcheck source=scripts/ci/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

stack="${1:-}"
require_stack "$stack"
built="$(deploy_images)"

environment="$(stack_environment "$stack")"
rollback="${ROLLBACK_ON_FAILURE:-}"
if [[ -z "$rollback" ]]; then
  if rolls_back_on_failure "$environment"; then rollback=true; else rollback=false; fi
fi

# What the failure message says comes next, and the images this deploy meant to run (none: the
# notification names the stack file's).
next_step() {
  if [[ "$rollback" == true ]]; then
    printf 'automatic rollback follows\n'
  else
    printf 'no automatic rollback (%s)\n' "$environment"
  fi
}
image_args=()
refs=()
for image in $built; do
  image_args+=(--image "$image")
  refs+=("${image#*=}")
done
# An environment that requires signed images (prod: appstack:imageSigning) has stackctl run
# `cosign verify` of each digest before anything changes; cosign reads the signatures with this
# login (none set: the runner's own docker login).
registry_login "${refs[@]}"

if [[ "${GITOPS:-false}" == true ]]; then
  [[ -n "${VERIFY_URLS:-}" ]] || die "GITOPS=true: set VERIFY_URLS (app=URL,...) so the deploy can be verified"
  log "GitOps: publishing the $stack manifests; Argo CD applies them"
  "$CI_DIR/publish-manifests.sh" "$stack"
  if "$CI_DIR/verify.sh" "$stack"; then
    exit 0
  fi
  log "GitOps: $stack FAILED verification after its manifests were published"
  notify deploy-failed "$stack" \
    "GitOps: the apps did not pass verification after the manifests were published; $(next_step)" \
    "${image_args[@]}"
  if [[ "$rollback" != true ]]; then
    log "no automatic rollback for $stack (ROLLBACK_ON_FAILURE=$rollback)"
  elif "$CI_DIR/revert-manifests.sh" "$stack"; then
    log "manifests of $stack reverted; the failed deploy still fails this pipeline"
    notify rolled-back "$stack" "GitOps: the manifests of $stack were reverted to their previous commit"
    VERIFY_EXPECT_VERSION=false "$CI_DIR/verify.sh" "$stack" ||
      log "$stack does not pass verification after the revert either"
  else
    log "automatic revert of $stack FAILED: the manifests branch needs an operator (docs/ci.md)"
    notify rollback-failed "$stack" \
      "GitOps: reverting the manifests failed; the manifests branch needs an operator"
  fi
  exit 1
fi

require_credentials
use_kubeconfig

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
args+=("${image_args[@]}")

log "deploy $stack (history before: v$since)"
status=0
# stderr also goes to a file, for the failure's one-line reason (stdout untouched)
errors="$(state_file deploy-errors "$stack")"
{
  (cd "$REPO_ROOT" && timeout --signal=INT --kill-after=5m "${DEPLOY_TIMEOUT:-45m}" \
    "${NO_NOTIFY[@]}" "$PYTHON" -m stackctl "${args[@]}") 2>&1 1>&3 3>&- | tee "$errors" >&2
} 3>&1 || status=$?
reason="$(failure_line "$errors")"
if [[ "$status" -eq 124 ]]; then
  reason="stackctl deploy timed out after ${DEPLOY_TIMEOUT:-45m}${reason:+: $reason}"
fi
if [[ "$status" -eq 0 ]]; then
  log "deploy $stack: succeeded; checking it from outside"
  if "$CI_DIR/verify.sh" "$stack"; then
    log "deploy $stack: verified"
    exit 0
  fi
  status=1
  # The update succeeded, so rollback_plan.py must undo it although its result is `succeeded`.
  export ROLLBACK_UNHEALTHY=true
  log "deploy $stack: FAILED verification after a successful update"
  reason="the update succeeded but the apps did not pass verification (stackctl verify)"
else
  log "deploy $stack: FAILED (exit $status)"
fi
notify deploy-failed "$stack" "${reason:-stackctl deploy exited $status}; $(next_step)" \
  "${image_args[@]}"

if [[ "$rollback" == true ]]; then
  if "$CI_DIR/rollback.sh" "$stack"; then
    log "automatic rollback of $stack finished; the failed deploy still fails this pipeline"
    "$CI_DIR/verify.sh" "$stack" || log "$stack does not pass verification after the rollback either"
  else
    log "automatic rollback of $stack FAILED: the stack needs an operator (docs/operations.md)"
  fi
else
  log "no automatic rollback for $stack (ROLLBACK_ON_FAILURE=$rollback)"
fi
exit "$status"
