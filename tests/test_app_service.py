"""Rules every rendered app stack meets, asserted on the objects the program registers."""

from __future__ import annotations

from typing import Any

import pytest

from components.config import deep_merge
from components.kube import labels
from tests.conftest import (
    DIGEST_IMAGE,
    Render,
    base_raw,
    find,
    load_error,
    one,
    pod_spec,
    with_app,
)

PROD = base_raw("prod")
DEV = base_raw("dev")


def app_container(deployment: dict[str, Any]) -> dict[str, Any]:
    container: dict[str, Any] = pod_spec(deployment)["containers"][0]
    return container


# --- zero-downtime rollout -------------------------------------------------------------------


def test_prod_web_deployment_never_has_max_unavailable_above_zero(render: Render) -> None:
    strategy = one(render(PROD).objects, "Deployment", "web")["spec"]["strategy"]
    assert strategy["type"] == "RollingUpdate"
    assert strategy["rollingUpdate"]["maxUnavailable"] == 0
    assert strategy["rollingUpdate"]["maxSurge"] not in (0, "0%")


def test_deployment_sets_min_ready_progress_deadline_and_history(render: Render) -> None:
    spec = one(render(PROD).objects, "Deployment", "web")["spec"]
    assert spec["minReadySeconds"] == 10  # prod environment default
    assert spec["progressDeadlineSeconds"] > spec["minReadySeconds"]
    assert spec["revisionHistoryLimit"] == 5


