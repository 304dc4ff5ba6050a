#!/usr/bin/env bash
# Roll a stack back after a failed deploy:  rollback.sh <stack> [--since <version>]
#
# <version> is the newest history version before the failed deploy started; deploy.sh records it
# (out/ci/deploy-since-<stack>), so callers normally pass only the stack. rollback_plan.py reads
# the history and picks one of:
#   none      no update ran after <version> (refresh/preview/policy/credential failure): nothing
#             changed, so nothing is rolled back (exit 0)
#   config    the last good update ran this commit: python -m stackctl rollback <stack> --to V --yes
#   redeploy  the last good update ran another commit C: deploy C again from a git worktree
#             with the images that update ran (`--image`, from its history row), not the stack
#             file's default (stackctl rollback is config-only and refuses across commits)
#   fail      no earlier successful update (first deploy) or no recorded commit (exit 1)
# ROLLBACK_UNHEALTHY=true (deploy.sh, after a failed `stackctl verify`): the update succeeded but
# the stack is unhealthy, so it is undone too.
# Exit 0 when the stack is back on its last good update (or nothing needed undoing), non-zero
# otherwise. Safe to call twice for one deploy (deploy.sh, then a pipeline's failure handler):
# the second call reports the first one's result. Callers keep the pipeline red either way.
# Notifications (common.sh `notify`): a rollback that ran (config, redeploy) posts its outcome
# with the version rolled back to; one that was needed but not possible (fail), or died, posts a
# failure; `none` and a repeated call post nothing.
set -euo pipefail
# shellcheck source=scripts/ci/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

stack="${1:-}"
require_stack "$stack"
since_file="$(state_file deploy-since "$stack")"
result_file="$(state_file rollback-result "$stack")"
if [[ "${2:-}" == "--since" ]]; then
  since="${3:-}"
elif [[ -f "$since_file" ]]; then
  since="$(<"$since_file")"
else
  log "rollback of $stack: no deploy recorded in this job ($since_file), nothing to roll back"
  exit 0
fi
[[ "$since" =~ ^[0-9]+$ ]] || die "usage: rollback.sh <stack> [--since <version>]"

if [[ -f "$result_file" ]]; then
  read -r done_since done_status <"$result_file" || true
  if [[ "${done_since:-}" == "$since" ]]; then
    [[ "${done_status:-}" =~ ^[0-9]+$ ]] || done_status=1
    log "rollback of $stack after v$since already ran (exit ${done_status:-?}); not repeating it"
    exit "${done_status:-1}"
  fi
fi
mkdir -p "$STATE_DIR"
require_credentials
use_kubeconfig
worktree=""
action="" version="" commit="" images="" impossible=""
notify_outcome() {
  local status="$1" args=()
  if [[ "$version" =~ ^[0-9]+$ ]]; then
    args+=(--rolled-back-to "$version")
  fi
  if [[ -n "$images" && "$images" != "-" ]]; then
    args+=(--image "$images")
  fi
  if [[ "$status" -ne 0 ]]; then
    notify rollback-failed "$stack" \
      "automatic rollback ${impossible:-exited $status}; the stack needs an operator" "${args[@]}"
  elif [[ "$action" == config || "$action" == redeploy ]]; then
    notify rolled-back "$stack" \
      "automatic rollback after a failed deploy: v$version (commit $commit) runs again" "${args[@]}"
  fi
}
# shellcheck disable=SC2329 # called by the EXIT trap of common.sh
on_exit() {
  if [[ -n "$worktree" ]]; then
    git -C "$REPO_ROOT" worktree remove --force "$worktree" || true
  fi
  printf '%s %s\n' "$since" "$1" >"$result_file"
  notify_outcome "$1"
}

head="$(git -C "$REPO_ROOT" rev-parse HEAD 2>/dev/null || true)"
history_json="$(stackctl history "$stack" --json)" || die "cannot read the history of $stack"
plan_args=(--since "$since" --head "$head")
if [[ "${ROLLBACK_UNHEALTHY:-false}" == true ]]; then
  plan_args+=(--unhealthy)
fi
plan_reason="$(state_file rollback-plan "$stack")"
read -r action version commit images < <(
  printf '%s' "$history_json" | "$PYTHON" "$CI_DIR/rollback_plan.py" "${plan_args[@]}" 2>"$plan_reason"
) || true
cat -- "$plan_reason" >&2 || true

case "${action:-}" in
  none)
    log "rollback of $stack: not needed"
    exit 0
    ;;
  config)
    log "rollback of $stack: restoring the config of v$version (commit $commit)"
    stackctl rollback "$stack" --to "$version" --yes
    ;;
  redeploy)
    log "rollback of $stack: deploying v$version's commit $commit again"
    if ! git -C "$REPO_ROOT" rev-parse --verify --quiet "$commit^{commit}" >/dev/null; then
      git -C "$REPO_ROOT" fetch --quiet --unshallow origin 2>/dev/null ||
        git -C "$REPO_ROOT" fetch --quiet origin || true
    fi
    full="$(git -C "$REPO_ROOT" rev-parse --verify --quiet "$commit^{commit}")" ||
      die "commit $commit is not in this clone (the deploy job must fetch full history)"
    worktree="$(worktree_path rollback)"
    git -C "$REPO_ROOT" worktree add --quiet --detach "$worktree" "$full"
    # Same interpreter and dependencies: Pulumi.yaml's virtualenv (.venv) and the policy pack's.
    ln -s "$REPO_ROOT/.venv" "$worktree/.venv"
    if [[ -d "$REPO_ROOT/policy/venv" && -d "$worktree/policy" ]]; then
      ln -s "$REPO_ROOT/policy/venv" "$worktree/policy/venv"
    fi
    redeploy=(deploy "$stack" --yes)
    if [[ -n "${images:-}" && "$images" != "-" ]]; then
      # `deploy --image` came with stackctl/images.py (stackctl/ops/images.py since issue 25)
      if [[ -f "$worktree/stackctl/ops/images.py" || -f "$worktree/stackctl/images.py" ]]; then
        for image in ${images//,/ }; do
          redeploy+=(--image "$image")
        done
      else
        # A commit from before `deploy --image` existed: its stack file names its image.
        warn "commit $commit predates deploy --image: redeploying the images of its stack file"
      fi
    fi
    (cd "$worktree" && timeout --signal=INT --kill-after=5m "${DEPLOY_TIMEOUT:-45m}" \
      "${NO_NOTIFY[@]}" "$PYTHON" -m stackctl "${redeploy[@]}")
    ;;
  *)
    log "rollback of $stack: not possible automatically; an operator decides (docs/operations.md)"
    impossible="not possible: $(head -n 1 "$plan_reason" 2>/dev/null || true)"
    exit 1
    ;;
esac
log "rollback of $stack: done; the stack runs v$version's program and config again"
