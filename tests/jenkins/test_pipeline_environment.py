"""Every variable a pipeline step reads (scripts/ci/*, the Jenkinsfile) has a source on Jenkins:
the rendered JCasC (global variables from config), a credential the Jenkinsfile binds, the
Jenkinsfile's `environment`, Jenkins itself, or the script's own default. A variable a step
needs that nothing provides is what stopped `Build image` on main (IMAGE_REPOSITORY)."""

from __future__ import annotations

import re
from pathlib import Path

from stackctl.render import RenderResult
from tests.jenkins.helpers import casc
from tests.renders import Renders

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = [*sorted((ROOT / "scripts/ci").glob("*.sh")), ROOT / "scripts/ci/rollback_plan.py"]
#: The multibranch job's Jenkinsfile, the prod deploy job's and the registry prune job's pipelines.
JENKINSFILE = (
    (ROOT / "Jenkinsfile").read_text()
    + (ROOT / "jenkins/prod-deploy.Jenkinsfile").read_text()
    + (ROOT / "jenkins/registry-prune.Jenkinsfile").read_text()
)

#: Needed on the Jenkins path, by source.
JCASC = {
    "IMAGE_REPOSITORY",
    "AGENT_IMAGE_REPOSITORY",
    "APPSTACK_PROD_APPROVERS",
    "APPSTACK_RELEASE_JOB",
    "APPSTACK_STATE_BACKEND",
}
#: Set by the pipeline itself (`env.X = ...`): the release the main build hands to prod.
PIPELINE_SET = {"DEPLOY_IMAGES", "DEPLOY_COMMIT"}
CREDENTIALS = {
    "PULUMI_CONFIG_PASSPHRASE",
    "PULUMI_BACKEND_URL",
    "KUBECONFIG",
    "REGISTRY_USERNAME",
    "REGISTRY_PASSWORD",
    "REGISTRY_USER",  # the registry prune job's credential registry-prune
    "KUBECONFIG_DATA_B64",  # prod: the folder credential kubeconfig-prod
    # optional: the credential whose id APPSTACK_NOTIFY_CREDENTIAL names (docs/ci.md)
    "APPSTACK_NOTIFY_WEBHOOK_URL",
    # Sign and SBOM: the JCasC credentials cosign-key (a file) and cosign-password
    "COSIGN_KEY_FILE",
    "COSIGN_PASSWORD",
}
JENKINSFILE_ENV = {"CI"}
#: Set by Jenkins for every build of a multibranch job: GIT_COMMIT by the git plugin
#: (hudson/plugins/git/GitSCM.java buildEnvironment), CHANGE_TARGET by branch-api for a change
#: request (jenkins/branch/BranchNameContributor.java).
JENKINS_BUILTIN = {"GIT_COMMIT", "CHANGE_TARGET"}
#: Optional everywhere: each has a default in the script or only switches a feature on.
OPTIONAL = {
    "APPSTACK_ALLOW_RISKY_DIFF", "DEPLOY_REFRESH", "DEPLOY_TIMEOUT",
    "DIFF_REMOTE", "GITOPS", "GIT_AUTHOR_EMAIL", "GIT_AUTHOR_NAME", "HOST_PYTHON",
    "KUBECONFIG_DATA", "MANIFESTS_BRANCH", "MANIFESTS_PUSH_TOKEN",
    "MANIFESTS_PUSH_URL", "MANIFESTS_REMOTE", "PREVIEW_MAX_OUTPUT_CHARS", "PULUMI_ACCESS_TOKEN",
    "PULUMI_CONFIG_PASSPHRASE_FILE", "ROLLBACK_ON_FAILURE", "ROLLBACK_UNHEALTHY", "TMPDIR",
    "VERIFY_EXPECT_VERSION", "VERIFY_TIMEOUT", "VERIFY_URLS", "CI_STATE_DIR",
    "APPSTACK_KUBECONFIG", "PREVIEW_NOTE_TOKEN", "IMAGE_REVISION",
    "APPSTACK_NOTIFY_CREDENTIAL", "APPSTACK_NOTIFY_WEBHOOK_URL_FILE",
    "PRUNE_STACKS", "REGISTRY_AUTH_FILE", "REGISTRY_CA_FILE", "REGISTRY_HOST",
    "REGISTRY_PRUNE_APPLY",
    # signing and SBOM (scripts/ci/sign-images.sh, sbom.sh, audit-deps.sh): other key sources
    # (a key in a variable, a KMS URI, keyless OIDC), the tools' paths, switches with defaults
    "COSIGN", "COSIGN_KEY", "COSIGN_KEY_REF", "COSIGN_KEYLESS", "COSIGN_TLOG_UPLOAD", "SYFT",
    "SBOM_ATTEST", "AUDIT_VENV", "APPSTACK_REGISTRY_CREDENTIAL",
}  # fmt: skip
#: The other CI systems' own variables (GitHub Actions, GitLab CI); unused on Jenkins.
OTHER_CI = re.compile(r"^(GITHUB_|RUNNER_|GH_|CI_)")
#: Set inside the scripts (common.sh and each script's header) or by the shell.
INTERNAL = {
    "REPO_ROOT", "CI_DIR", "STATE_DIR", "PYTHON", "DOCKER_CONFIG", "KUBECONFIG_CREATED",
    "DOCKER_CONFIG_CREATED",
    "ROLLBACK_ENVIRONMENTS", "NO_NOTIFY",
}  # fmt: skip
SHELL = {"BASH_SOURCE"}