def test_prestop_sleep_is_shorter_than_the_grace_period(render: Render) -> None:
    deployment = one(render(PROD).objects, "Deployment", "web")
    sleep = app_container(deployment)["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert 0 < sleep < pod_spec(deployment)["terminationGracePeriodSeconds"]


def test_replicas_are_left_to_the_hpa_and_drift_on_them_is_ignored(render: Render) -> None:
    result = render(PROD)
    deployment = one(result.objects, "Deployment", "web")
    assert "replicas" not in deployment["spec"]
    assert result.options["Deployment/shop/web"]["ignore_changes"] == ["spec.replicas"]


def test_without_hpa_the_deployment_owns_its_replicas(render: Render) -> None:
    result = render(base_raw(replicas=2))
    assert one(result.objects, "Deployment", "web")["spec"]["replicas"] == 2
    assert find(result.objects, "HorizontalPodAutoscaler") == []
    assert "ignore_changes" not in result.options["Deployment/shop/web"]


def test_pods_spread_across_nodes_and_in_prod_across_zones(render: Render) -> None:
    prod = pod_spec(one(render(PROD).objects, "Deployment", "web"))["topologySpreadConstraints"]
    dev = pod_spec(one(render(DEV).objects, "Deployment", "web"))["topologySpreadConstraints"]
    assert [c["topologyKey"] for c in prod] == [
        "kubernetes.io/hostname",
        "topology.kubernetes.io/zone",
    ]
    assert {c["whenUnsatisfiable"] for c in prod} == {"DoNotSchedule"}
    assert [c["topologyKey"] for c in dev] == ["kubernetes.io/hostname"]
    for constraint in prod:
        assert constraint["labelSelector"]["matchLabels"] == labels.selector_labels("web", "prod")


# --- probes and resources --------------------------------------------------------------------


def test_probes_come_from_config_and_liveness_differs_from_readiness(render: Render) -> None:
    raw = base_raw(probes={"readiness": {"path": "/ready"}, "liveness": {"path": "/alive"}})
    container = app_container(one(render(raw).objects, "Deployment", "web"))
    assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/alive", "port": "http"}
    assert container["startupProbe"]["httpGet"]["path"] == "/health"
    assert container["livenessProbe"] != container["readinessProbe"]


def test_default_probe_paths_are_health_and_health_ready(render: Render) -> None:
    container = app_container(one(render(DEV).objects, "Deployment", "web"))
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"


@pytest.mark.parametrize("raw", [PROD, DEV], ids=["prod", "dev"])
def test_a_crashed_container_leaves_its_last_output_as_its_termination_message(
    render: Render, raw: dict[str, Any]
) -> None:
    # core/v1 Container: only FallbackToLogsOnError has the kubelet copy the log's tail into
    # lastState.terminated.message (the app writes nothing to /dev/termination-log), which is
    # what `stackctl deploy` quotes for a version that crashes before it is ready
    container = app_container(one(render(raw).objects, "Deployment", "web"))
    assert container["terminationMessagePolicy"] == "FallbackToLogsOnError"


def test_requests_and_limits_follow_the_environment_defaults(render: Render) -> None:
    prod = app_container(one(render(PROD).objects, "Deployment", "web"))["resources"]
    dev = app_container(one(render(DEV).objects, "Deployment", "web"))["resources"]
    assert prod["limits"]["memory"] == "512Mi" and dev["limits"]["memory"] == "128Mi"
    for res in (prod, dev):
        assert set(res["requests"]) == set(res["limits"]) == {"cpu", "memory", "ephemeral-storage"}


# --- pod security ----------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [PROD, DEV], ids=["prod", "dev"])
def test_every_pod_meets_the_restricted_profile(render: Render, raw: dict[str, Any]) -> None:
    spec = pod_spec(one(render(raw).objects, "Deployment", "web"))
    pod_ctx = spec["securityContext"]
    assert pod_ctx["runAsNonRoot"] is True and pod_ctx["runAsUser"] >= 10000
    assert pod_ctx["runAsGroup"] >= 10000 and pod_ctx["seccompProfile"]["type"] == "RuntimeDefault"
    assert spec["automountServiceAccountToken"] is False
    assert spec["serviceAccountName"] == "web"
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        assert not spec.get(key)
    for container in spec["containers"]:
        ctx = container["securityContext"]
        assert ctx["allowPrivilegeEscalation"] is False and ctx["privileged"] is False
        assert ctx["readOnlyRootFilesystem"] is True
        assert ctx["capabilities"] == {"drop": ["ALL"]}
        assert container["imagePullPolicy"] == "Always"
        assert all("hostPort" not in p for p in container["ports"])
    assert {v["name"] for v in spec["volumes"]} == {"tmp", "secrets"}
    tmp = next(v for v in spec["volumes"] if v["name"] == "tmp")
    assert tmp["emptyDir"]["sizeLimit"] == "64Mi"


def test_service_account_never_automounts_a_token(render: Render) -> None:
    account = one(render(DEV).objects, "ServiceAccount", "web")
    assert account["automountServiceAccountToken"] is False


# --- config and secrets ----------------------------------------------------------------------


def test_config_map_is_immutable_and_named_by_its_content(render: Render) -> None:
    before = render(base_raw(env={"LOG_LEVEL": "info"}))
    after = render(base_raw(env={"LOG_LEVEL": "debug"}))
    old, new = one(before.objects, "ConfigMap"), one(after.objects, "ConfigMap")
    assert old["immutable"] is True
    assert old["metadata"]["name"] != new["metadata"]["name"]
    assert new["data"]["LOG_LEVEL"] == "debug"


def test_a_config_change_rolls_the_pods(render: Render) -> None:
    def env_from(raw: dict[str, Any]) -> Any:
        return app_container(one(render(raw).objects, "Deployment", "web"))["envFrom"]

    assert env_from(base_raw(env={"A": "1"})) != env_from(base_raw(env={"A": "2"}))


def test_config_map_carries_the_derived_ports_and_the_pod_its_own_version(
    render: Render,
) -> None:
    deployment = one(render(base_raw(port=8081, metricsPort=9191)).objects, "Deployment")
    data = one(render(base_raw(port=8081, metricsPort=9191)).objects, "ConfigMap")["data"]
    assert data["PORT"] == "8081" and data["METRICS_PORT"] == "9191"
    assert "APP_VERSION" not in data  # a bump leaves the ConfigMap alone
    # APP_VERSION through the downward API: a fieldRef the kubelet resolves from the pod's
    # labels (core/v1 ObjectFieldSelector: `metadata.labels['<KEY>']`), here the image tag
    (env,) = app_container(deployment)["env"]
    path = env["valueFrom"]["fieldRef"]["fieldPath"]
    assert env["name"] == "APP_VERSION" and path == "metadata.labels['app.kubernetes.io/version']"
    assert deployment["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/version"] == (
        "1.4.2"
    )


def test_secret_values_are_mounted_as_files_and_never_rendered_in_clear(render: Render) -> None:
    raw = {**DEV, "secrets": {"web": {"API_TOKEN": "s3cr3t-value"}}}
    result = render(raw)
    secret = one(result.objects, "Secret", "web-secrets")
    assert secret["data"] == {"API_TOKEN": "<redacted>"}
    assert "s3cr3t-value" not in repr(result.objects)
    container = app_container(one(result.objects, "Deployment", "web"))
    assert all("secretKeyRef" not in e.get("valueFrom", {}) for e in container.get("env", []))
    mount = next(m for m in container["volumeMounts"] if m["name"] == "secrets")
    assert mount == {"mountPath": "/var/run/secrets/appstack", "name": "secrets", "readOnly": True}


# --- service ---------------------------------------------------------------------------------


def test_prod_service_is_a_load_balancer_limited_to_its_source_ranges(render: Render) -> None:
    service = one(render(PROD).objects, "Service", "web")
    assert service["spec"]["type"] == "LoadBalancer"
    assert service["spec"]["loadBalancerSourceRanges"] == ["203.0.113.0/24"]
    assert [p["name"] for p in service["spec"]["ports"]] == ["http"]


def test_metrics_are_only_on_a_cluster_ip_service(render: Render) -> None:
    metrics = one(render(PROD).objects, "Service", "web-metrics")
    assert metrics["spec"]["type"] == "ClusterIP"
    assert metrics["spec"]["ports"] == [
        {"name": "metrics", "port": 9090, "protocol": "TCP", "targetPort": "metrics"}
    ]


def test_session_affinity_is_client_ip_with_timeout_when_enabled(render: Render) -> None:
    raw = base_raw(service={"sessionAffinity": {"enabled": True, "timeoutSeconds": 600}})
    spec = one(render(raw).objects, "Service", "web")["spec"]
    assert spec["sessionAffinity"] == "ClientIP"
    assert spec["sessionAffinityConfig"] == {"clientIP": {"timeoutSeconds": 600}}
    plain = one(render(DEV).objects, "Service", "web")["spec"]
    assert plain["sessionAffinity"] == "None" and "sessionAffinityConfig" not in plain


def test_selectors_use_only_stable_labels(render: Render) -> None:
    objects = render(PROD).objects
    stable = labels.selector_labels("web", "prod")
    assert one(objects, "Deployment", "web")["spec"]["selector"]["matchLabels"] == stable
    assert one(objects, "Service", "web")["spec"]["selector"] == stable
    assert one(objects, "PodDisruptionBudget", "web")["spec"]["selector"]["matchLabels"] == stable
    template_labels = one(objects, "Deployment", "web")["spec"]["template"]["metadata"]["labels"]
    assert template_labels[labels.VERSION] == "1.4.2"
    assert labels.VERSION not in stable


def test_outputs_carry_the_load_balancer_address_or_cluster_dns(render: Render) -> None:
    prod = render(PROD).outputs
    dev = render(DEV).outputs
    assert prod["addresses"]["web"] == "web.lb.mock.invalid"  # the mock's LB hostname
    assert dev["addresses"]["web"] == "web.shop.svc.cluster.local:80"
    assert prod["services"] == {"web": "web"} and prod["namespace"] == "shop"


# --- autoscaling and disruption budget -------------------------------------------------------


def test_hpa_scales_up_fast_and_down_conservatively(render: Render) -> None:
    hpa = one(render(PROD).objects, "HorizontalPodAutoscaler", "web")
    assert hpa["apiVersion"] == "autoscaling/v2"
    behavior = hpa["spec"]["behavior"]
    up = behavior["scaleUp"]
    assert up["stabilizationWindowSeconds"] == 0
    assert {"type": "Percent", "value": 100, "periodSeconds": 15} in up["policies"]
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] == 300
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "web",
    }


