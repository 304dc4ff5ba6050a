"""JenkinsController: a Jenkins controller with dynamic Kubernetes agents, in its own namespace.

Children (all `parent=self`): Namespace (Pod Security "restricted"), default-deny + DNS
NetworkPolicies and the Jenkins allowances, controller and agent ServiceAccounts, the Role and
RoleBinding of the kubernetes plugin, the admin Secret (generated), the JCasC and plugins
ConfigMaps (content-named: a change rolls the controller), the JENKINS_HOME PersistentVolumeClaim,
a headless governing Service and the UI Service, the controller StatefulSet, an optional Ingress,
and with monitoring on a ServiceMonitor and a PrometheusRule (components/jenkins/alerts.py).
One module per part: names (paths, ports, credential IDs), context (shared inputs), identity,
storage, configuration + casc + agents + agent_containers (the plugin pins they install:
components/config/jenkins_plugins.py), workload, exposure, policies, monitoring + alerts, the
image builder's namespace (builder), controller (the component, a table of contents).
May import: components.config, components.kube (never components.app: Jenkins is not an app).

Design decisions:

* **Agents connect over WebSocket** (`webSocket: true` in the cloud, `slaveAgentPort: -1`: the
  TCP agent listener is off, so no JNLP protocol is reachable at all). Agents reach the
  controller on its HTTP port 8080 only, through the same Service as the UI: no agent listener
  on 50000, hence no second Service, no second NetworkPolicy port and no protocol to harden.
  The cost (HTTP framing) is negligible for build traffic.
* **JENKINS_HOME is a standalone PersistentVolumeClaim**, mounted by the StatefulSet, not a
  `volumeClaimTemplates` entry: claims from a template are created by the StatefulSet controller,
  outside Pulumi's state, so Pulumi could neither `protect` them nor `retain_on_delete` them.
  With `home.protect` (required in prod) the claim carries both options: `pulumi destroy` or a
  replace of the component cannot delete the build history. The StatefulSet (1 replica, headless
  governing Service) still gives the controller a stable identity and stop-before-start updates,
  which a ReadWriteOnce volume needs (a Deployment surge would deadlock on the volume).
* **UID/GID 10000** (config `security`, >= 10000): the jenkins/jenkins and inbound-agent images
  run as uid 1000; both work under an arbitrary UID as long as what they write is writable, so the
  pods run as 10000 with `fsGroup` 10000 (JENKINS_HOME becomes group-writable, `OnRootMismatch`)
  and emptyDirs for every other path the processes write: /tmp, the WAR extraction directory
  (`--webroot=/var/jenkins_cache/war`), and on agents /home/jenkins and the workspace.
* **Only the controller mounts a service-account token**: it calls the Kubernetes API to create,
  watch and delete agent pods (kubernetes plugin, in-cluster config). Agent pods run under their
  own ServiceAccount without a token; they talk to the controller only. The StatefulSet carries a
  documented checkov skip for CKV_K8S_38 for that reason.
* **RBAC** is one namespaced Role with exactly the verbs the kubernetes plugin needs (SECURITY.md),
  bound to the controller's ServiceAccount; no secrets, no wildcards. `pods/exec` (used by
  `container('...') { sh ... }` steps) is an accepted exception, documented on the Role: agents run
  in the Jenkins namespace, where nothing but Jenkins' own pods live.
* **Admin password** comes from a Secret (generated with pulumi_random, or `admin.existingSecret`)
  mounted as files under /run/secrets/jenkins; JCasC reads it with `${readFile:...}`. It is never
  an environment variable (CKV_K8S_35) and never rendered in clear.
* **Egress**: DNS (baseline), the Kubernetes API on `kubeApiPorts` (default 443 and 6443) of
  `kubeApiCidrs` (required in prod) and the plugin update site and SCM on 443
  (`pluginSiteCidrs`) for the controller pod only; agents reach the controller on 8080 and
  `agentEgressCidrs` on 443 plus `agentApiPorts` (git, pip, registries, the API servers they
  deploy to). An empty CIDR list stands for 0.0.0.0/0 on those ports only
  (config.JENKINS_DEFAULT_CIDR). Every path the pipeline itself uses is derived from config
  (policies.py): agents reach the API server (kubeApiCidrs x kubeApiPorts), this stack's apps
  where `stackctl verify` reads them (the pods' port, and a LoadBalancer's or Ingress's port on
  agentEgressCidrs) and other stacks' apps in `pipeline.verifyTargets`; whose apps admit the
  agents through appstack:network.pipelineAgents. tests/jenkins/test_pipeline_paths.py judges
  each path with the policy/netpol evaluator over the renders.
* **Plugins are exactly the pins**: jenkins/plugins.txt lists every plugin and transitive
  dependency, checked against jenkins/plugins-metadata.yaml (upstream pom.xml data) by the config
  model and tests/jenkins/test_plugins.py; an init container installs them into an emptyDir
  mounted over JENKINS_HOME/plugins, fresh on every start.
* **Authorization**: role-strategy roles (admin = the admin Secret's user only; prod deployers;
  developers = every logged-in user); the prod `input` submitter list comes from JCasC
  (APPSTACK_PROD_APPROVERS). Pipeline credentials and the multibranch job are JCasC too, with
  values read from the operator's Secret files.
* **No PodDisruptionBudget**: with one replica a PDB either blocks every node drain
  (minAvailable 1) or allows everything; a drain restarts the controller, which is acceptable for
  CI (durable pipelines resume; connected agents reconnect over WebSocket).
* **Rollout wait**: the StatefulSet and the UI Service get 20 minute create/update timeouts,
  because the first boot downloads the plugins before Jenkins starts (exposure.SERVICE_TIMEOUTS
  cites the provider's await).
* **Deletion guard**: with `home.protect` the Namespace is protected and retained like the claim,
  since deleting the Namespace would delete the claim with it.
"""

from components.config.jenkins_plugins import plugin_lines, plugin_pins
from components.jenkins.agents import agent_pod, agent_pod_labels
from components.jenkins.casc import casc_document, casc_yaml, job_dsl, public_url, service_url
from components.jenkins.configuration import java_opts
from components.jenkins.context import VerifiedApp
from components.jenkins.controller import JenkinsController, JenkinsControllerArgs
from components.jenkins.identity import AGENT_RBAC_RULES, PODS_EXEC_EXCEPTION
from components.jenkins.names import AGENT_APP, APP, HTTP_PORT, PIPELINE_CREDENTIALS
from components.jenkins.workload import scanner_skips

__all__ = [
    "AGENT_APP",
    "AGENT_RBAC_RULES",
    "APP",
    "HTTP_PORT",
    "PIPELINE_CREDENTIALS",
    "PODS_EXEC_EXCEPTION",
    "JenkinsController",
    "JenkinsControllerArgs",
    "VerifiedApp",
    "agent_pod",
    "agent_pod_labels",
    "casc_document",
    "casc_yaml",
    "java_opts",
    "job_dsl",
    "plugin_lines",
    "plugin_pins",
    "public_url",
    "scanner_skips",
    "service_url",
]
