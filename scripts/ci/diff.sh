#!/usr/bin/env bash
# What a pull/merge request changes in a stack, offline:  diff.sh <stack> <target-branch> [file]
#
#   python -m stackctl diff <stack> --base <merge base of HEAD and the target> --markdown
#
# Renders the stack at the merge base and at HEAD (no credentials, no cluster) and writes a
# Markdown summary (default out/ci/diff-<stack>.md) whose first line is the marker
# `<!-- appstack-diff:<stack> -->`, so post-github-comment.sh / post-gitlab-note.sh keep one
# comment per stack. Also appended to $GITHUB_STEP_SUMMARY when that is set.
#
# Exit status follows `stackctl diff`: 0 nothing risky; 3 a risk flag (replace/delete of
# something stateful or protected, a selector change, a field another controller owns, ...)
# FAILS the job unless the change is explicitly allowed: APPSTACK_ALLOW_RISKY_DIFF=true (GitHub:
# the pull request label `allow-risky-diff` or the repository variable; GitLab: the merge request
# label or the CI/CD variable; Jenkins: the job's environment); 2 bad input and 1 failure fail
# the job always. The summary is written in every case.
set -euo pipefail
# shellcheck source=scripts/ci/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

stack="${1:-}"
require_stack "$stack"
target="${2:-}"
if [[ -z "$target" ]] || ! git check-ref-format --branch "$target" >/dev/null 2>&1; then
  die "usage: diff.sh <stack> <target-branch> [summary.md]"
fi
summary="${3:-$REPO_ROOT/out/ci/diff-${stack//\//_}.md}"
mkdir -p "$(dirname "$summary")"
remote="${DIFF_REMOTE:-origin}"
allowed="${APPSTACK_ALLOW_RISKY_DIFF:-false}"
cd "$REPO_ROOT"

tracking="refs/remotes/$remote/$target"
if ! git rev-parse --verify --quiet "$tracking" >/dev/null; then
  git fetch --quiet --no-tags "$remote" "+refs/heads/$target:$tracking" ||
    die "cannot fetch branch $target from $remote"
fi
base="$(git merge-base HEAD "$tracking")" ||
  die "HEAD and $target share no history in this clone (shallow? fetch with full depth)"

out="$(mktemp)"
err="$(mktemp)"
# shellcheck disable=SC2329 # called by the EXIT trap of common.sh
on_exit() { rm -f -- "$out" "$err"; }

log "diff $stack against $target (merge base ${base:0:7})"
status=0
stackctl diff "$stack" --base "$base" --markdown >"$out" 2>"$err" || status=$?
cat "$err" >&2

case "$status" in
  0) verdict="no risky change" ;;
  3) if [[ "$allowed" == true ]]; then verdict="RISKY, allowed (allow-risky-diff)"; else verdict="RISKY: needs review and the \`allow-risky-diff\` label"; fi ;;
  2) verdict="FAILED: bad input (exit 2)" ;;
  *) verdict="FAILED (exit $status)" ;;
esac

# shellcheck disable=SC2016 # the backticks are Markdown code spans, not command substitution
{
  printf '<!-- appstack-diff:%s -->\n' "$stack"
  printf '### Render diff of `%s` against `%s`: %s\n\n' "$stack" "$target" "$verdict"
  printf -- '- base: `%s` (merge base), head: `%s`\n' "${base:0:7}" "$(git rev-parse --short HEAD)"
  printf -- '- command: `python -m stackctl diff %s --base %s --markdown`\n\n' "$stack" "${base:0:7}"
  cat "$out"
  if [[ -s "$err" ]]; then
    printf '\n<details><summary>stderr</summary>\n\n````text\n'
    tail -c 8000 "$err"
    printf '\n````\n</details>\n'
  fi
} >"$summary"
if [[ -n "${GITHUB_STEP_SUMMARY:-}" ]]; then
  cat "$summary" >>"$GITHUB_STEP_SUMMARY"
fi
log "diff summary: $summary ($verdict)"

if [[ "$status" -eq 3 && "$allowed" == true ]]; then
  warn "risky change in $stack allowed by APPSTACK_ALLOW_RISKY_DIFF=true"
  exit 0
fi
if [[ "$status" -eq 3 ]]; then
  log "risky change in $stack: review it, then add the label allow-risky-diff (or set APPSTACK_ALLOW_RISKY_DIFF=true) and rerun"
fi
exit "$status"
