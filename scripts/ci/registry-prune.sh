#!/usr/bin/env bash
# Registry retention, run by CI on a schedule:  registry-prune.sh
#
#   python -m stackctl registry prune --stack dev --stack staging --stack prod [--apply]
#
# Deletes commit tags (<repo>:<git hash>) older than appstack:registryRetention.maxAgeDays of the
# stack files, keeping the keepLast newest and every digest any stack's update history references
# (a rollback target is never deleted), with their cosign .sig/.att/.sbom tags
# (stackctl/ops/retention.py). A dry run unless REGISTRY_PRUNE_APPLY=true: the log then lists
# what would go. The histories are read from the state backend, so the job needs the backend's
# credentials (PULUMI_BACKEND_URL or PULUMI_ACCESS_TOKEN, PULUMI_CONFIG_PASSPHRASE) but no
# kubeconfig; the registry login needs delete permission:
#   REGISTRY_AUTH_FILE   a containers/Docker auth file (`docker login` writes one), or
#   REGISTRY_USER + REGISTRY_PASSWORD (a temporary auth file is written, mode 0600, removed at
#   exit) for REGISTRY_HOST, the registry host of the stacks' images (default: the host part of
#   IMAGE_REPOSITORY, which JCasC sets on Jenkins).
# Deleting manifests frees no space by itself: the registry's garbage collector does
# (docs/operations.md, "Registry retention").
set -euo pipefail
# shellcheck source=scripts/ci/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

args=(registry prune)
for stack in ${PRUNE_STACKS:-dev staging prod}; do
  require_stack "$stack"
  args+=(--stack "$stack")
done
if [[ -z "${REGISTRY_HOST:-}" && -n "${IMAGE_REPOSITORY:-}" ]]; then
  REGISTRY_HOST="${IMAGE_REPOSITORY%%/*}"
fi
if [[ -z "${REGISTRY_AUTH_FILE:-}" && -n "${REGISTRY_USER:-}" ]]; then
  [[ -n "${REGISTRY_PASSWORD:-}" && -n "${REGISTRY_HOST:-}" ]] ||
    die "REGISTRY_USER needs REGISTRY_PASSWORD and REGISTRY_HOST"
  auth_dir="$(mktemp -d)"
  trap 'rm -rf "$auth_dir"' EXIT
  REGISTRY_AUTH_FILE="$auth_dir/auth.json"
  (umask 077 && REGISTRY_AUTH_FILE="$REGISTRY_AUTH_FILE" REGISTRY_HOST="$REGISTRY_HOST" "$PYTHON" -c '
import base64, json, os
login = (os.environ["REGISTRY_USER"] + ":" + os.environ["REGISTRY_PASSWORD"]).encode()
entry = {"auth": base64.b64encode(login).decode()}
with open(os.environ["REGISTRY_AUTH_FILE"], "w") as out:
    json.dump({"auths": {os.environ["REGISTRY_HOST"]: entry}}, out)
')
fi
[[ -n "${REGISTRY_AUTH_FILE:-}" ]] && args+=(--authfile "$REGISTRY_AUTH_FILE")
[[ -n "${REGISTRY_CA_FILE:-}" ]] && args+=(--ca-file "$REGISTRY_CA_FILE")
if [[ "${REGISTRY_PRUNE_APPLY:-false}" == "true" ]]; then
  args+=(--apply)
  log "registry prune: deleting (REGISTRY_PRUNE_APPLY=true)"
else
  log "registry prune: dry run (REGISTRY_PRUNE_APPLY=true deletes)"
fi
stackctl "${args[@]}"
