# shellcheck shell=bash
# Shared helpers for the CI scripts; sourced, never executed. GitHub Actions, GitLab CI and
# Jenkins all call the scripts in this directory, so the pipeline files stay thin and the three
# systems deploy the same way.
#
# Secrets reach these scripts only as environment variables set by the CI system's secret store
# (PULUMI_CONFIG_PASSPHRASE, PULUMI_BACKEND_URL or PULUMI_ACCESS_TOKEN, KUBECONFIG_DATA or a
# KUBECONFIG file). Nothing here prints a value, and xtrace is switched off so a caller's `set -x`
# cannot leak one.

{ set +x; } 2>/dev/null

CI_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$CI_DIR/../.." && pwd)"
# The project venv (`make venv`); PYTHON overrides it (tests point it at a stub).
PYTHON="${PYTHON:-$REPO_ROOT/.venv/bin/python}"
export PULUMI_SKIP_UPDATE_CHECK=true
# stackctl never prompts when CI=true; it needs --yes to change anything.
export CI="${CI:-true}"

# What deploy.sh leaves for rollback.sh: the history version before the deploy and whether the
# rollback already ran (so a pipeline's failure handler may call rollback.sh again safely).
STATE_DIR="${CI_STATE_DIR:-$REPO_ROOT/out/ci}"
state_file() { printf '%s/%s-%s\n' "$STATE_DIR" "$1" "${2//\//_}"; }

