"""The NetworkPolicy evaluator (policy/netpol) against the rules of the upstream API
(kubernetes/api networking/v1/types.go and the NetworkPolicy concept page), one case per rule."""

from __future__ import annotations

from typing import Any

import pytest

from policy.netpol import Cluster, External, Pod, PodPort, verdict
from policy.netpol.evaluate import policy_types
from policy.netpol.selectors import SelectorError, selector_matches

WEB = Pod("shop", {"app": "web"}, (PodPort(8080, "http"), PodPort(9090, "metrics")), name="web")
API = Pod("shop", {"app": "api"}, (PodPort(8080, "http"),), name="api")
MON = Pod("monitoring", {"app": "prometheus"}, name="prometheus")
CI = Pod("ci", {"role": "agent"}, name="agent")
CI_OTHER = Pod("ci", {"role": "controller"}, name="controller")


def policy(name: str, namespace: str, **spec: Any) -> dict[str, Any]:
    return {
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"podSelector": {}, **spec},
    }


def cluster(
    *policies: dict[str, Any], namespaces: dict[str, dict[str, str]] | None = None
) -> Cluster:
    objects: list[dict[str, Any]] = list(policies)
    for ns, labels in (namespaces or {}).items():
        objects.append({"kind": "Namespace", "metadata": {"name": ns, "labels": labels}})
    return Cluster.from_objects(objects, extra_pods=[WEB, API, MON, CI, CI_OTHER])


def test_no_policy_allows_everything() -> None:
    assert verdict(cluster(), CI, WEB, 8080).allowed


def test_isolation_follows_policy_types() -> None:
    # Ingress only: egress of the selected pods stays open.
    c = cluster(policy("deny-in", "shop", policyTypes=["Ingress"]))
    assert not verdict(c, CI, WEB, 8080).allowed
    assert verdict(c, WEB, CI, 8080).allowed
    # policyTypes absent and no egress rules: Ingress only (the API's default).
    assert policy_types(policy("p", "shop")) == ["Ingress"]
    assert policy_types(policy("p", "shop", egress=[{}])) == ["Ingress", "Egress"]
    c = cluster(policy("deny-out", "ci", policyTypes=["Egress"]))
    assert not verdict(c, CI, WEB, 8080).allowed
    assert verdict(c, WEB, CI, 8080).allowed


def test_rules_of_all_selecting_policies_are_a_union() -> None:
    deny = policy("deny", "shop", policyTypes=["Ingress"])
    allow = policy(
        "allow",
        "shop",
        podSelector={"matchLabels": {"app": "web"}},
        ingress=[{"from": [{"namespaceSelector": {}}], "ports": [{"port": 8080}]}],
    )
    c = cluster(deny, allow)
    v = verdict(c, CI, WEB, 8080)
    assert v.allowed and v.ingress.allowed_by == ("shop/allow",)
    assert not verdict(c, CI, API, 8080).allowed  # `allow` does not select api


def test_both_ends_must_allow() -> None:
    c = cluster(
        policy("ci-deny", "ci", policyTypes=["Egress"]),
        policy("shop-open", "shop", ingress=[{}]),
    )
    v = verdict(c, CI, WEB, 8080)
    assert v.ingress.allowed and not v.egress.allowed and not v.allowed


def test_namespace_and_pod_selector_in_one_peer_is_an_and() -> None:
    both = [
        {
            "namespaceSelector": {"matchLabels": {"team": "ci"}},
            "podSelector": {"matchLabels": {"role": "agent"}},
        }
    ]
    either = [
        {"namespaceSelector": {"matchLabels": {"team": "ci"}}},
        {"podSelector": {"matchLabels": {"role": "agent"}}},
    ]
    ns = {"ci": {"team": "ci"}}
    c_and = cluster(policy("p", "shop", ingress=[{"from": both}]), namespaces=ns)
    c_or = cluster(policy("p", "shop", ingress=[{"from": either}]), namespaces=ns)
    assert verdict(c_and, CI, WEB, 8080).allowed
    assert not verdict(c_and, CI_OTHER, WEB, 8080).allowed
    assert verdict(c_or, CI_OTHER, WEB, 8080).allowed  # its namespace alone matches


def test_pod_selector_alone_means_the_policy_namespace() -> None:
    c = cluster(policy("p", "shop", ingress=[{"from": [{"podSelector": {}}]}]))
    assert verdict(c, API, WEB, 8080).allowed
    assert not verdict(c, CI, WEB, 8080).allowed


