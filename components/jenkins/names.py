"""Names, paths and ports shared by the parts of the Jenkins component (one place, as the Helm
chart's `_helpers.tpl`)."""

from __future__ import annotations

from pathlib import Path

APP = "jenkins"
AGENT_APP = "jenkins-agent"
HTTP_PORT = 8080
REPO_JENKINS_DIR = Path(__file__).resolve().parent.parent.parent / "jenkins"
PLUGINS_FILE = REPO_JENKINS_DIR / "plugins.txt"
PLUGINS_METADATA_FILE = REPO_JENKINS_DIR / "plugins-metadata.yaml"

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
    "kubeconfig-prod": "file",
}
SCM_USERNAME_KEY = "scm-username"
SCM_TOKEN_KEY = "scm-token"