log() { printf '==> %s\n' "$*" >&2; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die() {
  printf 'error: %s\n' "$*" >&2
  exit 2
}

stackctl() { (cd "$REPO_ROOT" && "${NO_NOTIFY[@]}" "$PYTHON" -m stackctl "$@"); }

# Deploy notifications (stackctl/ops/notify.py, docs/ci.md "Notifications"): the webhook URL is a
# secret from the CI's store, APPSTACK_NOTIFY_WEBHOOK_URL or a file named by
# APPSTACK_NOTIFY_WEBHOOK_URL_FILE; neither set, nothing is sent. The scripts post them
# themselves (deploy.sh: a failed deploy; rollback.sh: an automatic rollback and its outcome), so
# every stackctl they start runs without the URL (NO_NOTIFY), or people would hear twice.
NO_NOTIFY=(env -u APPSTACK_NOTIFY_WEBHOOK_URL -u APPSTACK_NOTIFY_WEBHOOK_URL_FILE)

# notify <event> <stack> <reason> [--image svc=img ...] [--rolled-back-to V]: one POST (10 s
# timeout, no retry). It never fails the caller: a notification that is not sent is one line.
notify() {
  [[ -n "${APPSTACK_NOTIFY_WEBHOOK_URL:-}${APPSTACK_NOTIFY_WEBHOOK_URL_FILE:-}" ]] || return 0
  local event="$1" stack="$2" reason="$3" status=0
  shift 3
  (cd "$REPO_ROOT" && timeout 30 "$PYTHON" -m stackctl.ops.notify "$event" "$stack" \
    --reason "$reason" --project-dir "$REPO_ROOT" "$@") || status=$?
  if [[ "$status" -ne 0 ]]; then
    warn "notification ($event, $stack) not sent (exit $status)"
  fi
  return 0
}

# failure_line <file>: the one-line reason stackctl printed last (`failed: ...`/`error: ...`).
failure_line() {
  local line="" each
  if [[ -f "$1" ]]; then
    while IFS= read -r each; do
      if [[ "$each" == "failed: "* || "$each" == "error: "* ]]; then
        line="${each#*: }"
      fi
    done <"$1"
  fi
  printf '%s\n' "${line:0:300}"
}

# The stack argument: dev, staging, prod, <org>/prod, prod-eu ... (the environment is its first
# word).
require_stack() {
  local stack="${1:-}"
  [[ "$stack" =~ ^[A-Za-z0-9][A-Za-z0-9._/-]*$ ]] || die "usage: $(basename "$0") <stack> (dev, staging or prod)"
}

stack_environment() {
  local short="${1##*/}"
  printf '%s\n' "${short%%-*}"
}

# The environments whose failed deploy is rolled back automatically: those that keep prod's
# rules (`productionRules` in components/config/stack.py ENVIRONMENT_DEFAULTS; tests/ci holds
# this list equal to it). Others (dev) are left as they are, for debugging.
ROLLBACK_ENVIRONMENTS=(staging prod)
rolls_back_on_failure() {
  local environment="$1" each
  for each in "${ROLLBACK_ENVIRONMENTS[@]}"; do
    [[ "$each" == "$environment" ]] && return 0
  done
  return 1
}

# Fail early, by name only, when a credential the deploy needs is missing.
require_credentials() {
  command -v pulumi >/dev/null 2>&1 || die "the Pulumi CLI is not on PATH (install it in the CI job)"
  [[ -x "$PYTHON" ]] || die "$PYTHON not found: run scripts/ci/bootstrap.sh (make venv) first"
  if [[ -z "${PULUMI_CONFIG_PASSPHRASE:-}" && -z "${PULUMI_CONFIG_PASSPHRASE_FILE:-}" ]]; then
    warn "PULUMI_CONFIG_PASSPHRASE is not set: only a stack with a cloud secrets provider works"
  fi
  if [[ -z "${PULUMI_BACKEND_URL:-}" && -z "${PULUMI_ACCESS_TOKEN:-}" ]]; then
    die "neither PULUMI_BACKEND_URL nor PULUMI_ACCESS_TOKEN is set: CI must use the team backend"
  fi
}

# One EXIT trap for every script: the script's own `on_exit <status>` (if it defines one), then
# removal of the kubeconfig file use_kubeconfig wrote, so a self-hosted runner keeps no
# credentials behind. The script's exit status is kept.
KUBECONFIG_CREATED=""
DOCKER_CONFIG_CREATED=""
_common_exit() {
  local status=$?
  if declare -F on_exit >/dev/null; then
    on_exit "$status" || true
  fi
  if [[ -n "$KUBECONFIG_CREATED" ]]; then
    rm -f -- "$KUBECONFIG_CREATED"
  fi
  if [[ -n "$DOCKER_CONFIG_CREATED" ]]; then
    rm -rf -- "$DOCKER_CONFIG_CREATED"
  fi
}
trap _common_exit EXIT

# Export KUBECONFIG for the cluster credentials (setup-kubeconfig.sh). A script called by another
# (deploy.sh -> rollback.sh) reuses the caller's file.
use_kubeconfig() {
  if [[ -n "${APPSTACK_KUBECONFIG:-}" && -f "$APPSTACK_KUBECONFIG" ]]; then
    export KUBECONFIG="$APPSTACK_KUBECONFIG"
    return 0
  fi
  local path
  path="$("$CI_DIR/setup-kubeconfig.sh")"
  export KUBECONFIG="$path" APPSTACK_KUBECONFIG="$path"
  if [[ -n "${KUBECONFIG_DATA:-}${KUBECONFIG_DATA_B64:-}" ]]; then
    KUBECONFIG_CREATED="$path"
  fi
}

# The images this pipeline built, one `service=<repo>@sha256:<digest>` per line: DEPLOY_IMAGES
# (comma- or space-separated; GitHub job output, GitLab dotenv report) or else the file that
# build-image.sh wrote ($STATE_DIR/images, Jenkins stash). Nothing when neither exists: the stack
# then runs the images of its config.
deploy_images() {
  local images="${DEPLOY_IMAGES:-}"
  if [[ -z "$images" && -f "$STATE_DIR/images" ]]; then
    images="$(<"$STATE_DIR/images")"
  fi
  local item
  for item in ${images//,/ }; do
    [[ "$item" =~ ^[a-z0-9][a-z0-9-]*=[^[:space:]=]+$ ]] || die "bad image in DEPLOY_IMAGES: $item (service=image)"
    printf '%s\n' "$item"
  done
}

# registry_login <image ref>...: a private DOCKER_CONFIG (a 0700 temp dir, removed on exit) with
# REGISTRY_USERNAME / REGISTRY_PASSWORD (GitLab: CI_REGISTRY_USER / CI_REGISTRY_PASSWORD) for the
# registry hosts of the refs, for cosign (sign-images.sh, sbom.sh, and stackctl deploy's
# signature check) and syft. Either unset: nothing changes (an existing `docker login` is used).
# Written with printf (a builtin): the credentials reach no command line and no log.
registry_login() {
  local user="${REGISTRY_USERNAME:-${CI_REGISTRY_USER:-}}"
  local password="${REGISTRY_PASSWORD:-${CI_REGISTRY_PASSWORD:-}}"
  [[ -n "$user" && -n "$password" && $# -gt 0 ]] || return 0
  local dir auth entries="" ref host
  local -A seen=()
  dir="$(mktemp -d)"
  chmod 700 "$dir"
  DOCKER_CONFIG_CREATED="$dir"
  auth="$(printf '%s:%s' "$user" "$password" | base64 | tr -d '\n')"
  for ref in "$@"; do
    host="${ref%%/*}"
    [[ -z "${seen[$host]:-}" ]] || continue
    seen[$host]=1
    entries+="${entries:+,}\"$host\":{\"auth\":\"$auth\"}"
  done
  (umask 077 && printf '{"auths":{%s}}\n' "$entries" >"$dir/config.json")
  export DOCKER_CONFIG="$dir"
}

# worktree_path <name>: a fresh path for `git worktree add` under the runner's temp directory
# (made unique by mktemp, then left free for git to create).
worktree_path() {
  local path
  path="$(mktemp -d "${RUNNER_TEMP:-${TMPDIR:-/tmp}}/appstack-$1.XXXXXX")"
  rmdir "$path"
  printf '%s\n' "$path"
}

# GitOps (publish-manifests.sh, revert-manifests.sh): the manifests branch and where a stack's
# manifests live on it.
manifests_branch() {
  local branch="${1:-${MANIFESTS_BRANCH:-manifests}}"
  git check-ref-format --branch "$branch" >/dev/null || die "invalid branch name: $branch"
  printf '%s\n' "$branch"
}
manifests_target() { printf 'manifests/%s\n' "${1//\//_}"; }

# manifests_checkout <worktree> <branch> <remote>: the branch's head from <remote> checked out
# (detached) at <worktree>, a new directory; returns 1 when the branch does not exist there.
manifests_checkout() {
  git fetch --quiet "$3" "refs/heads/$2" 2>/dev/null || return 1
  git worktree add --quiet --detach "$1" FETCH_HEAD
}

# manifests_push <worktree> <branch> <remote>: push the worktree's HEAD to the branch, at
# MANIFESTS_PUSH_URL with the token in MANIFESTS_PUSH_TOKEN if set (read by a credential helper
# from the environment: never on a command line, in a URL or in .git/config), else to <remote>.
manifests_push() {
  if [[ -n "${MANIFESTS_PUSH_URL:-}" ]]; then
    [[ -n "${MANIFESTS_PUSH_TOKEN:-}" ]] || die "MANIFESTS_PUSH_URL is set but MANIFESTS_PUSH_TOKEN is not"
    # shellcheck disable=SC2016 # expanded by the helper's shell at push time, from the environment
    git -C "$1" -c credential.helper= \
      -c credential.helper='!f() { echo username=oauth2; echo "password=${MANIFESTS_PUSH_TOKEN}"; }; f' \
      push --quiet "$MANIFESTS_PUSH_URL" "HEAD:refs/heads/$2"
  else
    git -C "$1" push --quiet "$3" "HEAD:refs/heads/$2"
  fi
}

# manifests_commit <worktree> <message>: commit what is staged, as the CI's author.
manifests_commit() {
  git -C "$1" \
    -c "user.name=${GIT_AUTHOR_NAME:-appstack-ci}" \
    -c "user.email=${GIT_AUTHOR_EMAIL:-appstack-ci@users.noreply.invalid}" \
    commit --quiet -m "$2"
}
