"""Real nodes for the e2e control plane (`make e2e-node`): several kubelets of the control
plane's release, each in its own network namespace with its own containerd, root directory and
cgroup root, kube-proxy per node, CoreDNS and kube-router's NetworkPolicy firewall as pods.

Modules: layout (names, addresses, zones), host (what the run changes on the host), network
(bridge, namespaces, routes, CNI), node (one node's processes), addons (CoreDNS, kube-router),
nodes (NodeNetwork, RealNodes, `python -m e2e.realnode [--cleanup]`), cleanup.
"""
