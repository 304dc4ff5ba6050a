"""A fresh controller runs this repository's pipeline: the rendered JCasC defines the job, the
credentials the Jenkinsfile binds and real roles; every Jenkinsfile name maps to an installed
plugin (jenkins/pipeline-steps.yaml); the guards of issue 9 (Service wait, Namespace)."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from components import config as config_model
from components.config.jenkins_plugins import plugin_pins
from components.jenkins.builder import REGISTRY_CREDENTIAL, SIGNING_CREDENTIALS
from components.jenkins.names import APPROVERS_ENV, BACKEND_CREDENTIALS, PIPELINE_CREDENTIALS
from stackctl.mockruntime import engine
from stackctl.render.stack import RenderResult, render_config
from tests.conftest import Render, one
from tests.jenkins.helpers import casc, jenkins_raw
from tests.tooling import REPO

JENKINSFILE = (REPO / "Jenkinsfile").read_text()
CODE = "\n".join(re.sub(r"//.*$", "", line) for line in JENKINSFILE.splitlines())
#: The prod deploy job's pipeline (jenkins/prod-deploy.Jenkinsfile): steps mapped the same way.
PROD_FILE = (REPO / "jenkins/prod-deploy.Jenkinsfile").read_text()
PROD_CODE = "\n".join(re.sub(r"//.*$", "", line) for line in PROD_FILE.splitlines())
STEPS = yaml.safe_load((REPO / "jenkins/pipeline-steps.yaml").read_text())
KEYWORDS = {
    "pipeline", "agent", "options", "environment", "stages", "stage", "steps", "when", "post",
    "void", "String", "if", "else", "return", "def", "env", "scm",
    # Groovy/JDK methods and types, not steps
    "trim", "size", "Map", "List", "keySet", "containsKey", "join",
}  # fmt: skip


def _bound_credential_ids() -> set[str]:
    ids = set(re.findall(r"credentialsId: '([^']+)'", CODE))
    ids |= set(re.findall(r"withStackCredentials\('([^']+)'", CODE))
    return ids


def _names_used() -> set[str]:
    names: set[str] = set()
    for code in (CODE, PROD_CODE):
        code = re.sub(r"'[^'\n]*'", "''", code)  # nothing inside string literals
        local = set(re.findall(r"^\s*(?:void|Map|List) (\w+)\(", code, re.M))
        calls = set(re.findall(r"\b([a-zA-Z]\w*)\s*(?:\(|\{)", code))
        bare = set(re.findall(r"^\s*([a-z]\w*) [\w'\"]", code, re.M))
        names |= (calls | bare) - KEYWORDS - local
    return names


def test_every_jenkinsfile_name_maps_to_a_pinned_plugin() -> None:
    table: dict[str, Any] = {**STEPS["steps"], **STEPS["options"], **STEPS["conditions"]}
    table |= STEPS["agents"]
    unmapped = _names_used() - set(table)
    assert unmapped == set(), (
        f"Jenkinsfile names without a plugin in pipeline-steps.yaml: {unmapped}"
    )
    pins = plugin_pins()
    for name in _names_used():
        row = table[name]
        for plugin in (row["plugin"], row.get("requires")):
            assert plugin in (None, "core") or plugin in pins, (name, plugin)


def test_every_row_cites_the_pinned_version_of_its_plugin() -> None:
    """A row's `version` is the pin of jenkins/plugins.txt and its `source` cites that version
    (the tag the name was read at), so a bump that moves a pin without re-reading the step's
    source fails here."""
    pins = plugin_pins()
    for section in ("steps", "options", "conditions", "agents"):
        for name, row in STEPS[section].items():
            if row["plugin"] == "core":
                assert "version" not in row, (
                    name
                )  # core: the image's version (appstack:jenkins.image)
                continue
            assert row["version"] == pins[row["plugin"]], (section, name, row["version"])
            assert row["version"] in row["source"], (section, name, row["source"])
            # no other plugin version (e.g. a newer tag's) is cited beside it
            cited = set(re.findall(r"\b\d+(?:\.\d+)*\.v[0-9a-f_]+", row["source"]))
            assert cited <= {row["version"]}, (section, name, cited)


def test_timestamps_and_change_request_have_their_plugins() -> None:
    pins = plugin_pins()
    assert "timestamps()" in CODE and "timestamper" in pins
    assert "changeRequest()" in CODE and "github-branch-source" in pins


def test_jcasc_defines_every_credential_the_jenkinsfile_binds(render: Render) -> None:
    # imageBuilder: the Build image stage's `registry-push` (components/jenkins/builder.py)
    doc = casc(render(jenkins_raw("prod", imageBuilder=True)))
    (domain,) = doc["credentials"]["system"]["domainCredentials"]
    defined = {next(iter(c.values()))["id"]: next(iter(c)) for c in domain["credentials"]}
    # the state backend's credential: the configured kind's only (test_state_backend.py)
    other_backends = {c.id for k, c in BACKEND_CREDENTIALS.items() if k != "s3"}
    bound = _bound_credential_ids() - other_backends
    assert bound <= set(defined)
    kinds = {
        **PIPELINE_CREDENTIALS,
        REGISTRY_CREDENTIAL: "usernamePassword",
        **SIGNING_CREDENTIALS,
        BACKEND_CREDENTIALS["s3"].id: BACKEND_CREDENTIALS["s3"].kind,
    }
    for cred_id in bound:
        assert defined[cred_id] == kinds[cred_id]
    # values are files of the mounted Secret, never literals
    text = yaml.safe_dump(domain)
    values = re.findall(r"(?:secret|secretBytes|password|username): (.+)", text)
    assert values and all(v.strip("'\"").startswith("${readFile") for v in values)


def test_ci_credentials_secret_is_mounted_where_jcasc_reads_it(render: Render) -> None:
    result = render(jenkins_raw("prod"))
    spec = one(result.objects, "StatefulSet", "jenkins")["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["ci-credentials"]["secret"]["secretName"] == "jenkins-ci-credentials"
    assert "optional" not in volumes["ci-credentials"]["secret"]  # pod waits for the Secret
    mounts = {m["name"]: m["mountPath"] for m in spec["containers"][0]["volumeMounts"]}
    assert mounts["ci-credentials"] == "/run/secrets/jenkins-ci"


def test_jcasc_creates_the_multibranch_job_of_this_repository(render: Render) -> None:
    doc = casc(render(jenkins_raw("prod")))
    (job,) = doc["jobs"]
    script = job["script"]
    assert script.startswith("multibranchPipelineJob('appstack')")
    assert "repoOwner('example'); repository('appstack')" in script
    assert "gitHubPullRequestDiscovery" in script  # pull requests -> changeRequest() previews
    assert "credentialsId('scm-credentials')" in script
    assert "periodicFolderTrigger" in script
    plugins = plugin_pins()
    assert {"job-dsl", "github-branch-source", "workflow-multibranch"} <= set(plugins)


def test_git_source_for_gitlab_and_no_job_without_repository(render: Render) -> None:
    gitlab = "https://gitlab.example.com/acme/appstack.git"
    doc = casc(render(jenkins_raw("dev", job={"scm": "git", "repository": gitlab})))
    assert f"remote('{gitlab}')" in doc["jobs"][0]["script"]
    assert "jobs" not in casc(render(jenkins_raw("dev")))
    # GitLab hooks to /git/notifyCommit may only trigger a scan (git plugin GitStatus.java)
    sts = one(
        render(jenkins_raw("dev", job={"scm": "git", "repository": gitlab})).objects,
        "StatefulSet",
        "jenkins",
    )
    env = {e["name"]: e["value"] for e in sts["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert "NOTIFY_COMMIT_ACCESS_CONTROL=disabled-for-polling" in env["JAVA_OPTS"]


def _roles(result: RenderResult) -> dict[str, dict[str, Any]]:
    strategy = casc(result)["jenkins"]["authorizationStrategy"]
    return {r["name"]: r for r in strategy["roleBased"]["roles"]["global"]}


def test_only_deployers_can_approve_prod_and_admins_are_separate(render: Render) -> None:
    result = render(jenkins_raw("prod", authorization={"deployers": ["alice"]}))
    doc = casc(result)
    roles = _roles(result)
    submitter = re.search(r"submitter: env\.(\w+) \?: '([^']+)'", PROD_CODE)
    assert submitter is not None and submitter.group(1) == APPROVERS_ENV
    env = doc["jenkins"]["globalNodeProperties"][0]["envVars"]["env"]
    (approvers,) = [e["value"] for e in env if e["key"] == APPROVERS_ENV]
    # The local realm has no groups: the group is not an approver (test_prod_approval.py).
    assert approvers.split(",") == ["alice"]
    # Overall/Administer answers any input (pipeline-input-step InputStepExecution.canSettle):
    # only the admin role has it, and it goes to the admin Secret's user alone.
    admins = [r for r in roles.values() if "Overall/Administer" in r["permissions"]]
    assert [r["name"] for r in admins] == ["admin"]
    assert roles["admin"]["entries"] == [
        {"user": "${readFile:/run/secrets/jenkins/admin-username}"}
    ]
    deployer_entries = roles["prod-deployer"]["entries"]
    assert deployer_entries == [{"user": "alice"}]
    assert roles["developer"]["entries"] == [{"group": "authenticated"}]
    assert "loggedInUsersCanDoAnything" not in doc["jenkins"]["authorizationStrategy"]
    users = [u["id"] for u in doc["jenkins"]["securityRealm"]["local"]["users"]]
    assert "alice" in users


def test_location_url_is_the_ingress_public_url(render: Render) -> None:
    raw = jenkins_raw(
        "prod",
        ingress={"enabled": True, "host": "ci.example.com", "tlsSecretName": "ci-tls"},
    )
    assert casc(render(raw))["unclassified"]["location"]["url"] == "https://ci.example.com/"


def test_ui_service_waits_as_long_as_the_statefulset(
    render: Render, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What reaches the engine: RegisterResourceRequest.customTimeouts (the provider's await
    # reads it before the annotation and its 10 min default: metadata.TimeoutDuration).
    seen: dict[str, Any] = {}
    original = engine.InlineMonitor.RegisterResource

    def record(self: Any, request: Any) -> Any:
        seen[request.name] = request.customTimeouts
        return original(self, request)

    monkeypatch.setattr(engine.InlineMonitor, "RegisterResource", record)
    # a real program run (the `render` fixture may hand out a render it already has)
    render_config(config_model.load(jenkins_raw("prod")), "prod")
    sts, svc = seen["jenkins-statefulset"], seen["jenkins-service"]
    assert (sts.create, sts.update) == ("20m", "20m")
    assert (svc.create, svc.update) == (sts.create, sts.update)


def test_namespace_is_guarded_like_jenkins_home(render: Render) -> None:
    for env, keep in (("prod", True), ("dev", False)):
        result = render(jenkins_raw(env))
        home = result.options["PersistentVolumeClaim/jenkins/jenkins-home"]
        ns = result.options["Namespace/-/jenkins"]
        assert bool(home.get("protect")) is keep
        assert bool(ns.get("protect")) == bool(home.get("protect"))
        assert bool(ns.get("retain_on_delete")) == bool(home.get("retain_on_delete"))


def test_api_server_ports_are_configurable(render: Render) -> None:
    result = render(jenkins_raw("prod", kubeApiPorts=[16443], agentApiPorts=[6443, 8443]))
    policies = {p["metadata"]["name"]: p for p in result.objects if p["kind"] == "NetworkPolicy"}
    api = policies["jenkins-controller"]["spec"]["egress"][0]
    assert [p["port"] for p in api["ports"]] == [16443]
    agents_out = policies["jenkins-agent"]["spec"]["egress"][1]
    # 80: the prod app's LoadBalancer port, where verify reads its health URL
    assert [p["port"] for p in agents_out["ports"]] == [80, 443, 6443, 8443]