def _read_by_scripts() -> set[str]:
    found: set[str] = set()
    for path in SCRIPTS:
        found |= set(re.findall(r"\$\{?([A-Z][A-Z0-9_]+)", path.read_text()))
    found |= set(re.findall(r"env\.([A-Z][A-Z0-9_]+)", JENKINSFILE))
    found |= set(re.findall(r"\$([A-Z][A-Z0-9_]+)", JENKINSFILE))
    return found


def _jcasc_env(result: RenderResult) -> dict[str, str]:
    (props,) = casc(result)["jenkins"]["globalNodeProperties"]
    return {e["key"]: e["value"] for e in props["envVars"]["env"]}


def _bound_variables() -> set[str]:
    return set(re.findall(r"(?:v|usernameV|passwordV)ariable: '([A-Z0-9_]+)'", JENKINSFILE))


def test_every_variable_a_step_reads_has_a_source() -> None:
    known = (
        PIPELINE_SET
        | JCASC
        | CREDENTIALS
        | JENKINSFILE_ENV
        | JENKINS_BUILTIN
        | OPTIONAL
        | INTERNAL
        | SHELL
    )
    unknown = sorted(v for v in _read_by_scripts() - known if not OTHER_CI.match(v))
    assert not unknown, f"say where each comes from on Jenkins: {unknown}"


def test_what_the_pipeline_needs_is_provided(renders: Renders) -> None:
    env = _jcasc_env(renders.stack("prod"))
    assert set(env) >= JCASC, sorted(JCASC - set(env))
    assert all(env[key] for key in JCASC)
    assert _bound_variables() >= CREDENTIALS, sorted(CREDENTIALS - _bound_variables())
    block = re.search(r"environment \{(.*?)\}", JENKINSFILE, re.S)
    assert block is not None
    assert set(re.findall(r"^\s*([A-Z_]+) =", block.group(1), re.M)) >= JENKINSFILE_ENV


def test_internal_variables_are_set_by_the_scripts() -> None:
    text = "\n".join(p.read_text() for p in SCRIPTS)
    for name in INTERNAL:
        assert re.search(rf"(?:^|[\s;(])(?:export |local )?{name}=", text, re.M), name


def test_the_image_repository_is_the_configured_one(renders: Renders) -> None:
    env = _jcasc_env(renders.stack("prod"))
    # Pulumi.prod.yaml appstack:jenkins.pipeline.imageRepository, as build-image.sh checks it
    assert env["IMAGE_REPOSITORY"] == "registry.example.com/appstack/web"
    assert re.fullmatch(r"[a-z0-9.-]+(:[0-9]+)?(/[a-z0-9._-]+)+", env["IMAGE_REPOSITORY"])


def test_the_release_variables_are_set_by_the_pipeline() -> None:
    for name in PIPELINE_SET:
        assert re.search(rf"env\.{name} = ", JENKINSFILE), name