# kubernetes pkg/apis/autoscaling/validation/validation.go (v1.36.3): a scaling rule's
# stabilizationWindowSeconds must be >= 0 and <= MaxStabilizationWindowSeconds, 3600.
HPA_MAX_STABILIZATION_WINDOW = 3600


@pytest.mark.parametrize("seconds", [0, 30, HPA_MAX_STABILIZATION_WINDOW])
def test_hpa_scale_down_window_is_configurable_within_the_api_range(
    render: Render, seconds: int
) -> None:
    """`autoscaling.scaleDownStabilizationSeconds` becomes the HPA's scale-down window (what the
    e2e stacks shorten to see a scale-in); the scale-up rules and the scale-down policy stay."""
    raw = deep_merge(
        PROD, {"apps": {"web": {"autoscaling": {"scaleDownStabilizationSeconds": seconds}}}}
    )
    behavior = one(render(raw).objects, "HorizontalPodAutoscaler", "web")["spec"]["behavior"]
    default = one(render(PROD).objects, "HorizontalPodAutoscaler", "web")["spec"]["behavior"]
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] == seconds
    assert behavior["scaleDown"]["policies"] == default["scaleDown"]["policies"]
    assert behavior["scaleUp"] == default["scaleUp"]


@pytest.mark.parametrize("seconds", [-1, HPA_MAX_STABILIZATION_WINDOW + 1])
def test_hpa_scale_down_window_outside_the_api_range_is_refused(seconds: int) -> None:
    """What the API server would refuse at `pulumi up` is refused at load, naming the key."""
    message = load_error(
        base_raw(
            "prod",
            autoscaling={"enabled": True, "scaleDownStabilizationSeconds": seconds},
        )
    )
    key = "appstack:apps.web.autoscaling.scaleDownStabilizationSeconds:"
    line = next((li.strip() for li in message.splitlines() if li.strip().startswith(key)), "")
    assert line, message
    bound = "greater than or equal to 0" if seconds < 0 else "less than or equal to 3600"
    assert bound in line, line


