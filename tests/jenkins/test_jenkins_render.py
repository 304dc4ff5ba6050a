"""JenkinsController under Pulumi's mocks: RBAC, restricted pods (controller, init container and
every agent template), protected JENKINS_HOME, the JCasC document, admin credentials, network
policies, monitoring objects, outputs, and nothing at all when disabled."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
import yaml

from appstack_grammar import parse_quantity
from components import config as config_model
from components import jenkins as jenkins_mod
from components.stack import deploy
from stackctl import mockruntime
from stackctl.render.stack import REDACTED, RenderResult, object_ref
from stackctl.render.stack import write as write_rendered
from tests.conftest import Render, base_raw, find, one, pod_spec
from tests.jenkins.helpers import (
    KUBE_API,
    MOCK_PASSWORD,
    NAMESPACE,
    agent_pods,
    casc,
    cloud,
    jenkins_objects,
    jenkins_raw,
    statefulset,
    templates,
    with_monitoring,
)

EXPECTED_RULES = {
    "pods": {"create", "delete", "get", "list", "watch", "patch", "update"},
    "pods/exec": {"create", "get"},
    "pods/log": {"get", "list", "watch"},
    "events": {"get", "list", "watch"},
}


@pytest.fixture
def prod(render: Render) -> RenderResult:
    return render(with_monitoring(jenkins_raw("prod")))


@pytest.fixture
def dev(render: Render) -> RenderResult:
    return render(jenkins_raw("dev"))


# --- RBAC ------------------------------------------------------------------------------------


def test_role_has_exactly_the_kubernetes_plugin_rules(prod: RenderResult) -> None:
    role = one(prod.objects, "Role")
    assert role["metadata"]["namespace"] == NAMESPACE
    granted: dict[str, set[str]] = {}
    for rule in role["rules"]:
        assert rule["apiGroups"] == [""]
        assert "*" not in rule["verbs"] and "*" not in rule["resources"]
        for resource in rule["resources"]:
            assert resource not in granted, f"{resource} granted twice"
            granted[resource] = set(rule["verbs"])
    assert granted == EXPECTED_RULES
    assert not any("secret" in r for r in granted)
    assert "pods/exec" in role["metadata"]["annotations"]["appstack.io/rbac-exception"]
    assert not find(prod.objects, "ClusterRole") and not find(prod.objects, "ClusterRoleBinding")


def test_role_is_bound_to_the_controller_only(prod: RenderResult) -> None:
    binding = one(prod.objects, "RoleBinding")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": one(prod.objects, "Role")["metadata"]["name"],
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "jenkins-controller", "namespace": NAMESPACE}
    ]


def test_only_the_controller_mounts_a_token(prod: RenderResult) -> None:
    accounts = {
        a["metadata"]["name"]: a for a in jenkins_objects(prod) if a["kind"] == "ServiceAccount"
    }
    assert accounts["jenkins-controller"]["automountServiceAccountToken"] is True
    assert accounts["jenkins-agent"]["automountServiceAccountToken"] is False
    spec = pod_spec(statefulset(prod))
    assert spec["serviceAccountName"] == "jenkins-controller"
    assert spec["automountServiceAccountToken"] is True
    for name, pod in agent_pods(prod).items():
        assert pod["spec"]["serviceAccountName"] == "jenkins-agent", name
        assert pod["spec"]["automountServiceAccountToken"] is False, name
        assert templates(prod)[name]["serviceAccount"] == "jenkins-agent"


# --- restricted pods -------------------------------------------------------------------------


def _pods(result: RenderResult) -> Iterator[tuple[str, dict[str, Any]]]:
    yield "controller", pod_spec(statefulset(result))
    for name, pod in agent_pods(result).items():
        yield f"agent:{name}", pod["spec"]


def _effective(container: Mapping[str, Any], pod: Mapping[str, Any], key: str) -> Any:
    value = (container.get("securityContext") or {}).get(key)
    return value if value is not None else (pod.get("securityContext") or {}).get(key)


@pytest.mark.parametrize("environment", config_model.environments())
def test_every_pod_and_container_is_restricted(render: Render, environment: str) -> None:
    result = render(jenkins_raw(environment))
    seen = []
    for where, spec in _pods(result):
        psc = spec["securityContext"]
        assert psc["runAsNonRoot"] is True, where
        assert psc["runAsUser"] >= 10000 and psc["runAsGroup"] >= 10000, where
        assert psc["fsGroup"] >= 10000, where
        assert psc["seccompProfile"] == {"type": "RuntimeDefault"}, where
        for key in ("hostNetwork", "hostPID", "hostIPC"):
            assert not spec.get(key), where
        for volume in spec.get("volumes", []):
            assert "hostPath" not in volume, where
        containers = spec["containers"] + spec.get("initContainers", [])
        for c in containers:
            label = f"{where}/{c['name']}"
            seen.append(label)
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False, label
            assert sc.get("privileged", False) is False, label
            assert sc["readOnlyRootFilesystem"] is True, label
            assert sc["capabilities"] == {"drop": ["ALL"]}, label
            assert _effective(c, spec, "runAsNonRoot") is True, label
            assert _effective(c, spec, "runAsUser") >= 10000, label
            assert _effective(c, spec, "seccompProfile") == {"type": "RuntimeDefault"}, label
            for side in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(c["resources"][side]), label
            assert c["imagePullPolicy"] == "Always", label
            assert not any("hostPort" in p for p in c.get("ports", [])), label
            assert ":" in c["image"] and not c["image"].endswith(":latest"), label
    assert seen == [
        "controller/jenkins",
        "controller/check-credentials",
        "controller/install-plugins",
        "agent:default/jnlp",
        "agent:pulumi/jnlp",
        "agent:pulumi/pulumi",
    ]


def test_writable_paths_are_emptydirs_or_the_home_volume(prod: RenderResult) -> None:
    spec = pod_spec(statefulset(prod))
    volumes = {v["name"]: v for v in spec["volumes"]}
    jenkins = spec["containers"][0]
    mounts = {m["mountPath"]: m for m in jenkins["volumeMounts"]}
    assert volumes[mounts["/var/jenkins_home"]["name"]]["persistentVolumeClaim"] == {
        "claimName": "jenkins-home"
    }
    for path in ("/tmp", "/var/jenkins_cache"):
        assert "emptyDir" in volumes[mounts[path]["name"]], path
    for path in ("/var/jenkins_config", "/run/secrets/jenkins"):
        assert mounts[path]["readOnly"] is True, path
    env = {e["name"]: e["value"] for e in jenkins["env"]}
    assert env["JENKINS_OPTS"] == "--webroot=/var/jenkins_cache/war"
    for name, pod in agent_pods(prod).items():
        agent_volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
        assert all("emptyDir" in v for v in agent_volumes.values()), name
        for c in pod["spec"]["containers"]:
            paths = {m["mountPath"] for m in c["volumeMounts"]}
            assert {"/tmp", "/home/jenkins", "/home/jenkins/agent"} <= paths, (name, c["name"])


def test_controller_statefulset(prod: RenderResult) -> None:
    sts = statefulset(prod)
    spec = sts["spec"]
    assert spec["replicas"] == 1
    headless = one(prod.objects, "Service", spec["serviceName"])
    assert headless["spec"]["clusterIP"] == "None"
    assert headless["spec"]["selector"] == spec["selector"]["matchLabels"]
    assert "volumeClaimTemplates" not in spec
    assert spec["selector"]["matchLabels"] == {
        "app.kubernetes.io/name": "jenkins",
        "app.kubernetes.io/instance": "prod",
    }
    jenkins = pod_spec(sts)["containers"][0]
    probes = [jenkins[p] for p in ("startupProbe", "livenessProbe", "readinessProbe")]
    for probe in probes:
        assert probe["httpGet"] == {"path": "/login", "port": "http"}
    assert jenkins["livenessProbe"] != jenkins["readinessProbe"]
    startup = jenkins["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 300
    env = {e["name"]: e.get("value") for e in jenkins["env"]}
    assert "-XX:MaxRAMPercentage=75" in env["JAVA_OPTS"].split()
    assert "-Djenkins.install.runSetupWizard=false" in env["JAVA_OPTS"].split()
    assert env["CASC_JENKINS_CONFIG"] == "/var/jenkins_config/jenkins.yaml"


def test_java_heap_follows_config(render: Render) -> None:
    result = render(jenkins_raw("dev", javaMaxRamPercentage=60))
    env = {e["name"]: e["value"] for e in pod_spec(statefulset(result))["containers"][0]["env"]}
    assert "-XX:MaxRAMPercentage=60" in env["JAVA_OPTS"].split()


def test_the_plugin_installer_is_sized_like_the_controller(prod: RenderResult) -> None:
    """jenkins-plugin-cli parses the whole update-center JSON in one JVM: the controller's heap
    share (the JVM default is 25% of the limit) of the controller's memory limit; as an init
    container it adds nothing to the pod's effective request while it stays within the
    controller's (core/v1: effective request = max(max over init containers, sum of
    containers))."""
    spec = pod_spec(statefulset(prod))
    (controller,) = spec["containers"]
    installer = next(c for c in spec["initContainers"] if c["name"] == "install-plugins")

    def heap(c: dict[str, Any]) -> list[str]:
        env = {e["name"]: e["value"] for e in c["env"]}
        return [o for o in env["JAVA_OPTS"].split() if o.startswith("-XX:MaxRAMPercentage=")]

    assert heap(installer) == heap(controller) and heap(controller)
    mem = {
        side: parse_quantity(installer["resources"][side]["memory"])
        for side in ("requests", "limits")
    }
    ctl = {
        side: parse_quantity(controller["resources"][side]["memory"])
        for side in ("requests", "limits")
    }
    assert mem["limits"] == ctl["limits"]
    assert mem["requests"] <= ctl["requests"]
    for c in spec["initContainers"]:
        for res in ("cpu", "memory"):
            assert parse_quantity(c["resources"]["requests"][res]) <= parse_quantity(
                controller["resources"]["requests"][res]
            ), (c["name"], res)


def test_plugins_are_installed_from_the_pinned_file(prod: RenderResult) -> None:
    spec = pod_spec(statefulset(prod))
    check, init = spec["initContainers"]  # credentials first (test_credentials_startup.py)
    assert check["name"] == "check-credentials"
    assert init["name"] == "install-plugins"
    assert init["image"] == spec["containers"][0]["image"]
    assert [*init["command"], *init["args"]] == [
        "jenkins-plugin-cli",
        "--war",
        "/usr/share/jenkins/jenkins.war",
        "--plugin-file",
        "/plugins/plugins.txt",
        "--plugin-download-directory",
        "/var/jenkins_home/plugins",
        "--latest",
        "false",
        "--verbose",
    ]
    volumes = {v["name"]: v for v in spec["volumes"]}
    plugins_map = one(prod.objects, "ConfigMap", volumes["plugin-list"]["configMap"]["name"])
    assert plugins_map["immutable"] is True
    lines = plugins_map["data"]["plugins.txt"].split()
    assert lines == jenkins_mod.plugin_lines()
    names = {line.split(":")[0] for line in lines}
    assert {"kubernetes", "job-dsl", "git", "configuration-as-code", "timestamper"} <= names
    assert {"credentials-binding", "prometheus", "role-strategy", "github-branch-source"} <= names


@pytest.mark.parametrize(
    "text",
    ["kubernetes\n", "kubernetes:latest\n", "git:5.10.1\nkubernetes:\n", "https://x/y.hpi\n"],
)
def test_plugin_file_rejects_unpinned_lines(text: str) -> None:
    with pytest.raises(ValueError, match="exact 'name:version' pin"):
        jenkins_mod.plugin_lines(text)


def test_config_maps_are_content_named(render: Render) -> None:
    def names(result: RenderResult) -> dict[str, str]:
        volumes = {v["name"]: v for v in pod_spec(statefulset(result))["volumes"]}
        return {k: volumes[k]["configMap"]["name"] for k in ("casc", "plugin-list")}

    base = names(render(jenkins_raw("dev")))
    changed = names(render(jenkins_raw("dev", cloud={"containerCap": 3})))
    assert base["casc"].startswith("jenkins-casc-")
    assert changed["casc"] != base["casc"]  # a JCasC change rolls the controller
    assert changed["plugin-list"] == base["plugin-list"]


# --- JENKINS_HOME ----------------------------------------------------------------------------


def test_home_is_protected_and_retained_in_prod(prod: RenderResult) -> None:
    claim = one(prod.objects, "PersistentVolumeClaim", "jenkins-home")
    assert claim["spec"]["resources"]["requests"]["storage"] == "50Gi"
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    options = prod.options["PersistentVolumeClaim/jenkins/jenkins-home"]
    assert options["protect"] is True
    assert options["retain_on_delete"] is True
    assert options["parent"] is True


def test_home_is_not_protected_in_dev(dev: RenderResult) -> None:
    claim = one(dev.objects, "PersistentVolumeClaim", "jenkins-home")
    assert claim["spec"]["resources"]["requests"]["storage"] == "8Gi"
    options = dev.options["PersistentVolumeClaim/jenkins/jenkins-home"]
    assert not options.get("protect")
    assert not options.get("retain_on_delete")


def test_home_protection_and_storage_class_follow_config(render: Render) -> None:
    result = render(jenkins_raw("dev", home={"protect": True, "storageClassName": "fast-ssd"}))
    claim = one(result.objects, "PersistentVolumeClaim", "jenkins-home")
    assert claim["spec"]["storageClassName"] == "fast-ssd"
    options = result.options["PersistentVolumeClaim/jenkins/jenkins-home"]
    assert options["protect"] is True and options["retain_on_delete"] is True


def test_every_jenkins_resource_is_a_child_of_the_component(prod: RenderResult) -> None:
    for obj in jenkins_objects(prod):
        ref = object_ref(obj)
        assert prod.options[ref].get("parent") is True, ref
    components = [r for r in prod.resources if r.type == "appstack:jenkins:JenkinsController"]
    assert len(components) == 1


# --- JCasC -----------------------------------------------------------------------------------


def test_casc_security(prod: RenderResult) -> None:
    doc = casc(prod)
    jenkins = doc["jenkins"]
    assert jenkins["numExecutors"] == 0
    assert jenkins["securityRealm"]["local"]["allowsSignup"] is False
    assert set(jenkins["authorizationStrategy"]) == {"roleBased"}
    assert jenkins["crumbIssuer"] == {"standard": {"excludeClientIPFromCrumb": False}}
    assert jenkins["slaveAgentPort"] == -1  # no TCP agent listener: JNLP is unreachable
    # Both are deprecated in Jenkins 2.528 (JCasC rejects them and the controller would not
    # start): agent protocols are no longer configurable and remoting security is always on.
    assert "agentProtocols" not in jenkins
    assert "remotingSecurity" not in jenkins
    assert doc["security"]["apiToken"]["creationOfLegacyTokenEnabled"] is False
    assert doc["security"]["apiToken"]["tokenGenerationOnCreationEnabled"] is False
    user = jenkins["securityRealm"]["local"]["users"][0]
    assert user["password"] == "${readFile:/run/secrets/jenkins/admin-password}"
    assert user["id"] == "${readFile:/run/secrets/jenkins/admin-username}"


def test_casc_cloud_from_config(render: Render) -> None:
    result = render(jenkins_raw("dev", cloud={"containerCap": 4, "idleMinutes": 12}))
    k8s_cloud = cloud(result)
    assert k8s_cloud["namespace"] == NAMESPACE
    assert k8s_cloud["jenkinsUrl"] == "http://jenkins.jenkins.svc:8080/"
    assert k8s_cloud["webSocket"] is True
    assert "jenkinsTunnel" not in k8s_cloud
    assert k8s_cloud["containerCapStr"] == "4"
    assert k8s_cloud["podRetention"] == "never"
    by_name = templates(result)
    assert set(by_name) == {"default", "pulumi"}
    assert by_name["pulumi"]["label"] == "pulumi"
    for name, template in by_name.items():
        # idleMinutes only where a pod can be reused: `default`; `pulumi` is inherited per
        # build (tests/jenkins/test_agent_retention.py)
        assert template["idleMinutes"] == (12 if name == "default" else 0), name
        assert template["podRetention"] == "never", name
        assert template["namespace"] == NAMESPACE, name
        assert template["yamlMergeStrategy"] == "override", name


def test_agent_templates_carry_the_configured_images(render: Render) -> None:
    result = render(
        jenkins_raw(
            "dev",
            agentImage="jenkins/inbound-agent:3355.v388858a_47b_33-3-jdk21",
            pulumiAgentImage="registry.example.com/ci/pulumi-tools:1.2.3",
            pulumiAgentResources={"limits": {"memory": "3Gi"}},
        )
    )
    pods = agent_pods(result)
    default = {c["name"]: c for c in pods["default"]["spec"]["containers"]}
    pulumi = {c["name"]: c for c in pods["pulumi"]["spec"]["containers"]}
    assert set(default) == {"jnlp"}
    assert set(pulumi) == {"jnlp", "pulumi"}
    assert default["jnlp"]["image"] == "jenkins/inbound-agent:3355.v388858a_47b_33-3-jdk21"
    assert pulumi["pulumi"]["image"] == "registry.example.com/ci/pulumi-tools:1.2.3"
    assert pulumi["pulumi"]["resources"]["limits"]["memory"] == "3Gi"
    labels = pods["pulumi"]["metadata"]["labels"]
    assert labels["app.kubernetes.io/name"] == "jenkins-agent"


def test_location_url_is_the_ingress_host_when_there_is_one(render: Render) -> None:
    result = render(
        jenkins_raw(
            "dev",
            ingress={"enabled": True, "host": "ci.example.com", "tlsSecretName": "ci-tls"},
        )
    )
    assert casc(result)["unclassified"]["location"]["url"] == "https://ci.example.com/"
    ingress = one(result.objects, "Ingress", "jenkins")
    assert ingress["metadata"]["namespace"] == NAMESPACE
    closed, ui = ingress["spec"]["rules"][0]["http"]["paths"]
    assert (ui["path"], ui["backend"]["service"]) == (
        "/",
        {"name": "jenkins", "port": {"name": "http"}},
    )
    # /prometheus goes nowhere (test_metrics_exposure.py)
    assert (closed["path"], closed["backend"]["service"]["name"]) == (
        "/prometheus",
        "jenkins-closed",
    )


# --- admin credentials -----------------------------------------------------------------------


def _all_env(result: RenderResult) -> list[dict[str, Any]]:
    env = []
    for _, spec in _pods(result):
        for c in spec["containers"] + spec.get("initContainers", []):
            env += c.get("env", []) + c.get("envFrom", [])
    return env


def test_admin_password_is_a_file_never_an_env_var(prod: RenderResult) -> None:
    for entry in _all_env(prod):
        assert "secretKeyRef" not in json.dumps(entry), entry
        assert "secretRef" not in json.dumps(entry), entry
        assert "PASSWORD" not in str(entry.get("name", "")).upper(), entry
    spec = pod_spec(statefulset(prod))
    volumes = {v["name"]: v for v in spec["volumes"]}
    secret = volumes["admin"]["secret"]
    assert secret["secretName"] == "jenkins-admin"
    assert {i["path"] for i in secret["items"]} == {"admin-username", "admin-password"}
    rendered_secret = one(prod.objects, "Secret", "jenkins-admin")
    assert set(rendered_secret["stringData"]) == {"username", "password"}
    assert all(v == REDACTED for v in rendered_secret["stringData"].values())


def test_admin_password_is_generated_and_never_rendered_in_clear(
    prod: RenderResult, tmp_path: Any
) -> None:
    passwords = [
        r for r in prod.resources if r.type == "random:index/randomPassword:RandomPassword"
    ]
    assert len(passwords) == 1
    assert passwords[0].inputs["length"] >= 24
    write_rendered(prod, tmp_path)
    for path in tmp_path.rglob("*.yaml"):
        assert MOCK_PASSWORD not in path.read_text(), path


def test_existing_admin_secret_is_used_as_is(render: Render) -> None:
    result = render(jenkins_raw("dev", admin={"existingSecret": "ci-admin"}))
    assert not [r for r in result.resources if r.type.startswith("random:")]
    assert not [o for o in jenkins_objects(result) if o["kind"] == "Secret"]
    volumes = {v["name"]: v for v in pod_spec(statefulset(result))["volumes"]}
    assert volumes["admin"]["secret"]["secretName"] == "ci-admin"


# --- network policies ------------------------------------------------------------------------


def _policies(result: RenderResult) -> dict[str, dict[str, Any]]:
    return {
        p["metadata"]["name"]: p for p in jenkins_objects(result) if p["kind"] == "NetworkPolicy"
    }


def test_network_policies(prod: RenderResult) -> None:
    policies = _policies(prod)
    assert set(policies) == {
        "default-deny-all",
        "allow-dns-egress",
        "jenkins-controller",
        "jenkins-agent",
    }
    controller = policies["jenkins-controller"]["spec"]
    (ui,) = controller["ingress"]
    assert ui["ports"] == [{"port": 8080, "protocol": "TCP"}]
    assert {
        "podSelector": {
            "matchLabels": {
                "app.kubernetes.io/name": "jenkins-agent",
                "app.kubernetes.io/instance": "prod",
            }
        }
    } in ui["from"]
    assert {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}
    } in ui["from"]
    api, plugins = controller["egress"]
    assert api["to"] == [{"ipBlock": {"cidr": KUBE_API}}]
    assert {p["port"] for p in api["ports"]} == {443, 6443}
    assert plugins["ports"] == [{"port": 443, "protocol": "TCP"}]
    agents = policies["jenkins-agent"]["spec"]
    assert agents["policyTypes"] == ["Ingress", "Egress"]
    assert "ingress" not in agents
    to_controller, out, api_server, web = agents["egress"]
    assert to_controller["ports"] == [{"port": 8080, "protocol": "TCP"}]
    # 443 (git, registries), the API ports of the clusters agents deploy to, and 80: the port
    # of the prod app's LoadBalancer, where `stackctl verify` reads its health URL.
    assert out["ports"] == [{"port": p, "protocol": "TCP"} for p in (80, 443, 6443)]
    assert api_server == api  # this cluster's API server, as for the controller
    assert web["ports"] == [{"port": 8080, "protocol": "TCP"}]  # the app's pods (kube-proxy)
    assert not any(
        p.get("port") == 50000
        for pol in policies.values()
        for rule in pol["spec"].get("ingress", [])
        for p in rule.get("ports", [])
    )


def test_exposure_rules_follow_the_service(render: Render) -> None:
    lb = render(
        jenkins_raw(
            "dev",
            service={"type": "LoadBalancer", "loadBalancerSourceRanges": ["203.0.113.0/24"]},
            ingress={"enabled": True, "host": "ci.example.com"},
            agentEgressCidrs=["198.51.100.0/24"],
            pluginSiteCidrs=["198.51.100.10/32"],
        )
    )
    svc = one(lb.objects, "Service", "jenkins")
    assert svc["spec"]["type"] == "LoadBalancer"
    assert svc["spec"]["loadBalancerSourceRanges"] == ["203.0.113.0/24"]
    rules = _policies(lb)["jenkins-controller"]["spec"]["ingress"]
    assert {"ports": [{"port": 8080, "protocol": "TCP"}]} in rules  # LoadBalancer: any source
    assert any(
        r.get("from")
        == [
            {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}
        ]
        for r in rules
    )
    egress = _policies(lb)["jenkins-controller"]["spec"]["egress"]
    assert egress[1]["to"] == [{"ipBlock": {"cidr": "198.51.100.10/32"}}]
    agent_out = _policies(lb)["jenkins-agent"]["spec"]["egress"][1]
    assert agent_out["to"] == [{"ipBlock": {"cidr": "198.51.100.0/24"}}]
    clusterip = one(render(jenkins_raw("dev")).objects, "Service", "jenkins")
    assert clusterip["spec"]["type"] == "ClusterIP"
    assert "loadBalancerSourceRanges" not in clusterip["spec"]


# --- monitoring ------------------------------------------------------------------------------


def test_monitoring_objects_only_with_monitoring(prod: RenderResult, dev: RenderResult) -> None:
    monitor = one(prod.objects, "ServiceMonitor", "jenkins")
    assert monitor["metadata"]["namespace"] == NAMESPACE
    (endpoint,) = monitor["spec"]["endpoints"]
    assert (endpoint["port"], endpoint["path"]) == ("http", "/prometheus/")
    # Selects the UI Service only (not the headless one: no double scrape).
    selected = [
        s
        for s in find(prod.objects, "Service")
        if s["metadata"].get("namespace") == NAMESPACE
        and all(
            s["metadata"]["labels"].get(k) == v
            for k, v in monitor["spec"]["selector"]["matchLabels"].items()
        )
    ]
    assert [s["metadata"]["name"] for s in selected] == ["jenkins"]
    rule = one(prod.objects, "PrometheusRule", "jenkins")
    alerts = {r["alert"] for g in rule["spec"]["groups"] for r in g["rules"]}
    assert alerts == {
        "JenkinsControllerDown",
        "JenkinsBuildQueueLong",
        "JenkinsNoExecutorsAvailable",
    }
    assert not [
        o for o in jenkins_objects(dev) if o["kind"] in ("ServiceMonitor", "PrometheusRule")
    ]


# --- disabled / outputs ----------------------------------------------------------------------


@pytest.mark.parametrize("environment", config_model.environments())
def test_disabled_renders_no_jenkins_object(render: Render, environment: str) -> None:
    raw = with_monitoring(base_raw(environment))
    raw["jenkins"] = {"enabled": False}
    result = render(raw)
    assert jenkins_objects(result) == []
    assert not [o for o in result.objects if "jenkins" in yaml.safe_dump(o["metadata"])]
    assert not [r for r in result.resources if r.type.startswith(("appstack:jenkins", "random:"))]


def _outputs(raw: Mapping[str, Any]) -> dict[str, Any]:
    cfg = config_model.load(raw)

    def program() -> Any:
        out = deploy(cfg)
        return {"jenkins_url": out.jenkins_url}

    return mockruntime.capture(program, project="appstack", stack=cfg.environment).outputs


def test_jenkins_url_output_always_exists() -> None:
    assert _outputs(base_raw("dev")) == {"jenkins_url": ""}
    assert _outputs(jenkins_raw("dev")) == {"jenkins_url": "http://jenkins.jenkins.svc:8080/"}
    with_ingress = jenkins_raw("dev", ingress={"enabled": True, "host": "ci.example.com"})
    assert _outputs(with_ingress) == {"jenkins_url": "http://ci.example.com/"}
