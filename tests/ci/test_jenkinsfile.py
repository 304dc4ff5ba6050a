"""The Jenkinsfile: npm-groovy-lint (CodeNarc) with no errors or warnings, and the pipeline's
rules read from its text: stages, agent, options, credentials, quoting, approval, rollback."""

from __future__ import annotations

import re

import pytest

from tests.ci.pipelines import JENKINSFILE, jenkins_stages, strip_comments
from tests.tooling import SHIPPED_STACKS

SOURCE = JENKINSFILE.read_text(encoding="utf-8")
CODE = strip_comments(SOURCE)
STAGES = jenkins_stages(SOURCE)
#: The prod deploy job's pipeline (its own folder and credentials; started by main's success).
PROD_SOURCE = (JENKINSFILE.parent / "jenkins/prod-deploy.Jenkinsfile").read_text(encoding="utf-8")
PROD_CODE = strip_comments(PROD_SOURCE)
PROD_STAGES = jenkins_stages(PROD_SOURCE)
SECRET_VARIABLES = ("PULUMI_CONFIG_PASSPHRASE", "PULUMI_BACKEND_URL", "KUBECONFIG")


def test_stages_in_order() -> None:
    assert list(STAGES) == [
        "Checkout",
        "Test",
        "Audit",
        "Diff",
        "Preview",
        "Build image",
        "Sign and SBOM",
        "Deploy dev",
        "Deploy staging",
        "Release",
    ]
    assert list(PROD_STAGES) == ["Release", "Approve prod", "Deploy prod"]
    assert "checkout scm" in STAGES["Checkout"]
    assert "sh 'make test'" in STAGES["Test"]


def test_kubernetes_agent_from_the_pulumi_pod_template() -> None:
    agent = re.search(r"agent\s*\{\s*kubernetes\s*\{([^}]*)\}", CODE)
    assert agent, "the pipeline runs on a kubernetes agent"
    assert "inheritFrom 'pulumi'" in agent.group(1)
    assert "defaultContainer 'pulumi'" in agent.group(1)


def test_options() -> None:
    options = re.search(r"\boptions\s*\{([^}]*)\}", CODE)
    assert options
    for option in ("disableConcurrentBuilds()", "timestamps()", "timeout(time:"):
        assert option in options.group(1)


def test_when_conditions() -> None:
    assert "changeRequest()" in STAGES["Preview"]
    for stage in ("Build image", "Deploy dev", "Deploy staging", "Release"):
        assert "branch 'main'" in STAGES[stage], stage
    assert "changeRequest()" in STAGES["Diff"]


def test_credentials_are_bound_with_withcredentials() -> None:
    helper = re.search(r"void withStackCredentials\(String kubeconfigId, String command\)", CODE)
    assert helper
    bindings = (
        "string(credentialsId: 'pulumi-passphrase', variable: 'PULUMI_CONFIG_PASSPHRASE')",
        "string(credentialsId: 'pulumi-backend-url', variable: 'PULUMI_BACKEND_URL')",
        "file(credentialsId: kubeconfigId, variable: 'KUBECONFIG')",
    )
    for binding in bindings:
        assert binding in CODE
    assert "withStackCredentials('kubeconfig-dev', 'scripts/ci/deploy.sh dev')" in CODE
    assert "withStackCredentials('kubeconfig-staging', 'scripts/ci/deploy.sh staging')" in CODE
    # prod's kubeconfig: never in the multibranch job's pipeline, only in the prod job's
    assert "kubeconfig-prod'" not in CODE
    assert "string(credentialsId: 'kubeconfig-prod', variable: 'KUBECONFIG_DATA_B64')" in PROD_CODE
    assert "withProdCredentials('scripts/ci/deploy.sh prod')" in PROD_STAGES["Deploy prod"]
    for code in (CODE, PROD_CODE):
        assert "credentials(" not in code  # no secrets in a pipeline-wide environment block