def test_hpa_targets_cpu_memory_and_optionally_requests_per_second(render: Render) -> None:
    plain = one(render(PROD).objects, "HorizontalPodAutoscaler")["spec"]["metrics"]
    assert [m["resource"]["name"] for m in plain] == ["cpu", "memory"]
    raw = deep_merge(PROD, {"apps": {"web": {"autoscaling": {"requestsPerSecond": 50}}}})
    metrics = one(render(raw).objects, "HorizontalPodAutoscaler")["spec"]["metrics"]
    assert metrics[-1]["pods"] == {
        "metric": {"name": "http_requests_per_second"},
        "target": {"type": "AverageValue", "averageValue": "50"},
    }


def test_hpa_minimum_leaves_room_for_the_pdb(render: Render) -> None:
    objects = render(PROD).objects
    hpa_min = one(objects, "HorizontalPodAutoscaler")["spec"]["minReplicas"]
    pdb = one(objects, "PodDisruptionBudget")["spec"]
    assert pdb["maxUnavailable"] == 1 and "minAvailable" not in pdb
    assert hpa_min >= 2
    assert pdb["unhealthyPodEvictionPolicy"] == "AlwaysAllow"


def test_pdb_min_available_is_rendered_when_configured(render: Render) -> None:
    raw = base_raw(replicas=3, pdb={"minAvailable": 2})
    spec = one(render(raw).objects, "PodDisruptionBudget")["spec"]
    assert spec["minAvailable"] == 2 and "maxUnavailable" not in spec


# --- optional extras are off unless enabled --------------------------------------------------


def test_no_ingress_is_created_unless_enabled(render: Render) -> None:
    assert find(render(PROD).objects, "Ingress") == []


