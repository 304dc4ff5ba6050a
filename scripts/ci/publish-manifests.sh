#!/usr/bin/env bash
# GitOps: render a stack and push the manifests to the branch Argo CD watches:
#   publish-manifests.sh <stack> [branch]      (branch: $MANIFESTS_BRANCH, default `manifests`)
#
#   python -m stackctl render <stack> --out <worktree>/manifests/<stack>
#
# with the images this pipeline built (DEPLOY_IMAGES / build-image.sh) written into
# Pulumi.<stack>.yaml of the checkout first (python -m stackctl.ops.images; restored on exit), so the
# manifests run the pushed digests. Then one commit on <branch> ("render <stack> from <commit>") pushed, only when the manifests
# changed; the commit pushed and the branch head before it are recorded for revert-manifests.sh
# ($STATE_DIR/published-<stack>). The branch is fetched from $MANIFESTS_REMOTE (default origin) and pushed there too,
# unless MANIFESTS_PUSH_URL is set: then it is pushed to that URL with the token in
# MANIFESTS_PUSH_TOKEN, which a credential helper reads from the environment (the token is never
# on a command line, in a URL or in .git/config). Render runs under Pulumi's mock runtime:
# no backend, passphrase or cluster credentials; secret values are redacted in the output, so
# the real Secrets come from the cluster (e.g. an external-secrets operator), not from git.
# The job needs push access to the branch (GitHub: contents: write; GitLab: MANIFESTS_PUSH_URL +
# MANIFESTS_PUSH_TOKEN, a project access token with write_repository; Jenkins: the checkout
# credential).
set -euo pipefail
# shellcheck source=scripts/ci/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

stack="${1:-}"
require_stack "$stack"
branch="$(manifests_branch "${2:-}")"
remote="${MANIFESTS_REMOTE:-origin}"
cd "$REPO_ROOT"
source_commit="$(git rev-parse --short HEAD)"

worktree="$(worktree_path manifests)"
stack_file="Pulumi.${stack##*/}.yaml"
# shellcheck disable=SC2329 # called by the EXIT trap of common.sh
on_exit() {
  git worktree remove --force "$worktree" >/dev/null 2>&1 || true
  git checkout --quiet -- "$stack_file" 2>/dev/null || true
}
published="$(state_file published "$stack")"
rm -f -- "$published"
before=""
if manifests_checkout "$worktree" "$branch" "$remote"; then
  before="$(git -C "$worktree" rev-parse HEAD)"
else
  log "branch $branch does not exist on $remote yet: starting it"
  git worktree add --quiet --detach "$worktree" HEAD
  git -C "$worktree" checkout --quiet --orphan "$branch"
  git -C "$worktree" rm -r -q -f --cached .
  git -C "$worktree" clean -f -d -x -q
fi

target="$(manifests_target "$stack")"
built="$(deploy_images)"
if [[ -n "$built" ]]; then
  # shellcheck disable=SC2086 # one service=image per word
  "$PYTHON" -m stackctl.ops.images "$stack" $built
fi
stackctl render "$stack" --out "$worktree/$target"
git -C "$worktree" add --all -- "$target"
if git -C "$worktree" diff --cached --quiet; then
  log "manifests of $stack unchanged at $source_commit: nothing to push"
  exit 0
fi
manifests_commit "$worktree" "render $stack from $source_commit"
manifests_push "$worktree" "$branch" "$remote"
# What revert-manifests.sh undoes if the apps then fail verification (deploy.sh).
mkdir -p "$STATE_DIR"
printf '%s\n%s\n' "$(git -C "$worktree" rev-parse HEAD)" "$before" >"$published"
log "pushed manifests of $stack ($source_commit) to $branch"
