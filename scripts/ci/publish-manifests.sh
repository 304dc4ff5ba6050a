#!/usr/bin/env bash
# GitOps: render a stack and push the manifests to the branch Argo CD watches:
#   publish-manifests.sh <stack> [branch]      (branch: $MANIFESTS_BRANCH, default `manifests`)
#
#   python -m stackctl render <stack> --out <worktree>/manifests/<stack>
#
# with the images this pipeline built (DEPLOY_IMAGES / build-image.sh) written into
# Pulumi.<stack>.yaml of the checkout first (python -m stackctl.images; restored on exit), so the
# manifests run the pushed digests. Then one commit on <branch> ("render <stack> from <commit>") pushed, only when the manifests
# changed. The branch is fetched from $MANIFESTS_REMOTE (default origin) and pushed there too,
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
branch="${2:-${MANIFESTS_BRANCH:-manifests}}"
remote="${MANIFESTS_REMOTE:-origin}"
git check-ref-format --branch "$branch" >/dev/null || die "invalid branch name: $branch"
cd "$REPO_ROOT"
source_commit="$(git rev-parse --short HEAD)"

worktree="$(mktemp -d "${RUNNER_TEMP:-${TMPDIR:-/tmp}}/appstack-manifests.XXXXXX")"
rmdir "$worktree"
stack_file="Pulumi.${stack##*/}.yaml"
# shellcheck disable=SC2329 # called by the EXIT trap of common.sh
on_exit() {
  git worktree remove --force "$worktree" >/dev/null 2>&1 || true
  git checkout --quiet -- "$stack_file" 2>/dev/null || true
}
if git fetch --quiet "$remote" "refs/heads/$branch" 2>/dev/null; then
  git worktree add --quiet --detach "$worktree" FETCH_HEAD
else
  log "branch $branch does not exist on $remote yet: starting it"
  git worktree add --quiet --detach "$worktree" HEAD
  git -C "$worktree" checkout --quiet --orphan "$branch"
  git -C "$worktree" rm -r -q -f --cached .
  git -C "$worktree" clean -f -d -x -q
fi

target="manifests/${stack//\//_}"
built="$(deploy_images)"
if [[ -n "$built" ]]; then
  # shellcheck disable=SC2086 # one service=image per word
  "$PYTHON" -m stackctl.images "$stack" $built
fi
stackctl render "$stack" --out "$worktree/$target"
git -C "$worktree" add --all -- "$target"
if git -C "$worktree" diff --cached --quiet; then
  log "manifests of $stack unchanged at $source_commit: nothing to push"
  exit 0
fi
git -C "$worktree" \
  -c "user.name=${GIT_AUTHOR_NAME:-appstack-ci}" \
  -c "user.email=${GIT_AUTHOR_EMAIL:-appstack-ci@users.noreply.invalid}" \
  commit --quiet -m "render $stack from $source_commit"
if [[ -n "${MANIFESTS_PUSH_URL:-}" ]]; then
  [[ -n "${MANIFESTS_PUSH_TOKEN:-}" ]] || die "MANIFESTS_PUSH_URL is set but MANIFESTS_PUSH_TOKEN is not"
  # shellcheck disable=SC2016 # expanded by the helper's shell at push time, from the environment
  git -C "$worktree" -c credential.helper= \
    -c credential.helper='!f() { echo username=oauth2; echo "password=${MANIFESTS_PUSH_TOKEN}"; }; f' \
    push --quiet "$MANIFESTS_PUSH_URL" "HEAD:refs/heads/$branch"
else
  git -C "$worktree" push --quiet "$remote" "HEAD:refs/heads/$branch"
fi
log "pushed manifests of $stack ($source_commit) to $branch"