def test_ingress_routes_the_host_to_the_service_with_tls(render: Render) -> None:
    raw = base_raw(
        ingress={"enabled": True, "host": "shop.example.com", "tlsSecretName": "shop-tls"}
    )
    ingress = one(render(raw).objects, "Ingress", "web")
    assert ingress["spec"]["tls"] == [{"hosts": ["shop.example.com"], "secretName": "shop-tls"}]
    path = ingress["spec"]["rules"][0]["http"]["paths"][0]
    assert path["backend"]["service"] == {"name": "web", "port": {"name": "http"}}


def test_no_monitoring_object_is_created_unless_enabled(render: Render) -> None:
    objects = render(DEV).objects
    assert [o for o in objects if o["apiVersion"].startswith("monitoring.coreos.com")] == []


def test_pdb_can_be_turned_off_in_dev(render: Render) -> None:
    assert find(render(base_raw(pdb={"enabled": False})).objects, "PodDisruptionBudget") == []


# --- namespace -------------------------------------------------------------------------------


def test_namespace_enforces_restricted_pod_security(render: Render) -> None:
    ns = one(render(DEV).objects, "Namespace", "shop")
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_quota_covers_every_app_at_max_replicas_plus_surge(render: Render) -> None:
    raw = with_app(PROD, "api", service={"type": "ClusterIP"})
    hard = one(render(raw).objects, "ResourceQuota")["spec"]["hard"]
    # Each app at its worst strategy switch (issue 27; tests/release/test_quota_transition.py):
    # max 10 replicas (prod default) + 25 % surge (3) = 13 per Deployment; canary (stable 13 +
    # canary 3 + 1) to blue-green (2 x 13) runs 43 pods at once. Two apps 86; +25 % headroom.
    assert hard["pods"] == "108"
    assert hard["limits.memory"] == "55040Mi"  # 86 x 512Mi x 1.25
    assert hard["requests.cpu"] == "26875m"  # 86 x 250m x 1.25
    assert hard["services.loadbalancers"] == "1"


def test_quota_admits_the_node_port_of_every_loadbalancer_service(render: Render) -> None:
    # Kubernetes' quota evaluator (pkg/quota/v1/evaluator/core/services.go) charges a
    # LoadBalancer Service's node ports to services.nodeports unless
    # allocateLoadBalancerNodePorts is false: the quota must count them, or it refuses the
    # stack's own Service (found by `make e2e` on prod).
    objects = render(PROD).objects
    services = [o for o in objects if o["kind"] == "Service"]
    node_ports = sum(
        len(svc["spec"]["ports"])
        for svc in services
        if svc["spec"].get("type") in ("NodePort", "LoadBalancer")
        and svc["spec"].get("allocateLoadBalancerNodePorts", True)
    )
    hard = one(objects, "ResourceQuota")["spec"]["hard"]
    assert node_ports >= 1
    assert int(hard["services.nodeports"]) >= node_ports


def test_limit_range_gives_defaults_to_containers_without_resources(render: Render) -> None:
    limits = one(render(DEV).objects, "LimitRange")["spec"]["limits"][0]
    assert limits["type"] == "Container"
    assert limits["default"]["memory"] == "256Mi"
    assert limits["defaultRequest"]["cpu"] == "50m"


def test_nothing_is_placed_in_the_default_namespace(render: Render) -> None:
    for obj in render(PROD).objects:
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == "shop"


# --- network policy --------------------------------------------------------------------------


def test_namespace_denies_all_traffic_by_default_and_allows_dns(render: Render) -> None:
    objects = render(DEV).objects
    deny = one(objects, "NetworkPolicy", "default-deny-all")["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    dns = one(objects, "NetworkPolicy", "allow-dns-egress")["spec"]
    assert {p["port"] for p in dns["egress"][0]["ports"]} == {53}
    assert dns["egress"][0]["to"][0]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "kube-system"
    }


