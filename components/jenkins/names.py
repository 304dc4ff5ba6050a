"""Names, paths and ports shared by the parts of the Jenkins component (one place, as the Helm
chart's `_helpers.tpl`)."""

from __future__ import annotations

from dataclasses import dataclass

from components.jenkins.builder import (
    REGISTRY_PASSWORD_KEY,
    REGISTRY_USERNAME_KEY,
    SIGNING_CREDENTIALS,
)

APP = "jenkins"
AGENT_APP = "jenkins-agent"
HTTP_PORT = 8080

JENKINS_HOME = "/var/jenkins_home"
#: The official image's WAR; jenkins-plugin-cli reads the core version from it.
JENKINS_WAR = "/usr/share/jenkins/jenkins.war"
PLUGINS_DIR = f"{JENKINS_HOME}/plugins"
CASC_DIR = "/var/jenkins_config"
CASC_FILE = "jenkins.yaml"
PLUGIN_LIST_DIR = "/plugins"
SECRETS_DIR = "/run/secrets/jenkins"
ADMIN_USER_FILE = f"{SECRETS_DIR}/admin-username"
ADMIN_PASSWORD_FILE = f"{SECRETS_DIR}/admin-password"
CI_SECRETS_DIR = "/run/secrets/jenkins-ci"
USERS_SECRETS_DIR = "/run/secrets/jenkins-users"
CACHE_DIR = "/var/jenkins_cache"
#: The prometheus plugin's endpoint path (JCasC `prometheusConfiguration.path`): served to anyone
#: who reaches the controller (useAuthenticatedEndpoint false), so only the monitoring namespace
#: may (NetworkPolicy) and the Ingress never routes it (exposure.py).
METRICS_PATH = "prometheus"
TOOLS_CONTAINER = "pulumi"

#: Global environment variable (JCasC globalNodeProperties) naming who may approve prod; the
#: Jenkinsfile's `input submitter` reads it.
APPROVERS_ENV = "APPSTACK_PROD_APPROVERS"

#: Credentials the Jenkinsfile binds, by ID, and their JCasC type (plain-credentials: `string`
#: = StringCredentialsImpl, `file` = FileCredentialsImpl). Values come from the keys of the same
#: name in the operator's Secret (appstack:jenkins.credentials.secretName).
PIPELINE_CREDENTIALS: dict[str, str] = {
    "pulumi-passphrase": "string",
    "pulumi-backend-url": "string",
    "kubeconfig-dev": "file",
    "kubeconfig-staging": "file",
    "kubeconfig-prod-preview": "file",
}
#: The prod deploy credential: not global, but a credential of the prod folder
#: (`<job.name>-prod`, job-dsl in casc.py), the prod kubeconfig base64-encoded (Secret text,
#: bound as KUBECONFIG_DATA_B64). Only jobs inside that folder can bind it.
PROD_CREDENTIAL = "kubeconfig-prod"
#: The job of the prod folder that deploys prod (jenkins/prod-deploy.Jenkinsfile).
PROD_JOB = "deploy"
PROD_JENKINSFILE = "jenkins/prod-deploy.Jenkinsfile"
#: Global variable naming the build whose success starts the prod deploy (`<job.name>/main`).
RELEASE_JOB_ENV = "APPSTACK_RELEASE_JOB"
RELEASE_BRANCH = "main"
SCM_USERNAME_KEY = "scm-username"
SCM_TOKEN_KEY = "scm-token"
#: Keys of the operator's Secret the `Build image` stage's credential `registry-push` reads.
REGISTRY_KEYS = (REGISTRY_USERNAME_KEY, REGISTRY_PASSWORD_KEY)


@dataclass(frozen=True)
class BackendCredential:
    """The credential a state backend kind needs, as JCasC defines it and the pipelines bind it:
    its ID, kind, the CI Secret keys it reads, and the variables the Pulumi CLI reads."""

    id: str
    kind: str
    keys: tuple[str, ...]
    variables: tuple[str, ...]


#: By `pipeline.stateBackend`: the variables each backend's client library reads (Pulumi's
#: state backends: gocloud.dev blob drivers s3blob (AWS SDK: AWS_ACCESS_KEY_ID,
#: AWS_SECRET_ACCESS_KEY), azureblob (AZURE_STORAGE_ACCOUNT, AZURE_STORAGE_KEY), gcsblob
#: (GOOGLE_APPLICATION_CREDENTIALS); Pulumi Cloud: PULUMI_ACCESS_TOKEN). Static keys, because
#: the agents cannot reach a node metadata endpoint (default-deny egress).
BACKEND_CREDENTIALS: dict[str, BackendCredential] = {
    "s3": BackendCredential(
        "backend-s3",
        "usernamePassword",
        ("aws-access-key-id", "aws-secret-access-key"),
        ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"),
    ),
    "azblob": BackendCredential(
        "backend-azblob",
        "usernamePassword",
        ("azure-storage-account", "azure-storage-key"),
        ("AZURE_STORAGE_ACCOUNT", "AZURE_STORAGE_KEY"),
    ),
    "gs": BackendCredential(
        "backend-gs", "file", ("google-credentials",), ("GOOGLE_APPLICATION_CREDENTIALS",)
    ),
    "cloud": BackendCredential(
        "pulumi-access-token", "string", ("pulumi-access-token",), ("PULUMI_ACCESS_TOKEN",)
    ),
}
#: Global variable naming the backend kind; the Jenkinsfiles pick the binding by it.
BACKEND_ENV = "APPSTACK_STATE_BACKEND"


def required_credential_keys(image_builder: bool, state_backend: str = "s3") -> list[str]:
    """Every key of the operator's CI Secret that JCasC reads: projected one by one into the
    controller (so a missing key stops the pod at start-up, naming it) and checked non-empty by
    the `check-credentials` init container."""
    keys = [*PIPELINE_CREDENTIALS, PROD_CREDENTIAL, SCM_USERNAME_KEY, SCM_TOKEN_KEY]
    keys += BACKEND_CREDENTIALS[state_backend].keys
    return [*keys, *REGISTRY_KEYS, *SIGNING_CREDENTIALS] if image_builder else keys
