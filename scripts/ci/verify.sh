#!/usr/bin/env bash
# Check a deployed stack from outside:  verify.sh <stack>
#
#   python -m stackctl verify <stack> --timeout $VERIFY_TIMEOUT [--url app=URL ...]
#
# Every app's readiness URL (stack output `health_urls`: Ingress host or LoadBalancer address)
# must answer 200 within VERIFY_TIMEOUT seconds (default 300). deploy.sh runs this after every
# deploy; a failure there is a failed deploy (automatic rollback for staging and prod).
#
# An app without an Ingress or LoadBalancer (dev's ClusterIP Service) is checked from outside the
# cluster through the API server's service proxy with the deploy kubeconfig (KUBECONFIG, set up
# here as deploy.sh does; stackctl/ops/api_proxy.py): no variable needed on a hosted runner.
# VERIFY_URLS ("app=URL,app=URL"): URLs to use instead of the stack output (a VPN address).
# GitOps (GITOPS=true): there is no Pulumi stack whose outputs could be read, so VERIFY_URLS must
# name every app, and the check also waits until each app built by this pipeline reports the
# deployed version on `GET /` (Argo CD syncs asynchronously; until then the old pods answer).
# That version is the first 12 hex digits of the image digest: the version label appstack gives
# an image pinned by digest only (components/config/app.py, `label_version`). An app whose
# config sets `version` explicitly: VERIFY_EXPECT_VERSION=false. The agent image (`jenkins-agent`)
# serves nothing: it is not waited for.
set -euo pipefail
# shellcheck source=scripts/ci/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

stack="${1:-}"
require_stack "$stack"
args=(verify "$stack" --timeout "${VERIFY_TIMEOUT:-300}")
urls="${VERIFY_URLS:-}"
for pair in ${urls//,/ }; do
  args+=(--url "$pair")
done

if [[ "${GITOPS:-false}" == true ]]; then
  [[ -n "$urls" ]] || die "GITOPS=true: set VERIFY_URLS (app=URL,...); there are no stack outputs to read"
  args+=(--no-outputs)
  if [[ "${VERIFY_EXPECT_VERSION:-true}" == true ]]; then
    built="$(deploy_images)"
    for image in $built; do
      ref="${image#*=}"
      # jenkins-agent: the Jenkins agent's tools image, not an app that answers HTTP
      if [[ "${image%%=*}" != jenkins-agent && "$ref" == *@sha256:* ]]; then
        digest="${ref##*@sha256:}"
        args+=(--expect-version "${image%%=*}=${digest:0:12}")
      fi
    done
  fi
else
  require_credentials # the stack outputs come from the backend
  # A cluster-internal app is checked through the API server: with the deploy kubeconfig,
  # when the job has one (an app behind an Ingress or LoadBalancer needs none).
  if [[ -n "${KUBECONFIG_DATA:-}${KUBECONFIG_DATA_B64:-}${APPSTACK_KUBECONFIG:-}" || -f "${KUBECONFIG:-}" ]]; then
    use_kubeconfig
  fi
fi

log "verify $stack"
stackctl "${args[@]}"