def test_load_balancer_app_port_is_open_and_metrics_only_from_monitoring(render: Render) -> None:
    policy = one(render(PROD).objects, "NetworkPolicy", "web")["spec"]
    app_rule, metrics_rule = policy["ingress"]
    assert "from" not in app_rule and app_rule["ports"] == [{"port": 8080, "protocol": "TCP"}]
    assert metrics_rule["ports"] == [{"port": 9090, "protocol": "TCP"}]
    assert metrics_rule["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    ]


def test_cluster_ip_app_port_is_open_only_to_the_ingress_controller(render: Render) -> None:
    policy = one(render(DEV).objects, "NetworkPolicy", "web")["spec"]
    assert policy["ingress"][0]["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}
    ]
    assert policy["policyTypes"] == ["Ingress"]  # no declared egress: only DNS leaves the pod


def test_declared_egress_to_an_app_opens_its_ingress_too(render: Render) -> None:
    raw = with_app(DEV, "api")
    raw["apps"]["web"]["egress"] = [{"app": "api", "ports": [{"port": 8080}]}]
    objects = render(raw).objects
    web = one(objects, "NetworkPolicy", "web")["spec"]
    assert web["policyTypes"] == ["Ingress", "Egress"]
    assert web["egress"] == [
        {
            "ports": [{"port": 8080, "protocol": "TCP"}],
            "to": [{"podSelector": {"matchLabels": labels.selector_labels("api", "dev")}}],
        }
    ]
    api_from = one(objects, "NetworkPolicy", "api")["spec"]["ingress"][0]["from"]
    assert {"podSelector": {"matchLabels": labels.selector_labels("web", "dev")}} in api_from


def test_declared_cidr_egress_is_the_only_external_egress(render: Render) -> None:
    raw = base_raw(egress=[{"cidrs": ["198.51.100.0/24"], "ports": [{"port": 5432}]}])
    egress = one(render(raw).objects, "NetworkPolicy", "web")["spec"]["egress"]
    assert egress == [
        {
            "ports": [{"port": 5432, "protocol": "TCP"}],
            "to": [{"ipBlock": {"cidr": "198.51.100.0/24"}}],
        }
    ]


# --- structure -------------------------------------------------------------------------------


def test_every_kubernetes_object_is_the_child_of_a_component(render: Render) -> None:
    result = render(PROD)
    custom = [r for r in result.resources if r.custom]
    assert custom
    orphans = [f"{r.type}/{r.name}" for r in custom if not r.options.get("parent")]
    assert orphans == []
    parents = {r.parent_type for r in custom}
    assert parents <= {
        "appstack:app:AppService",
        "appstack:namespace:AppNamespace",
        "appstack:network:BaselineNetworkPolicies",
        "appstack:network:AppNetworkPolicy",
        "appstack:monitoring:AppMonitoring",
        "appstack:jenkins:JenkinsController",
    }


def test_names_and_label_values_stay_within_kubernetes_limits(render: Render) -> None:
    long_name = "a" + "b" * 39
    raw = {**DEV, "apps": {long_name: {"image": DIGEST_IMAGE}}}
    for obj in render(raw).objects:
        meta = obj["metadata"]
        assert labels.DNS1123_LABEL.match(meta["name"]) and len(meta["name"]) <= 63
        for value in meta.get("labels", {}).values():
            assert labels.LABEL_VALUE.match(value) and len(value) <= 63


def test_resource_name_cuts_long_names_with_a_hash_and_keeps_them_distinct() -> None:
    a = labels.resource_name("x" * 60, "config", "one")
    b = labels.resource_name("x" * 60, "config", "two")
    assert len(a) == len(b) == 63 and a != b
    assert labels.DNS1123_LABEL.match(a)


def test_digest_pinned_images_need_no_scanner_skip(render: Render) -> None:
    deployment = one(render(base_raw("prod", image=DIGEST_IMAGE)).objects, "Deployment", "web")
    assert "annotations" not in deployment["metadata"]
    assert app_container(deployment)["image"] == DIGEST_IMAGE
