#!/usr/bin/env bash
# Preview one stack for a pull/merge request:  preview.sh <stack> [summary.md]
#
#   python -m stackctl check <stack>                  policy check of the rendered stack (offline)
#   python -m stackctl deploy <stack> --preview-only  preview with the policy pack, no changes
#
# Writes a Markdown summary (default out/ci/preview-<stack>.md) that the pipeline posts back to
# the review: the change counts, the policy result and the preview output (Pulumi masks secret
# values in it). The first line is a marker, `<!-- appstack-preview:<stack> -->`, so a pipeline
# can update its earlier comment instead of adding one per push. Also appended to
# $GITHUB_STEP_SUMMARY when that is set. Exit status: non-zero if the check or the preview failed
# (the summary is written either way).
set -euo pipefail
# shellcheck source=scripts/ci/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

stack="${1:-}"
require_stack "$stack"
summary="${2:-$REPO_ROOT/out/ci/preview-${stack//\//_}.md}"
mkdir -p "$(dirname "$summary")"
# A review comment holds at most 65536 characters: keep the end of long output (the check
# output gets 8000 more).
max_output_chars="${PREVIEW_MAX_OUTPUT_CHARS:-50000}"

require_credentials
use_kubeconfig

check_log="$(mktemp)"
preview_log="$(mktemp)"
# shellcheck disable=SC2329 # called by the EXIT trap of common.sh
on_exit() { rm -f -- "$check_log" "$preview_log"; }

log "policy check $stack"
check_status=0
stackctl check "$stack" >"$check_log" 2>&1 || check_status=$?
cat "$check_log" >&2

log "preview $stack"
preview_status=0
stackctl deploy "$stack" --preview-only 2>&1 | tee "$preview_log" >&2 || preview_status=$?

changes="$(sed -n "s|^preview ${stack}: ||p" "$preview_log" | tail -n 1)"
commit="$(git -C "$REPO_ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [[ "$check_status" -eq 0 && "$preview_status" -eq 0 ]]; then verdict="passed"; else verdict="FAILED"; fi
if [[ "$check_status" -eq 0 ]]; then check_text="passed"; else check_text="FAILED (exit $check_status)"; fi
if [[ "$preview_status" -eq 0 ]]; then preview_text="succeeded"; else preview_text="FAILED (exit $preview_status)"; fi

# shellcheck disable=SC2016 # the backticks are Markdown code spans, not command substitution
{
  printf '<!-- appstack-preview:%s -->\n' "$stack"
  printf '### Pulumi preview of `%s`: %s\n\n' "$stack" "$verdict"
  printf -- '- commit: `%s`\n' "$commit"
  printf -- '- changes: `%s`\n' "${changes:-unknown (the preview did not finish)}"
  printf -- '- policy check (`python -m stackctl check %s`): %s\n' "$stack" "$check_text"
  printf -- '- preview (`python -m stackctl deploy %s --preview-only`): %s\n\n' "$stack" "$preview_text"
  printf '<details><summary>policy check output</summary>\n\n````text\n'
  tail -c 8000 "$check_log"
  printf '\n````\n</details>\n\n'
  printf '<details><summary>preview output (last %s characters)</summary>\n\n````text\n' "$max_output_chars"
  tail -c "$max_output_chars" "$preview_log"
  printf '\n````\n</details>\n'
} >"$summary"

if [[ -n "${GITHUB_STEP_SUMMARY:-}" ]]; then
  cat "$summary" >>"$GITHUB_STEP_SUMMARY"
fi
log "preview summary: $summary"
if [[ "$check_status" -ne 0 ]]; then exit "$check_status"; fi
exit "$preview_status"
