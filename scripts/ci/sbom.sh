#!/usr/bin/env bash
# An SBOM of every image the build pushed:  sbom.sh
#
# For each `service=<repo>@sha256:<digest>` of the build step's records (DEPLOY_IMAGES or
# $CI_STATE_DIR/images), syft reads the image straight from the registry (`registry:` source: no
# Docker daemon) and writes SPDX JSON to $CI_STATE_DIR/sbom/<service>.spdx.json (a build
# artifact). With a signing key (COSIGN_KEY / COSIGN_KEY_FILE / COSIGN_KEY_REF, as
# sign-images.sh; SBOM_ATTEST=false skips it), the SBOM is also attached to the digest as a
# signed in-toto attestation (`cosign attest --type spdxjson`), so it travels with the image and
# `cosign verify-attestation --type spdxjson --key <public key>` returns it.
#
# Registry login: REGISTRY_USERNAME / REGISTRY_PASSWORD (GitLab: CI_REGISTRY_USER /
# CI_REGISTRY_PASSWORD) through a private DOCKER_CONFIG (common.sh registry_login), read by syft
# and cosign alike; a private CA: SSL_CERT_FILE. SYFT / COSIGN name the binaries.
set -euo pipefail
# shellcheck source=scripts/ci/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

syft="${SYFT:-syft}"
cosign="${COSIGN:-cosign}"
command -v "$syft" >/dev/null 2>&1 || die "syft not found (SYFT or PATH): install syft v1.57.2 (e2e/tools/build.sh syft builds it)"

mapfile -t images < <(deploy_images)
[[ ${#images[@]} -gt 0 ]] || die "no images: DEPLOY_IMAGES and $STATE_DIR/images are empty (run build-image.sh first)"

attest=false
if [[ "${SBOM_ATTEST:-true}" == true && -n "${COSIGN_KEY:-}${COSIGN_KEY_FILE:-}${COSIGN_KEY_REF:-}" ]]; then
  command -v "$cosign" >/dev/null 2>&1 || die "cosign not found: needed to attest the SBOM (SBOM_ATTEST=false skips it)"
  attest=true
fi

refs=()
for item in "${images[@]}"; do refs+=("${item#*=}"); done
# syft and cosign both read $DOCKER_CONFIG/config.json (go-containerregistry's keychain).
registry_login "${refs[@]}"

out="$STATE_DIR/sbom"
mkdir -p "$out"
for item in "${images[@]}"; do
  service="${item%%=*}" ref="${item#*=}"
  [[ "$ref" =~ @sha256:[0-9a-f]{64}$ ]] || die "$service: $ref is not pinned by digest"
  log "sbom $service: $ref"
  SYFT_CHECK_FOR_APP_UPDATE=false "$syft" scan "registry:$ref" -q -o "spdx-json=$out/$service.spdx.json"
  if [[ "$attest" == true ]]; then
    key="${COSIGN_KEY_REF:-${COSIGN_KEY_FILE:-env://COSIGN_KEY}}"
    "$cosign" attest --yes --type spdxjson --predicate "$out/$service.spdx.json" \
      --key "$key" "--tlog-upload=${COSIGN_TLOG_UPLOAD:-false}" "$ref"
  fi
done
log "SBOMs in $out"