def test_namespace_selector_sees_the_automatic_name_label() -> None:
    peer = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    c = cluster(policy("p", "shop", ingress=[{"from": [peer]}]))
    assert verdict(c, MON, WEB, 9090).allowed
    assert not verdict(c, CI, WEB, 9090).allowed


def test_ip_block_and_except() -> None:
    block = {"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}
    c = cluster(policy("p", "ci", policyTypes=["Egress"], egress=[{"to": [block]}]))
    assert verdict(c, CI, External("10.2.3.4"), 443).allowed
    assert not verdict(c, CI, External("10.1.3.4"), 443).allowed
    assert not verdict(c, CI, External("192.0.2.1"), 443).allowed
    assert not verdict(c, CI, WEB, 8080).allowed  # a pod without a known IP: no ipBlock match
    assert verdict(c, CI, Pod("shop", {}, ip="10.9.9.9"), 8080).allowed


def test_ports_numbers_ranges_and_protocols() -> None:
    rule = {"ports": [{"port": 8000, "endPort": 8100}, {"port": 53, "protocol": "UDP"}]}
    c = cluster(policy("p", "ci", policyTypes=["Egress"], egress=[rule]))
    dest = External("203.0.113.5")
    assert verdict(c, CI, dest, 8000).allowed
    assert verdict(c, CI, dest, 8100).allowed
    assert not verdict(c, CI, dest, 8101).allowed
    assert verdict(c, CI, dest, 53, "UDP").allowed
    assert not verdict(c, CI, dest, 53).allowed  # TCP is the default protocol, UDP was listed
    assert not verdict(c, CI, dest, 8000, "UDP").allowed


def test_named_ports_resolve_against_the_destination_pod() -> None:
    c = cluster(policy("p", "shop", ingress=[{"ports": [{"port": "metrics"}]}]))
    assert verdict(c, MON, WEB, 9090).allowed
    assert not verdict(c, MON, WEB, 8080).allowed
    assert not verdict(c, MON, API, 9090).allowed  # api has no port named metrics
    egress = cluster(
        policy("p", "ci", policyTypes=["Egress"], egress=[{"ports": [{"port": "http"}]}])
    )
    assert verdict(egress, CI, WEB, 8080).allowed
    assert not verdict(egress, CI, External("203.0.113.5"), 8080).allowed


def test_service_backends_resolve_named_target_ports() -> None:
    svc = {
        "kind": "Service",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": "http"}]},
    }
    c = Cluster.from_objects([svc], extra_pods=[WEB, API])
    assert c.service_backends("shop", "web", 80) == [(WEB, 8080)]
    with pytest.raises(LookupError):
        c.service_backends("shop", "web", 443)


def test_selector_expressions() -> None:
    labels = {"tier": "web", "env": "prod"}
    assert selector_matches(
        {"matchExpressions": [{"key": "env", "operator": "In", "values": ["prod"]}]}, labels
    )
    assert selector_matches(
        {"matchExpressions": [{"key": "x", "operator": "NotIn", "values": ["a"]}]}, labels
    )
    assert selector_matches(
        {"matchExpressions": [{"key": "x", "operator": "DoesNotExist"}]}, labels
    )
    assert not selector_matches(
        {"matchExpressions": [{"key": "env", "operator": "Exists"}], "matchLabels": {"tier": "db"}},
        labels,
    )
    with pytest.raises(SelectorError, match="allowed In, NotIn, Exists, DoesNotExist"):
        selector_matches({"matchExpressions": [{"key": "env", "operator": "Equals"}]}, labels)


def test_a_service_argo_manages_reaches_the_pods_of_its_rollout() -> None:
    """Rendered without a selector, it gets the Rollout's hash from the controller
    (argo-rollouts rollout/service.go switchServiceSelector): only that Rollout's pods."""
    svc = {
        "kind": "Service",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"ports": [{"port": 80, "targetPort": "http"}]},
    }
    rollout = {
        "kind": "Rollout",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {
            "strategy": {"blueGreen": {"activeService": "web", "previewService": "web-preview"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"ports": [{"containerPort": 8080, "name": "http"}]}]},
            },
        },
    }
    c = Cluster.from_objects([svc, rollout], extra_pods=[API])
    assert [(p.name, port) for p, port in c.service_backends("shop", "web", 80)] == [("web", 8080)]
    alone = Cluster.from_objects([svc], extra_pods=[WEB, API])
    assert alone.service_backends("shop", "web", 80) == []  # no selector, no Rollout: nothing
