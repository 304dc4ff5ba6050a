#!/bin/sh
# Build and push an image without a Docker daemon (GitLab CI, the Jenkins `builder` agent):
#   build-image.sh [service] [context] [dockerfile] [repository]
#   (default: web app app/Dockerfile $IMAGE_REPOSITORY)
# The pipelines build two: the service image (`web`) and the Jenkins agent's tools image
#   IMAGE_REVISION=context \
#     build-image.sh jenkins-agent jenkins/agent jenkins/agent/Dockerfile "$AGENT_IMAGE_REPOSITORY"
# each into its own repository, each deployed by digest (`stackctl deploy --image <service>=...`).
#
# POSIX sh, not bash: it runs in the moby/buildkit:rootless image (Alpine, busybox sh, user
# 1000), where `buildctl-daemonless.sh` starts a rootless buildkitd for the one build. That image
# has no bash, and its user cannot install one.
#
#   tag    <repository>:<full commit sha>   (every main commit gets its own tag)
#   cache  <repository>:buildcache           (registry cache, mode=max: all stages)
#   out    $CI_STATE_DIR (default out/ci)/images      `<service>=<repo>@sha256:<digest>`, one
#                                                     line per service: this service's line is
#                                                     replaced, the other services' lines kept
#          $CI_STATE_DIR/image.env                      `DEPLOY_IMAGES=<every line, comma-joined>`
#                                                     (GitLab dotenv)
#
# IMAGE_REVISION=context (the agent image's build): the image's revision is the last commit that
# changed its context or Dockerfile, and that commit's time its SOURCE_DATE_EPOCH (BuildKit >= 0.11
# sets the `created` times of the image config and its history from it: docs/build-repro.md), so
# a commit that leaves the context alone rebuilds from the registry cache to the same digest and
# its deploy changes nothing. (The agent pod template lives in the Jenkins controller's
# content-named JCasC ConfigMap: a new agent digest rolls the controller.) The tag is <commit> as
# ever. A shallow clone may not reach that commit: then the revision is <commit>.
#
# The digest comes from buildctl's --metadata-file (`containerimage.digest`): the deploy runs
# exactly the manifest that was pushed, whatever the tag points to later.
#
# Registry login: REGISTRY_USERNAME / REGISTRY_PASSWORD (GitLab: CI_REGISTRY_USER /
# CI_REGISTRY_PASSWORD by default) written to a private $DOCKER_CONFIG/config.json, never to the
# log or a command line (printf is a shell builtin). Without them an existing DOCKER_CONFIG is used.
set -eu
{ set +x; } 2>/dev/null

service="${1:-web}"
context="${2:-app}"
dockerfile="${3:-app/Dockerfile}"
repo_root="$(cd "$(dirname "$0")/../.." && pwd)"
state_dir="${CI_STATE_DIR:-$repo_root/out/ci}"
repository="${4:-${IMAGE_REPOSITORY:-${CI_REGISTRY_IMAGE:-}}}"
commit="${CI_COMMIT_SHA:-${GIT_COMMIT:-}}"
[ -n "$commit" ] || commit="$(git -C "$repo_root" rev-parse HEAD)"

fail() {
  printf 'error: %s\n' "$*" >&2
  exit 2
}
printf '%s' "$service" | grep -Eq '^[a-z0-9][a-z0-9-]*$' || fail "bad service name: $service"
printf '%s' "$repository" | grep -Eq '^[a-z0-9.-]+(:[0-9]+)?(/[a-z0-9._-]+)+$' ||
  fail "the repository of $service (4th argument, else IMAGE_REPOSITORY) must be <registry>/<path> in lowercase (got '${repository}')"

user="${REGISTRY_USERNAME:-${CI_REGISTRY_USER:-}}"
password="${REGISTRY_PASSWORD:-${CI_REGISTRY_PASSWORD:-}}"
# Both, before anything is built: an empty credential would fail only at the push.
[ -n "$user" ] || fail "REGISTRY_USERNAME is empty (Jenkins: key registry-username of credential registry-push; GitLab: CI_REGISTRY_USER)"
[ -n "$password" ] || fail "REGISTRY_PASSWORD is empty (Jenkins: key registry-password of credential registry-push; GitLab: CI_REGISTRY_PASSWORD)"
command -v buildctl-daemonless.sh >/dev/null 2>&1 ||
  fail "buildctl-daemonless.sh not found: run this in the moby/buildkit:rootless image"
umask 077
DOCKER_CONFIG="$(mktemp -d)"
export DOCKER_CONFIG
trap 'rm -rf -- "$DOCKER_CONFIG"' EXIT
auth="$(printf '%s:%s' "$user" "$password" | base64 | tr -d '\n')"
printf '{"auths":{"%s":{"auth":"%s"}}}\n' "${repository%%/*}" "$auth" >"$DOCKER_CONFIG/config.json"
unset auth password

revision="$commit"
set --
if [ "${IMAGE_REVISION:-commit}" = context ] &&
  [ "$(git -C "$repo_root" rev-parse --is-shallow-repository)" = false ]; then
  changed="$(git -C "$repo_root" log -1 --format='%H %ct' "$commit" -- "$context" "$dockerfile" 2>/dev/null || true)"
  if [ -n "$changed" ]; then
    revision="${changed% *}"
    set -- --opt "build-arg:SOURCE_DATE_EPOCH=${changed#* }"
  fi
fi

mkdir -p "$state_dir"
metadata="$state_dir/build-metadata.json"
cd "$repo_root"
printf '==> build %s from %s (%s, revision %s), push %s:%s\n' "$service" "$context" "$dockerfile" "$revision" "$repository" "$commit" >&2
buildctl-daemonless.sh build \
  --frontend dockerfile.v0 \
  --local "context=$context" \
  --local "dockerfile=$(dirname "$dockerfile")" \
  --opt "filename=$(basename "$dockerfile")" \
  --opt "label:org.opencontainers.image.revision=$revision" "$@" \
  --import-cache "type=registry,ref=$repository:buildcache" \
  --export-cache "type=registry,ref=$repository:buildcache,mode=max" \
  --output "type=image,name=$repository:$commit,push=true" \
  --metadata-file "$metadata"

digest="$(sed -n 's/.*"containerimage\.digest": *"\(sha256:[0-9a-f]\{64\}\)".*/\1/p' "$metadata" | head -n 1)"
[ -n "$digest" ] || fail "no containerimage.digest in $metadata: was the image pushed?"
# One record per service: a second build (jenkins-agent after web) keeps the first one's line.
records="$state_dir/images"
others="$(grep -v "^$service=" "$records" 2>/dev/null || true)"
{
  [ -z "$others" ] || printf '%s\n' "$others"
  printf '%s=%s@%s\n' "$service" "$repository" "$digest"
} >"$records.new"
mv -f -- "$records.new" "$records"
printf 'DEPLOY_IMAGES=%s\n' "$(paste -s -d , "$records")" >"$state_dir/image.env"
printf '==> pushed %s@%s\n' "$repository" "$digest" >&2
