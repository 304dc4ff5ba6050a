#!/usr/bin/env bash
# Put the cluster credentials in a file only the job user can read, and print that file's PATH
# (never its content) on stdout:
#
#   KUBECONFIG="$(scripts/ci/setup-kubeconfig.sh)"; export KUBECONFIG
#
# Sources, first match wins:
#   KUBECONFIG_DATA      the kubeconfig YAML itself (GitHub secret, GitLab variable)
#   KUBECONFIG_DATA_B64  the same, base64-encoded (a GitLab variable can be masked only as one line)
#   KUBECONFIG           a path the CI system already wrote (Jenkins file credential, GitLab
#                        "File" variable): made mode 600 if this user owns it, printed unchanged
# deploy.sh and preview.sh call this themselves and delete the file when they exit.
set -euo pipefail
{ set +x; } 2>/dev/null # the content must never reach the log, whatever the caller traced
umask 077

fail() {
  printf 'error: %s\n' "$*" >&2
  exit 2
}

if [[ -n "${KUBECONFIG_DATA:-}" || -n "${KUBECONFIG_DATA_B64:-}" ]]; then
  dir="${RUNNER_TEMP:-${TMPDIR:-/tmp}}"
  file="$(mktemp "$dir/kubeconfig.XXXXXXXX")"
  chmod 600 "$file"
  if [[ -n "${KUBECONFIG_DATA:-}" ]]; then
    printf '%s\n' "$KUBECONFIG_DATA" >"$file" # printf is a builtin: no argv in the process list
  elif ! printf '%s' "$KUBECONFIG_DATA_B64" | base64 -d >"$file" 2>/dev/null; then
    rm -f -- "$file"
    fail "KUBECONFIG_DATA_B64 is not valid base64"
  fi
  if ! grep -q '^clusters:' "$file"; then
    rm -f -- "$file"
    fail "the kubeconfig secret has no top-level 'clusters:' key (content not shown)"
  fi
elif [[ -n "${KUBECONFIG:-}" && -f "$KUBECONFIG" ]]; then
  file="$KUBECONFIG"
  if [[ -O "$file" ]]; then
    chmod 600 "$file"
  fi
else
  fail "no cluster credentials: set KUBECONFIG_DATA (or KUBECONFIG_DATA_B64, or KUBECONFIG to a file) from the CI secret store"
fi

printf '%s\n' "$file"