def test_the_notification_webhook_is_an_optional_credential_of_every_stack_operation() -> None:
    binding = "string(credentialsId: id, variable: 'APPSTACK_NOTIFY_WEBHOOK_URL')"
    for code, helper in ((CODE, "withStackCredentials"), (PROD_CODE, "withProdCredentials")):
        assert binding in code
        assert "String id = env.APPSTACK_NOTIFY_CREDENTIAL ?: ''" in code
        body = code[code.index(f"void {helper}(") :]
        assert "] + backendCredentials() + notifyCredentials()" in body[: body.index("sh(")]


def test_the_prod_deploy_can_read_the_signatures_its_gate_verifies() -> None:
    # prod requires signed images: cosign (in stackctl deploy) reads them from the registry.
    body = PROD_CODE[PROD_CODE.index("void withProdCredentials(") :]
    assert "+ registryCredentials()) {" in body[: body.index("sh(")]
    assert "String id = env.APPSTACK_REGISTRY_CREDENTIAL ?: 'registry-push'" in PROD_CODE


def test_the_pushed_digests_are_signed_with_the_key_from_the_credentials_store() -> None:
    sign = STAGES["Sign and SBOM"]
    assert "file(credentialsId: 'cosign-key', variable: 'COSIGN_KEY_FILE')" in sign
    assert "string(credentialsId: 'cosign-password', variable: 'COSIGN_PASSWORD')" in sign
    assert "sh 'scripts/ci/sign-images.sh'" in sign and "sh 'scripts/ci/sbom.sh'" in sign
    assert "unstash 'images'" in sign


def test_every_shell_command_is_a_single_quoted_literal() -> None:
    """Groovy interpolates "..." before the shell runs: a secret would reach the command line
    and the log. Every sh step and helper call takes a single-quoted string."""
    # string contents blanked, so `deploy.sh dev` inside a literal is not taken for a step
    for source in (CODE, PROD_CODE):
        code = re.sub(r"'[^'\n]*'", "''", re.sub(r'"[^"\n]*"', '""', source))
        calls = re.findall(r"(?<![\w.])sh\b\s*\(?\s*(?:script:\s*)?(\S+)", code)
        assert len(calls) >= 2
        for argument in calls:
            assert argument.startswith("'") or argument == "command)", f"sh {argument}"
        assert re.findall(r"\bsh\(command\)", source) == ["sh(command)"]  # the helper only
        for call in re.finditer(r"with(?:Stack|Prod)Credentials\(([^)]*)\)", source):
            if call.group(1).startswith("String"):
                continue  # the definition
            assert re.fullmatch(r"('[a-z-]+', )?'[^'$]+'", call.group(1)), call.group(0)
        for name in (*SECRET_VARIABLES, "KUBECONFIG_DATA_B64"):
            assert not re.search(rf'"[^"\n]*\$\{{?{name}', source), f"{name} inside a GString"
            assert not re.search(rf"\becho\b[^\n]*{name}", source), f"{name} echoed"


def test_prod_needs_approval_by_a_group_and_goes_one_at_a_time() -> None:
    approve = PROD_STAGES["Approve prod"]
    assert re.search(
        r"input\(\s*message:.*submitter: "
        r"(env\.APPSTACK_PROD_APPROVERS \?: )?'appstack-prod-deployers'",
        approve,
        re.S,
    )
    assert "timeout(time:" in approve  # an unanswered approval does not hold the agent forever
    ordinals = [int(n) for n in re.findall(r"milestone\(ordinal: (\d+)", PROD_CODE)]
    assert len(ordinals) == 2 and ordinals == sorted(ordinals)
    assert approve.index("milestone(") < approve.index("input(") < approve.rindex("milestone(")


@pytest.mark.parametrize(
    ("stack", "stages", "call"),
    [
        (
            "staging",
            STAGES,
            "withStackCredentials('kubeconfig-staging', 'scripts/ci/rollback.sh staging')",
        ),
        ("prod", PROD_STAGES, "withProdCredentials('scripts/ci/rollback.sh prod')"),
    ],
)
def test_prod_and_staging_failure_rolls_back(stack: str, stages: dict[str, str], call: str) -> None:
    deploy = stages[f"Deploy {stack}"]
    post = re.search(r"\bpost\s*\{", deploy)
    assert post
    handlers = deploy[post.end() :]
    for condition in ("failure", "aborted"):
        block = re.search(rf"\b{condition}\s*\{{([^}}]*)\}}", handlers)
        assert block, f"no post {condition} in Deploy {stack}"
        assert call in block.group(1)


