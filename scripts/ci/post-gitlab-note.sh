#!/usr/bin/env bash
# Post (or update) a preview summary as a merge request note:  post-gitlab-note.sh <summary.md>
# Uses GitLab's REST API at $CI_API_V4_URL (predefined) with PREVIEW_NOTE_TOKEN, a masked CI/CD
# variable holding a project access token (role Reporter or higher, scope `api`): CI_JOB_TOKEN
# cannot write notes. Without the token the script says so and exits 0: the summary stays
# available as the job artifact shown on the merge request (artifacts:expose_as).
# The note carrying the summary's first-line marker is edited in place (one note per stack).
set -euo pipefail
{ set +x; } 2>/dev/null
umask 077

file="${1:-}"
[[ -f "$file" ]] || {
  echo "usage: post-gitlab-note.sh <summary.md>" >&2
  exit 2
}
if [[ -z "${PREVIEW_NOTE_TOKEN:-}" ]]; then
  echo "PREVIEW_NOTE_TOKEN is not set: not posting a note; see the job artifact" >&2
  exit 0
fi
: "${CI_API_V4_URL:?}" "${CI_PROJECT_ID:?}" "${CI_MERGE_REQUEST_IID:?not a merge request pipeline}"
python="${PYTHON:-python3}"

tmp="$(mktemp -d)"
trap 'rm -rf -- "$tmp"' EXIT
# The token goes to curl in a header file, not on its command line (visible in the process list).
printf 'PRIVATE-TOKEN: %s\n' "$PREVIEW_NOTE_TOKEN" >"$tmp/headers"
notes="$CI_API_V4_URL/projects/$CI_PROJECT_ID/merge_requests/$CI_MERGE_REQUEST_IID/notes"

"$python" -c 'import json, sys; print(json.dumps({"body": open(sys.argv[1]).read()}))' \
  "$file" >"$tmp/body.json"
curl --silent --show-error --fail -H @"$tmp/headers" "$notes?per_page=100&sort=desc" >"$tmp/notes.json"
id="$("$python" -c '
import json, sys
marker = open(sys.argv[1]).readline().rstrip("\n")
for note in json.load(open(sys.argv[2])):
    if str(note.get("body", "")).startswith(marker):
        print(note["id"])
        break
' "$file" "$tmp/notes.json")"

if [[ -n "$id" ]]; then
  method=PUT url="$notes/$id"
else
  method=POST url="$notes"
fi
curl --silent --show-error --fail -X "$method" -H @"$tmp/headers" \
  -H 'Content-Type: application/json' --data @"$tmp/body.json" "$url" >/dev/null
echo "merge request note: $method ${id:-new}" >&2
