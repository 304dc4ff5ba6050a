#!/usr/bin/env bash
# GitOps rollback: put a stack's manifests back as they were before this pipeline published them:
#   revert-manifests.sh <stack> [branch]      (branch: $MANIFESTS_BRANCH, default `manifests`)
#
# deploy.sh calls it when the apps of a staging or prod stack fail verify.sh after
# publish-manifests.sh pushed new manifests. That publish recorded the commit it pushed and the branch head before it
# ($STATE_DIR/published-<stack>). This script fetches the branch, restores manifests/<stack> as
# it was at that earlier head (removes it when the stack had none) and pushes one commit,
# "revert <stack> to <head>: <pushed> failed verification"; Argo CD then syncs the previous
# manifests. Commits published since for other stacks stay as they are.
#
# Exit 0 when the stack's manifests are back (or this pipeline published none: unchanged
# manifests, nothing to undo). It refuses (exit 1) when the stack's manifests changed on the
# branch since this pipeline pushed them: a newer publish is not undone blindly. Safe to call
# twice: the record is removed once the revert is pushed. Callers keep the pipeline red.
set -euo pipefail
# shellcheck source=scripts/ci/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

stack="${1:-}"
require_stack "$stack"
branch="$(manifests_branch "${2:-}")"
remote="${MANIFESTS_REMOTE:-origin}"
published="$(state_file published "$stack")"
if [[ ! -f "$published" ]]; then
  log "this pipeline published no manifests of $stack: nothing to revert"
  exit 0
fi
{
  read -r pushed
  read -r before || true
} <"$published"
cd "$REPO_ROOT"
target="$(manifests_target "$stack")"

worktree="$(worktree_path manifests)"
# shellcheck disable=SC2329 # called by the EXIT trap of common.sh
on_exit() { git worktree remove --force "$worktree" >/dev/null 2>&1 || true; }
manifests_checkout "$worktree" "$branch" "$remote" || {
  log "branch $branch is not on $remote: cannot revert $stack"
  exit 1
}
if ! git -C "$worktree" diff --quiet "$pushed" HEAD -- "$target"; then
  log "manifests of $stack changed on $branch since ${pushed:0:12}: not reverting a newer publish"
  exit 1
fi

git -C "$worktree" rm -r -q --ignore-unmatch -- "$target"
if [[ -n "$before" ]] && git -C "$worktree" cat-file -e "$before:$target" 2>/dev/null; then
  git -C "$worktree" checkout --quiet "$before" -- "$target"
fi
if [[ -e "$worktree/$target" ]]; then
  git -C "$worktree" add --all -- "$target"
fi
was="${before:0:12}"
[[ -n "$was" ]] || was="no manifests (its first publish)"
if git -C "$worktree" diff --cached --quiet; then
  log "manifests of $stack on $branch are already those before ${pushed:0:12}"
else
  manifests_commit "$worktree" \
    "revert $stack to $was: ${pushed:0:12} failed verification"
  manifests_push "$worktree" "$branch" "$remote"
  log "reverted the manifests of $stack on $branch to $was"
fi
rm -f -- "$published"