def test_staging_is_deployed_and_verified_between_dev_and_the_prod_approval() -> None:
    """dev, then staging with its functional checks (deploy.sh runs verify.sh), then the
    approval: a staging failure fails the stage, and a failed stage skips every later one."""
    names = list(STAGES)
    assert names.index("Deploy dev") < names.index("Deploy staging") < names.index("Release")
    staging = STAGES["Deploy staging"]
    assert staging.index("unstash 'images'") < staging.index("scripts/ci/deploy.sh staging")
    assert "catchError" not in staging  # its failure stops the build before the prod job starts
    deploy = (JENKINSFILE.parent / "scripts" / "ci" / "deploy.sh").read_text(encoding="utf-8")
    assert '"$CI_DIR/verify.sh" "$stack"' in deploy


def test_preview_stage_previews_every_stack_and_archives_the_summaries() -> None:
    preview = STAGES["Preview"]
    for stack in SHIPPED_STACKS:
        assert f"'scripts/ci/preview.sh {stack} out/ci/preview-{stack}.md'" in preview
    assert "archiveArtifacts(artifacts: 'out/ci/preview-*.md'" in preview


def test_the_built_digest_is_what_both_deploys_run() -> None:
    """Build image (builder pod) stashes the digest file; each Deploy stage unstashes it before
    deploy.sh, which deploys it and verifies the apps."""
    build = STAGES["Build image"]
    assert re.search(r"agent\s*\{\s*kubernetes\s*\{[^}]*inheritFrom 'builder'", build)
    assert "checkout scm" in build
    assert "sh 'scripts/ci/build-image.sh web app app/Dockerfile'" in build
    assert "credentialsId: 'registry-push'" in build
    assert "stash(name: 'images', includes: 'out/ci/images')" in build
    names = list(STAGES)
    for stage in ("Deploy dev", "Deploy staging"):
        body = STAGES[stage]
        assert body.index("unstash 'images'") < body.index("scripts/ci/deploy.sh")
    names_order = ("Build image", "Deploy dev", "Deploy staging", "Release")
    assert [names.index(n) for n in names_order] == sorted(names.index(n) for n in names_order)
    # The release hands the same digest to the prod job, which deploys it after the approval.
    release = STAGES["Release"]
    assert release.index("unstash 'images'") < release.index(
        "env.DEPLOY_IMAGES = readFile('out/ci/images').trim()"
    )
    prod = list(PROD_STAGES)
    assert prod.index("Release") < prod.index("Approve prod") < prod.index("Deploy prod")
    assert "env.DEPLOY_IMAGES = release.images" in PROD_STAGES["Release"]
    assert "publish-manifests.sh" not in CODE  # GitOps only through deploy.sh: same gate


def test_pull_requests_get_the_render_diff_of_every_stack() -> None:
    diff = STAGES["Diff"]
    for stack in SHIPPED_STACKS:
        assert f"sh 'scripts/ci/diff.sh {stack} \"$CHANGE_TARGET\" out/ci/diff-{stack}.md'" in diff
    assert "archiveArtifacts(artifacts: 'out/ci/diff-*.md'" in diff
    names = list(STAGES)
    assert names.index("Diff") < names.index("Preview")


def test_the_prod_job_deploys_only_a_release_of_main() -> None:
    """Started by anything but a successful build of the release job (APPSTACK_RELEASE_JOB,
    JCasC), the prod job stops before it checks anything out; it deploys the commit that build
    tested, and only if that commit is on main."""
    release = PROD_STAGES["Release"]
    assert release.index("releaseFromMain()") < release.index("checkout scm")
    assert "upstream.size() != 1 || upstream[0].fullProjectName != env.APPSTACK_RELEASE_JOB" in (
        PROD_CODE
    )
    assert re.search(r"List upstream = currentBuild\.upstreamBuilds", PROD_CODE)
    assert "error('prod deploys start only when a build of '" in PROD_CODE
    assert 'git merge-base --is-ancestor "$DEPLOY_COMMIT" HEAD' in release
    assert "when {" not in PROD_CODE  # every stage runs: the job has one branch, main
