"""The JCasC document (jenkins.yaml), plain data; tests parse it back out of the rendered
ConfigMap. Attribute names are those of the pinned plugins (sources in the comments)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from components.config import JenkinsSettings
from components.jenkins.agent_containers import casc_pod_template
from components.jenkins.agents import pod_templates
from components.jenkins.builder import (
    builder_pod_template,
    registry_push_credential,
    signing_credentials,
)
from components.jenkins.names import (
    ADMIN_PASSWORD_FILE,
    ADMIN_USER_FILE,
    APPROVERS_ENV,
    BACKEND_CREDENTIALS,
    BACKEND_ENV,
    CI_SECRETS_DIR,
    METRICS_PATH,
    PIPELINE_CREDENTIALS,
    PROD_CREDENTIAL,
    PROD_JENKINSFILE,
    PROD_JOB,
    RELEASE_BRANCH,
    RELEASE_JOB_ENV,
    SCM_TOKEN_KEY,
    SCM_USERNAME_KEY,
    USERS_SECRETS_DIR,
)

#: Global roles (role-strategy `roleBased.roles.global`; permission names as JCasC writes them,
#: `<group>/<name>` of hudson.security.Permission). Overall/Administer is held by the admin role
#: only: pipeline-input-step's InputStepExecution.canSettle lets an administrator answer any
#: `input`, so admins are exactly the break-glass account of the admin Secret.
#: No Run/Replay outside the admin role: Replay runs edited pipeline code with the job's
#: credentials (workflow-cps ReplayAction.REPLAY, implied only by Job/Configure, which no role
#: but admin holds either).
DEVELOPER_PERMISSIONS = ("Overall/Read", "Job/Read", "Job/Build", "Job/Cancel")
DEPLOYER_PERMISSIONS = DEVELOPER_PERMISSIONS
ADMIN_PERMISSIONS = ("Overall/Administer",)


@dataclass(frozen=True)
class CascSite:
    """Where this controller runs: what its JCasC document points agents and users at."""

    instance: str
    """app.kubernetes.io/instance label value (the agent pods' labels)."""
    namespace: str
    """The Jenkins namespace: the cloud's namespace and that of its default templates."""
    service: str
    """The UI Service: agents connect to it over WebSocket, users reach it without an Ingress."""
    agent_service_account: str
    """The ServiceAccount of the `default` and `pulumi` agent pods."""


def service_url(namespace: str, service: str, port: int) -> str:
    """The in-cluster URL of the UI Service (cluster-domain independent: `<svc>.<ns>.svc`)."""
    return f"http://{service}.{namespace}.svc:{port}/"


def public_url(settings: JenkinsSettings, namespace: str, service: str) -> str:
    """The URL users reach Jenkins at: the Ingress host when there is one, else in-cluster."""
    ing = settings.ingress
    if ing.enabled:
        scheme = "https" if ing.tls_secret_name else "http"
        path = ing.path if ing.path.endswith("/") else ing.path + "/"
        return f"{scheme}://{ing.host}{path}"
    return service_url(namespace, service, settings.service.port)


def approvers(settings: JenkinsSettings) -> list[str]:
    """Who may answer the prod `input`: the local deployer users and the deployers group."""
    auth = settings.authorization
    groups: list[str] = [] if auth.realm == "local" else [auth.deployers_group]  # local: no groups
    return [*auth.deployers, *groups]


def pipeline_environment(settings: JenkinsSettings) -> dict[str, str]:
    """The global variables the Jenkinsfile and scripts/ci read that are not credentials
    (EnvironmentVariablesNodeProperty of core, JCasC `globalNodeProperties.envVars`): set here
    from config, so a value set in the UI cannot drift and a restart restores them."""
    env = {
        APPROVERS_ENV: ",".join(approvers(settings)),
        BACKEND_ENV: settings.pipeline.state_backend,
    }
    if settings.job.repository:  # the prod deploy job accepts only this job's builds
        env[RELEASE_JOB_ENV] = f"{settings.job.name}/{RELEASE_BRANCH}"
    if settings.pipeline.image_repository:
        env["IMAGE_REPOSITORY"] = settings.pipeline.image_repository
    if settings.pipeline.agent_image_repository:
        env["AGENT_IMAGE_REPOSITORY"] = settings.pipeline.agent_image_repository
    return env


def _security_realm(settings: JenkinsSettings) -> dict[str, Any]:
    users = [
        {
            "id": f"${{readFile:{ADMIN_USER_FILE}}}",
            "name": "Jenkins Admin",
            "password": f"${{readFile:{ADMIN_PASSWORD_FILE}}}",
        }
    ]
    users += [
        {"id": user, "name": user, "password": f"${{readFile:{USERS_SECRETS_DIR}/{user}}}"}
        for user in settings.authorization.deployers
    ]
    return {"local": {"allowsSignup": False, "users": users}}


def _authorization(settings: JenkinsSettings) -> dict[str, Any]:
    auth = settings.authorization
    deployer_entries = [{"user": u} for u in auth.deployers]
    if auth.realm != "local":
        deployer_entries.append({"group": auth.deployers_group})

    def role(name: str, description: str, perms: tuple[str, ...], entries: list[Any]) -> Any:
        return {
            "name": name,
            "description": description,
            "permissions": list(perms),
            "entries": entries,
        }

    return {
        "roleBased": {
            "roles": {
                "global": [
                    role(
                        "admin",
                        "Break-glass administrator (admin Secret) only",
                        ADMIN_PERMISSIONS,
                        [{"user": f"${{readFile:{ADMIN_USER_FILE}}}"}],
                    ),
                    role(
                        "prod-deployer",
                        f"May approve prod (Jenkinsfile input submitter: ${APPROVERS_ENV})",
                        DEPLOYER_PERMISSIONS,
                        deployer_entries,
                    ),
                    role(
                        "developer",
                        "Every logged-in user: read, build, cancel; no replay; cannot approve prod",
                        DEVELOPER_PERMISSIONS,
                        [{"group": "authenticated"}],
                    ),
                ]
            }
        }
    }


def _credentials(settings: JenkinsSettings) -> dict[str, Any]:
    """The credentials the Jenkinsfile binds, each read from the operator's Secret mounted at
    CI_SECRETS_DIR (`${readFile:}` / `${readFileBase64:}`: configuration-as-code
    SecretSourceResolver), plus the SCM credential of the job."""

    def entry(cred_id: str, kind: str) -> dict[str, Any]:
        path = f"{CI_SECRETS_DIR}/{cred_id}"
        if kind == "string":
            body = {"secret": f"${{readFile:{path}}}"}
        else:
            body = {"fileName": "kubeconfig", "secretBytes": f"${{readFileBase64:{path}}}"}
        return {kind: {"scope": "GLOBAL", "id": cred_id, "description": cred_id, **body}}

    items = [entry(cred_id, kind) for cred_id, kind in PIPELINE_CREDENTIALS.items()]
    items.append(_backend_credential(settings))
    items.append(
        {
            "usernamePassword": {
                "scope": "GLOBAL",
                "id": settings.job.credentials_id,
                "description": "SCM: scan and clone the pipeline's repository",
                "username": f"${{readFile:{CI_SECRETS_DIR}/{SCM_USERNAME_KEY}}}",
                "password": f"${{readFile:{CI_SECRETS_DIR}/{SCM_TOKEN_KEY}}}",
            }
        }
    )
    if settings.image_builder:  # the Build image stage's push login (builder.py)
        items.append(registry_push_credential(CI_SECRETS_DIR))
        items += signing_credentials(CI_SECRETS_DIR)  # Sign and SBOM: cosign's key

    return {"system": {"domainCredentials": [{"credentials": items}]}}


def _backend_credential(settings: JenkinsSettings) -> dict[str, Any]:
    """The state backend's own credential (names.BACKEND_CREDENTIALS), from the CI Secret."""
    cred = BACKEND_CREDENTIALS[settings.pipeline.state_backend]
    paths = [f"{CI_SECRETS_DIR}/{key}" for key in cred.keys]
    head = {"scope": "GLOBAL", "id": cred.id, "description": "Pulumi state backend"}
    if cred.kind == "usernamePassword":
        body = {"username": f"${{readFile:{paths[0]}}}", "password": f"${{readFile:{paths[1]}}}"}
    elif cred.kind == "file":
        body = {"fileName": "credentials.json", "secretBytes": f"${{readFileBase64:{paths[0]}}}"}
    else:
        body = {"secret": f"${{readFile:{paths[0]}}}"}
    return {cred.kind: {**head, **body}}


def groovy_string(value: str) -> str:
    """A single-quoted Groovy string literal (no `$` interpolation), escaped."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def job_dsl(settings: JenkinsSettings) -> str:
    """job-dsl script of the multibranch job (symbols: GitHubSCMSource @Symbol("github"),
    BranchDiscoveryTrait "gitHubBranchDiscovery", OriginPullRequestDiscoveryTrait
    "gitHubPullRequestDiscovery" in github-branch-source; GitSCMSource "git" in git;
    PeriodicFolderTrigger "periodicFolderTrigger" in cloudbees-folder)."""
    job = settings.job
    q = groovy_string
    if job.scm == "github":
        owner, repo = job.github_owner_repo
        source = (
            f"github {{ id({q(job.name)}); repoOwner({q(owner)}); repository({q(repo)}); "
            f"repositoryUrl({q(job.repository)}); configuredByUrl(true); "
            f"credentialsId({q(job.credentials_id)}); traits {{ "
            "gitHubBranchDiscovery { strategyId(1) }; "
            "gitHubPullRequestDiscovery { strategyId(1) } } }"
        )
    else:
        source = (
            f"git {{ id({q(job.name)}); remote({q(job.repository)}); "
            f"credentialsId({q(job.credentials_id)}) }}"
        )
    return (
        f"multibranchPipelineJob({q(job.name)}) {{\n"
        f"  branchSources {{ branchSource {{ source {{ {source} }} }} }}\n"
        "  factory { workflowBranchProjectFactory { scriptPath('Jenkinsfile') } }\n"
        "  orphanedItemStrategy { discardOldItems { numToKeep(20) } }\n"
        f"  triggers {{ periodicFolderTrigger {{ interval({q(job.scan_interval)}) }} }}\n"
        "}\n"
    ) + prod_job_dsl(settings)


def prod_folder(settings: JenkinsSettings) -> str:
    """The folder of the prod deploy job, beside (never above) the multibranch job."""
    return f"{settings.job.name}-prod"


def prod_job_dsl(settings: JenkinsSettings) -> str:
    """job-dsl of the prod folder and its deploy job (dynamic DSL names: cloudbees-folder
    FolderCredentialsProvider.FolderCredentialsProperty `folderCredentialsProperty`, credentials
    DomainCredentials, plain-credentials StringCredentialsImpl; core ReverseBuildTrigger
    @Symbol("upstream"); workflow-cps CpsScmFlowDefinition `cpsScm`; git GitSCM).

    Why it holds: a folder's credentials are returned only for items whose parent chain passes
    through that folder (FolderCredentialsProvider.getCredentialsInItemGroup walks
    `itemGroup.getParent()` upwards), so `<job>/<branch>` and `<job>/PR-n` never see
    `kubeconfig-prod`; the deploy job builds `main` only (its SCM's branch), starts only from
    the release job's success (ReverseBuildTrigger, and its Jenkinsfile refuses other causes),
    and nobody but admin may configure it (no Job/Configure outside the admin role)."""
    job = settings.job
    q = groovy_string
    folder = prod_folder(settings)
    secret = f"${{readFileBase64:{CI_SECRETS_DIR}/{PROD_CREDENTIAL}}}"
    credential = (
        "stringCredentialsImpl { scope('GLOBAL'); "
        f"id({q(PROD_CREDENTIAL)}); description('prod kubeconfig (base64)'); secret({q(secret)}) }}"
    )
    scm = (
        f"git {{ remote {{ url({q(job.repository)}); credentials({q(job.credentials_id)}) }}; "
        f"branch({q('*/' + RELEASE_BRANCH)}) }}"
    )
    release = f"{job.name}/{RELEASE_BRANCH}"
    return (
        f"folder({q(folder)}) {{\n"
        "  description('Prod deploys: the only place that holds the prod kubeconfig')\n"
        "  properties { folderCredentialsProperty { domainCredentials { domainCredentials {\n"
        f"    domain {{ name(''); description('') }}; credentials {{ {credential} }}\n"
        "  } } } }\n"
        "}\n"
        f"pipelineJob({q(folder + '/' + PROD_JOB)}) {{\n"
        f"  description({q('Deploys prod after a successful build of ' + release)})\n"
        "  properties { disableConcurrentBuilds(); pipelineTriggers { triggers { "
        f"upstream {{ upstreamProjects({q(release)}); threshold('SUCCESS') }} }} }} }}\n"
        f"  definition {{ cpsScm {{ scm {{ {scm} }}; scriptPath({q(PROD_JENKINSFILE)}); "
        "lightweight(true) } }\n"
        "}\n"
    )


def _cloud(settings: JenkinsSettings, site: CascSite) -> dict[str, Any]:
    """The Kubernetes cloud: agents in the Jenkins namespace, connecting over WebSocket to the
    in-cluster URL, from two pod templates (three with the image builder, whose pods run in its
    own namespace: components/jenkins/builder.py)."""
    templates = pod_templates(settings, site.instance, site.namespace, site.agent_service_account)
    if settings.image_builder:
        templates.append(builder_pod_template(settings, site.instance))
    return {
        "kubernetes": {
            "name": "kubernetes",
            "namespace": site.namespace,
            "jenkinsUrl": service_url(site.namespace, site.service, settings.service.port),
            "webSocket": True,
            "containerCapStr": str(settings.cloud.container_cap),
            "podRetention": settings.cloud.pod_retention,
            "skipTlsVerify": False,
            "templates": [casc_pod_template(t, settings.cloud.pod_retention) for t in templates],
        }
    }


def casc_document(settings: JenkinsSettings, site: CascSite) -> dict[str, Any]:
    """The JCasC document: hardened security, roles, credentials, the Kubernetes cloud and its
    two pod templates, and the multibranch job of this repository."""
    doc: dict[str, Any] = {
        "jenkins": {
            "systemMessage": (
                "Managed by appstack (Pulumi, JCasC): changes made in the UI are lost on restart."
            ),
            "numExecutors": 0,
            "mode": "EXCLUSIVE",
            # No TCP agent listener: agents use WebSocket. Deliberately absent: `agentProtocols`
            # (no longer configurable since Jenkins 2.483; JCasC rejects it as deprecated and the
            # controller would not start) and `remotingSecurity` (agent-to-controller security is
            # always on since 2.326; the setter is deprecated too).
            "slaveAgentPort": -1,
            "disableRememberMe": True,
            "crumbIssuer": {"standard": {"excludeClientIPFromCrumb": False}},
            "securityRealm": _security_realm(settings),
            "authorizationStrategy": _authorization(settings),
            "globalNodeProperties": [
                {
                    "envVars": {
                        "env": [
                            {"key": key, "value": value}
                            for key, value in pipeline_environment(settings).items()
                        ]
                    }
                }
            ],
            "clouds": [_cloud(settings, site)],
        },
        "credentials": _credentials(settings),
        "security": {
            "apiToken": {
                "creationOfLegacyTokenEnabled": False,
                "tokenGenerationOnCreationEnabled": False,
                "usageStatisticsEnabled": False,
            }
        },
        "unclassified": {
            "location": {"url": public_url(settings, site.namespace, site.service)},
            "prometheusConfiguration": {"path": METRICS_PATH, "useAuthenticatedEndpoint": False},
        },
    }
    if settings.job.repository:
        doc["jobs"] = [{"script": job_dsl(settings)}]
    return doc


class _BlockDumper(yaml.SafeDumper):
    """SafeDumper writing multi-line strings (agent pod YAML, job scripts) as literal blocks."""


def _str_block(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockDumper.add_representer(str, _str_block)


def casc_yaml(document: Mapping[str, Any]) -> str:
    """The JCasC file's text; agent pod templates appear as readable literal blocks."""
    return yaml.dump(dict(document), Dumper=_BlockDumper, sort_keys=False, width=1000)
