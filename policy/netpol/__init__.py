"""NetworkPolicy evaluator over rendered manifests: "this source, this destination, this
port/protocol: allowed or refused", with Kubernetes NetworkPolicy semantics.

Pure Python over plain manifest dicts (what `stackctl render` writes); nothing here imports
Pulumi or the components, so the pipeline-path tests (tests/policy/test_netpol*.py) and the
real-node policy matrix of `make e2e` share one oracle. Modules: `selectors` (LabelSelector),
`model` (endpoints, the cluster built from manifests, Services), `evaluate` (the verdict).

The rules, as the upstream API documents them (kubernetes/api networking/v1/types.go,
NetworkPolicySpec / NetworkPolicyPeer / NetworkPolicyPort / IPBlock, and
https://kubernetes.io/docs/concepts/services-networking/network-policies/):

* isolation: a pod is isolated for ingress (egress) when at least one policy in its namespace
  selects it and lists `Ingress` (`Egress`) in `policyTypes`; an absent `policyTypes` means
  `Ingress`, plus `Egress` when the policy has egress rules. A pod no policy isolates allows
  everything in that direction;
* union: policies are additive; a connection is allowed in one direction when any rule of any
  policy that selects the pod for that direction matches it; a connection between two pods needs
  the source's egress and the destination's ingress to allow it;
* a rule with no `from`/`to` matches every peer; a rule with no `ports` matches every port;
* a peer with `podSelector` only selects pods in the policy's own namespace; `namespaceSelector`
  only, every pod of the selected namespaces; both in one peer, pods matching the pod selector
  in namespaces matching the namespace selector (AND); an empty selector selects everything;
* `ipBlock`: a CIDR minus its `except` ranges. The API leaves ipBlock against pod IPs to the
  implementation ("these should be cluster-external IPs"), so here it matches external
  addresses and pods only when the caller gave the pod an IP;
* a port is a number or a name; a named port is resolved against the destination pod's
  container ports (name and protocol), so it never matches an external address; `endPort`
  makes a numeric port a range `port..endPort`; `protocol` defaults to TCP.

Out of scope (as the upstream doc says NetworkPolicy is): host-network pods, traffic to or
from the node itself, and Service translation, which `model.Cluster.service_backends` does
before asking (policies see the backend pod and its target port).
"""

from policy.netpol.evaluate import Verdict, verdict
from policy.netpol.model import Cluster, External, Pod, PodPort
from policy.netpol.selectors import selector_matches

__all__ = [
    "Cluster",
    "External",
    "Pod",
    "PodPort",
    "Verdict",
    "selector_matches",
    "verdict",
]
