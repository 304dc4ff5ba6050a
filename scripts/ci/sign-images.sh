#!/usr/bin/env bash
# Sign the pushed digests with cosign:  sign-images.sh
#
# The images are the build step's records (DEPLOY_IMAGES or $CI_STATE_DIR/images:
# `service=<repo>@sha256:<digest>`, one per service); each is signed BY DIGEST, so the signature
# (the OCI artifact `<repo>:sha256-<digest>.sig`) names exactly the manifest that was pushed, and
# `stackctl deploy --image` in an environment that requires signatures (prod by default,
# appstack:imageSigning) verifies it against the stack's public key before anything changes.
#
# Key mode (the default): COSIGN_KEY holds the cosign private key (`cosign generate-key-pair`:
# an encrypted PEM) and COSIGN_PASSWORD its password, both from the CI's credentials store; the
# key is handed to cosign as `--key env://COSIGN_KEY` (read from the environment, never written
# to disk or a command line). Jenkins binds a file credential instead: COSIGN_KEY_FILE.
# A KMS key works the same way with COSIGN_KEY_REF=awskms://..., gcpkms://..., hashivault://...
# (cosign's --key URIs; credentials from the KMS's own environment).
# Keyless (COSIGN_KEYLESS=true; GitHub Actions with `id-token: write`): cosign signs with a
# short-lived Fulcio certificate for the workflow's OIDC identity; that needs Fulcio and the Rekor
# transparency log (docs/ci.md "Image signing").
#
# Transparency log: COSIGN_TLOG_UPLOAD (default false: no Rekor is reachable from the example
# pipelines; the matching verify option is appstack:imageSigning.transparencyLog: false, i.e.
# `cosign verify --insecure-ignore-tlog=true`). Keyless signing always uploads.
# Each signature carries the annotation `commit=<sha>` (cosign sign -a).
#
# Registry login: REGISTRY_USERNAME / REGISTRY_PASSWORD (GitLab: CI_REGISTRY_USER /
# CI_REGISTRY_PASSWORD) into a private DOCKER_CONFIG as build-image.sh does; without them the
# existing DOCKER_CONFIG (docker login) is used. COSIGN (default: cosign on PATH) is the binary.
set -euo pipefail
# shellcheck source=scripts/ci/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

cosign="${COSIGN:-cosign}"
command -v "$cosign" >/dev/null 2>&1 || die "cosign not found (COSIGN or PATH): install cosign v2.6.5 (e2e/tools/build.sh cosign builds it)"
commit="${CI_COMMIT_SHA:-${GITHUB_SHA:-${GIT_COMMIT:-}}}"
[[ -n "$commit" ]] || commit="$(git -C "$REPO_ROOT" rev-parse HEAD)"

mapfile -t images < <(deploy_images)
[[ ${#images[@]} -gt 0 ]] || die "no images to sign: DEPLOY_IMAGES and $STATE_DIR/images are empty (run build-image.sh first)"
for item in "${images[@]}"; do
  ref="${item#*=}"
  [[ "$ref" =~ @sha256:[0-9a-f]{64}$ ]] || die "${item%%=*}: $ref is not pinned by digest; only a pushed digest is signed"
done

args=(sign --yes -a "commit=$commit")
if [[ "${COSIGN_KEYLESS:-false}" == true ]]; then
  log "signing keyless (OIDC identity of this CI job; Fulcio certificate, Rekor entry)"
else
  if [[ -n "${COSIGN_KEY_REF:-}" ]]; then
    args+=(--key "$COSIGN_KEY_REF")
  elif [[ -n "${COSIGN_KEY_FILE:-}" ]]; then
    [[ -r "$COSIGN_KEY_FILE" ]] || die "COSIGN_KEY_FILE is not a readable file"
    args+=(--key "$COSIGN_KEY_FILE")
  elif [[ -n "${COSIGN_KEY:-}" ]]; then
    args+=(--key env://COSIGN_KEY)
  else
    die "COSIGN_KEY is empty (the cosign private key from the CI secrets; Jenkins: file credential cosign-key as COSIGN_KEY_FILE), or set COSIGN_KEYLESS=true where the CI offers OIDC"
  fi
  [[ -n "${COSIGN_PASSWORD+set}" ]] || die "COSIGN_PASSWORD is not set (the key's password from the CI secrets; empty for an unencrypted key)"
  args+=("--tlog-upload=${COSIGN_TLOG_UPLOAD:-false}")
fi

refs=()
for item in "${images[@]}"; do refs+=("${item#*=}"); done
registry_login "${refs[@]}"

for item in "${images[@]}"; do
  ref="${item#*=}"
  log "sign ${item%%=*}: $ref"
  "$cosign" "${args[@]}" "$ref"
done
log "signed ${#images[@]} image(s)"
