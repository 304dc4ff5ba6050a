#!/usr/bin/env bash
# Post (or update) a preview or diff summary as a pull request comment:
#   post-github-comment.sh <pr-number> <summary.md>
# Uses the GitHub CLI (preinstalled on hosted runners) with GH_TOKEN (the job's GITHUB_TOKEN with
# `pull-requests: write`) and GITHUB_REPOSITORY. The summary's first line is a marker
# (`<!-- appstack-preview:<stack> -->` or `<!-- appstack-diff:<stack> -->`): the comment carrying it is edited in place, so each stack
# keeps one comment per pull request however often it is pushed.
set -euo pipefail
{ set +x; } 2>/dev/null

pr="${1:-}"
file="${2:-}"
[[ "$pr" =~ ^[0-9]+$ && -f "$file" ]] || {
  echo "usage: post-github-comment.sh <pr-number> <summary.md>" >&2
  exit 2
}
: "${GITHUB_REPOSITORY:?GITHUB_REPOSITORY is not set}"
[[ -n "${GH_TOKEN:-}" ]] || {
  echo "error: GH_TOKEN is not set (pass the job's github.token through env:)" >&2
  exit 2
}

marker="$(head -n 1 "$file")"
[[ "$marker" =~ ^\<!--\ appstack-(preview|diff):[A-Za-z0-9._/-]+\ --\>$ ]] || {
  echo "error: $file does not start with an appstack-preview/appstack-diff marker" >&2
  exit 2
}

id="$(gh api --paginate "repos/$GITHUB_REPOSITORY/issues/$pr/comments" \
  --jq ".[] | select(.body | startswith(\"$marker\")) | .id" | head -n 1)"
if [[ -n "$id" ]]; then
  gh api --method PATCH "repos/$GITHUB_REPOSITORY/issues/comments/$id" -F "body=@$file" >/dev/null
  echo "updated comment $id on #$pr" >&2
else
  gh pr comment "$pr" --repo "$GITHUB_REPOSITORY" --body-file "$file" >/dev/null
  echo "commented on #$pr" >&2
fi
